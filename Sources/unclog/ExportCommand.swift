// `unclog export`: a trace as Chrome Trace Event JSON, for ui.perfetto.dev and chrome://tracing.

import ArgumentParser
import UnclogQuery
import UnclogReport
import UnclogStore

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a trace as Chrome Trace Event JSON (open it in ui.perfetto.dev or chrome://tracing).",
        discussion: """
            One track per OS thread with a slice for every greenthread run (named by greenthread, coloured by \
            it) and every hub I/O wait; beside it a "stalls on …" track with each stall, whose details carry the \
            call site, the whole stack and the greenthreads it kept waiting. Selecting a run shows flow arrows \
            to the same greenthread's previous and next runs (--no-flows leaves them out, for a smaller file). \
            The file is written as it is read (memory stays flat) and appears only when complete. A long \
            recording makes a big file (about 170 bytes per run): --from/--to export a window of it.

              unclog export app.db -o app.json      # then open app.json in ui.perfetto.dev
              unclog export app.db --from 20s --to 30s -o window.json
            """
    )

    @Argument(help: "The database written by `unclog import`.")
    var database: String

    @Option(help: "The trace of the database to export (see the traces table); default: the most recent.")
    var trace: Int64?

    @Option(name: [.short, .customLong("output")], help: "The JSON file to write (- for standard output).")
    var output: String

    @Flag(name: .customLong("no-flows"), help: "Leave out the flow arrows between a greenthread's runs.")
    var noFlows = false

    @Option(help: "Only from this time on (since the trace start, e.g. 20s): big traces load faster in a viewer.")
    var from: DurationArgument?

    @Option(help: "Only up to this time.")
    var to: DurationArgument?

    @Flag(help: "No summary line.")
    var quiet = false

    func validate() throws {
        if let from, let to, to.nanoseconds <= from.nanoseconds { throw ValidationError("--to must be after --from") }
    }

    func run() throws {
        let store = try openStore(database)
        let summary = try storeCall { () throws(StoreError) in
            let out = try ByteWriter(path: output)
            return try ChromeTraceExport.export(
                store, to: out,
                options: ChromeExportOptions(
                    traceID: trace, flows: !noFlows, from: from?.nanoseconds, to: to?.nanoseconds))
        }
        if !quiet {
            let note =
                summary.traceCount > 1 && trace == nil ? " (the most recent of \(summary.traceCount); --trace to choose)" : ""
            printError(
                """
                exported trace \(summary.traceID)\(note) → \(output): \(summary.runs) runs, \(summary.ioWaits) I/O waits, \
                \(summary.stalls) stalls on \(summary.threads) thread\(summary.threads == 1 ? "" : "s"), \(mib(summary.bytes))
                """)
        }
    }
}

/// A byte count as `12.3 MiB` (or KiB below 1 MiB).
func mib(_ bytes: Int64) -> String {
    bytes < 1 << 20 ? "\((bytes + 1023) >> 10) KiB" : "\(Double((bytes * 10) >> 20) / 10) MiB"
}
