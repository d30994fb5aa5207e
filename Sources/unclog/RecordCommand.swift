// `unclog record`: run a program with the recorder for its runtime injected.

import ArgumentParser
import UnclogImport
import UnclogLaunch
import UnclogQuery
import UnclogStore
import UnclogTrace

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Run a program and record its greenthread switches, I/O waits and stalls.",
        discussion: """
            unclog record [options] -- COMMAND ARGS…

            The program runs unmodified, with its standard input and output, signals (SIGINT and \
            SIGTERM are forwarded) and exit code kept. Python programs using eventlet or gevent are \
            recorded by a recorder injected at interpreter start-up. Swift executables that load the \
            Swift Concurrency runtime dynamically (the SwiftPM default on Linux) get the Swift recorder \
            (libUnclogPreload.so) injected with LD_PRELOAD: every job of the global executor is timed, \
            and jobs running past the threshold are sampled. Programs that link the UnclogRecorder \
            library (e.g. -static-stdlib builds) record themselves when they call \
            UnclogRecorder.start(). unclog says so when it cannot record a program.
            """
    )

    @Option(help: "A slice running longer than this is a stall.")
    var threshold = DurationArgument(nanoseconds: UnclogDefaults.thresholdNs)

    @Option(name: .customLong("sample-interval"), help: "How often to sample the stalled thread's stack during a stall.")
    var sampleInterval = DurationArgument(nanoseconds: UnclogDefaults.sampleIntervalNs)

    @Option(name: [.short, .customLong("output")], help: "The trace file to write.")
    var output: String = "unclog.trace"

    @Flag(name: .customLong("import"), help: "Import the trace when the program ends and print the stalls.")
    var importAfter = false

    @Argument(parsing: .postTerminator, help: "The program and its arguments, after `--`.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty {
            throw ValidationError(
                "give the program to record after `--`, e.g. unclog record -- python3 app.py or -- ./MySwiftServer")
        }
        if threshold.nanoseconds <= 0 { throw ValidationError("--threshold must be positive") }
        if sampleInterval.nanoseconds <= 0 { throw ValidationError("--sample-interval must be positive") }
    }

    func run() throws {
        let status: Int32
        do {
            status = try Recorder.run(
                RecordOptions(
                    command: command, output: output, thresholdNs: threshold.nanoseconds,
                    sampleIntervalNs: sampleInterval.nanoseconds))
        } catch {
            throw CLIError(message: "\(error)")
        }
        if importAfter {
            let db = ImportCommand.defaultDatabase(for: output)
            _ = try? ImportCommand.importTrace(output, into: db, replace: true, quiet: false)
            if let store = try? TraceStore(path: db), let stalls = try? store.stalls(limit: 20) {
                print(TraceStore.stallTable(stalls).render(.table), terminator: "")
            }
        }
        throw ExitCode(status)
    }
}
