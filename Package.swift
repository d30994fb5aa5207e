// swift-tools-version: 6.1
// unclog: a blocking detector and record-and-replay trace analyzer for cooperative runtimes.
import PackageDescription

let package = Package(
    name: "unclog",
    products: [
        .executable(name: "unclog", targets: ["unclog"]),
        .library(name: "UnclogTrace", targets: ["UnclogTrace"]),
        .library(name: "UnclogStore", targets: ["UnclogStore"]),
        // The Swift recorder injected with LD_PRELOAD by `unclog record` (libUnclogPreload.so).
        .library(name: "UnclogPreload", type: .dynamic, targets: ["CUnclogPreload"]),
        // The Swift recorder as a library: UnclogRecorder.start() / stop() (also -static-stdlib builds).
        .library(name: "UnclogRecorder", targets: ["UnclogRecorder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // The system SQLite (libsqlite3-dev): the embedded store needs no server.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),

        // The binary trace format: encoder, validating streaming decoder (schema/trace-format.md).
        .target(name: "UnclogTrace"),

        // The SQLite store: schema, streaming importer, and the queries the CLI prints.
        .target(
            name: "UnclogStore",
            dependencies: ["UnclogTrace", "CSQLite"],
            resources: [.copy("Resources/schema.sql")]
        ),

        // `unclog record`: runs a program with the right recorder injected.
        .target(
            name: "UnclogRecord",
            dependencies: ["UnclogTrace"],
            resources: [.copy("python")]
        ),

        // Seeing the stalls: Chrome/Perfetto trace export, the HTML report, trace diff (issue 5).
        .target(name: "UnclogReport", dependencies: ["UnclogStore"]),

        // The Swift Concurrency recorder's C core (hook, trampoline, watchdog, trace writer) and
        // its LD_PRELOAD entry point.
        .target(name: "CUnclogRecorder", linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("pthread")]),
        .target(name: "CUnclogPreload", dependencies: ["CUnclogRecorder"]),
        .target(name: "CUnclogHookRefs", dependencies: ["CUnclogRecorder"], linkerSettings: [.linkedLibrary("dispatch")]),
        .target(name: "UnclogRecorder", dependencies: ["CUnclogRecorder", "CUnclogHookRefs"]),

        // The command-line tool: thin commands over the libraries.
        .executableTarget(
            name: "unclog",
            dependencies: [
                "UnclogTrace", "UnclogStore", "UnclogRecord", "UnclogReport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Benchmarks (`make bench`): synthetic 10M-event trace, import and query timings.
        .executableTarget(
            name: "unclog-bench",
            dependencies: ["UnclogTrace", "UnclogStore"],
            path: "Benchmarks/unclog-bench"
        ),

        .testTarget(name: "UnclogTraceTests", dependencies: ["UnclogTrace"]),
        .testTarget(name: "UnclogStoreTests", dependencies: ["UnclogTrace", "UnclogStore", "CSQLite"]),
        // The Swift recorder end to end on Swift programs the tests build (Tests/SwiftPrograms).
        .testTarget(name: "UnclogSwiftRecorderTests", dependencies: ["UnclogStore", "UnclogRecorder"]),
        .testTarget(name: "UnclogCLITests", dependencies: ["UnclogTrace", "UnclogStore"]),
        .testTarget(name: "UnclogReportTests", dependencies: ["UnclogTrace", "UnclogStore", "UnclogReport"]),
    ]
)
