// swift-tools-version: 6.1
// unclog: a blocking detector and record-and-replay trace analyzer for cooperative runtimes.
import PackageDescription

let package = Package(
    name: "unclog",
    products: [
        .executable(name: "unclog", targets: ["unclog"]),
        .library(name: "UnclogTrace", targets: ["UnclogTrace"]),
        .library(name: "UnclogStore", targets: ["UnclogStore"]),
        .library(name: "UnclogImport", targets: ["UnclogImport"]),
        .library(name: "UnclogQuery", targets: ["UnclogQuery"]),
        // The Swift recorder injected with LD_PRELOAD by `unclog record` (libUnclogPreload.so).
        .library(name: "UnclogPreload", type: .dynamic, targets: ["CUnclogSwiftPreload"]),
        // The Swift recorder as a library: UnclogRecorder.start() / stop() (also -static-stdlib builds).
        .library(name: "UnclogRecorder", targets: ["UnclogRecorder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        // The system SQLite (libsqlite3-dev): the embedded store needs no server.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),

        // The binary trace format: encoder, validating streaming decoder (schema/trace-format.md).
        .target(name: "UnclogTrace"),

        // The SQLite store: the SQLite wrapper, the schema (tables and analysis views) and its
        // version check, and the key scheme that lets several traces share one database.
        .target(
            name: "UnclogStore",
            dependencies: ["CSQLite"],
            resources: [.copy("Resources/schema.sql")]
        ),

        // Trace → rows: the streaming importer, its pure timeline rebuild (slices, I/O waits,
        // stalls, victims) and the writer that turns the rebuild's records into rows, and the
        // offline symbolizer of native frames.
        .target(name: "UnclogImport", dependencies: ["UnclogTrace", "UnclogStore"]),

        // Rows → answers: the queries behind `stalls`, `top`, `sql` and `timeline`, and the
        // table/JSON/CSV output and duration text they print.
        .target(name: "UnclogQuery", dependencies: ["UnclogTrace", "UnclogStore"]),

        // `unclog record`: runs a program with the right recorder injected (the launcher).
        .target(name: "UnclogLaunch", dependencies: ["UnclogTrace", "UnclogPythonRecorder"]),

        // The Python recorder (eventlet, gevent): Python and C sources shipped as a resource, run
        // inside the recorded process; the Swift side only says where they are.
        .target(name: "UnclogPythonRecorder", resources: [.copy("python")]),

        // Seeing the stalls: Chrome/Perfetto trace export, the HTML report, trace diff (issue 5).
        .target(name: "UnclogReport", dependencies: ["UnclogStore", "UnclogQuery"]),

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
                "UnclogTrace", "UnclogStore", "UnclogImport", "UnclogQuery", "UnclogLaunch", "UnclogReport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Benchmarks (`make bench`): synthetic 10M-event trace, import and query timings.
        .executableTarget(
            name: "unclog-bench",
            dependencies: ["UnclogTrace"],
            path: "Benchmarks/unclog-bench"
        ),

        // What the Swift test targets share: temporary directories, running programs, the unclog
        // executable, and a script language for building traces.
        .target(name: "UnclogTestSupport", dependencies: ["UnclogTrace"], path: "Tests/UnclogTestSupport"),

        .testTarget(name: "UnclogTraceTests", dependencies: ["UnclogTrace", "UnclogTestSupport"]),
        // The import and the queries on hand-built traces with known answers, and the timeline
        // rebuild on its own (no SQLite).
        .testTarget(
            name: "UnclogStoreTests",
            dependencies: ["UnclogTrace", "UnclogStore", "UnclogImport", "UnclogQuery", "CSQLite", "UnclogTestSupport"]
        ),
        // The Swift recorder end to end on Swift programs the tests build (Tests/SwiftPrograms).
        .testTarget(
            name: "UnclogSwiftRecorderTests",
            dependencies: ["UnclogStore", "UnclogImport", "UnclogQuery", "UnclogRecorder", "UnclogTestSupport"]
        ),
        .testTarget(name: "UnclogCLITests", dependencies: ["UnclogTrace", "UnclogTestSupport"]),
        .testTarget(
            name: "UnclogReportTests",
            dependencies: ["UnclogTrace", "UnclogStore", "UnclogImport", "UnclogQuery", "UnclogReport", "UnclogTestSupport"]
        ),
    ]
)
