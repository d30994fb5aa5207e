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
        .library(name: "UnclogPreload", type: .dynamic, targets: ["CUnclogSwiftPreload"]),
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

        // `unclog record`: runs a program with the right recorder injected (the launcher).
        .target(name: "UnclogLaunch", dependencies: ["UnclogTrace", "UnclogPythonRecorder"]),

        // The Python recorder (eventlet, gevent): Python and C sources shipped as a resource, run
        // inside the recorded process; the Swift side only says where they are.
        .target(name: "UnclogPythonRecorder", resources: [.copy("python")]),

        // Seeing the stalls: Chrome/Perfetto trace export, the HTML report, trace diff (issue 5).
        .target(name: "UnclogReport", dependencies: ["UnclogStore"]),

        // The Swift Concurrency recorder: its C core (trampolines, watchdog, sampler, trace
        // writer), the LD_PRELOAD shim that starts it inside an unmodified program, the link-time
        // references to the runtime's hooks, and the public Swift API (UnclogRecorder.start()).
        .target(name: "CUnclogSwiftRecorder", linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("pthread")]),
        .target(name: "CUnclogSwiftPreload", dependencies: ["CUnclogSwiftRecorder"]),
        .target(
            name: "CUnclogSwiftRuntimeRefs", dependencies: ["CUnclogSwiftRecorder"],
            linkerSettings: [.linkedLibrary("dispatch")]
        ),
        .target(name: "UnclogRecorder", dependencies: ["CUnclogSwiftRecorder", "CUnclogSwiftRuntimeRefs"]),

        // The command-line tool: thin commands over the libraries.
        .executableTarget(
            name: "unclog",
            dependencies: [
                "UnclogTrace", "UnclogStore", "UnclogLaunch", "UnclogReport",
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
