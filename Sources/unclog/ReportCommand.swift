// `unclog report`: one self-contained HTML page about a trace, to open in any browser.

import ArgumentParser
import UnclogQuery
import UnclogReport
import UnclogStore

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report of a trace: timeline of the worst minutes, top call sites, worst stalls.",
        discussion: """
            The page needs no network: styles, the SVG timelines and its little script are inline. It shows how \
            much of the recording was stalled and when; per worst minute, each OS thread (busy, waiting on I/O, \
            stalled) and the greenthreads involved (running, ready but kept waiting, stalling); the call sites \
            ranked by stall time; and the worst stalls with their whole stack and the greenthreads they kept \
            waiting. A recording shorter than 90 s is drawn whole.

              unclog report app.db -o report.html
            """
    )

    @Argument(help: "The database written by `unclog import`.")
    var database: String

    @Option(help: "The trace of the database (see the traces table); default: the most recent.")
    var trace: Int64?

    @Option(name: [.short, .customLong("output")], help: "The HTML file to write (- for standard output).")
    var output: String

    @Option(help: "How many worst windows to draw.")
    var windows: Int = 3

    @Option(name: .customLong("window"), help: "The length of a window (a shorter recording is drawn whole).")
    var window: DurationArgument = DurationArgument(nanoseconds: 60_000_000_000)

    @Option(name: .customLong("stalls"), help: "How many of the worst stalls to detail.")
    var stalls: Int = 10

    @Flag(help: "No summary line.")
    var quiet = false

    func validate() throws {
        if windows < 1 || windows > 20 { throw ValidationError("--windows must be between 1 and 20") }
        if window.nanoseconds <= 0 { throw ValidationError("--window must be positive") }
        if stalls < 0 { throw ValidationError("--stalls must be 0 or more") }
    }

    func run() throws {
        let store = try openStore(database)
        let summary = try storeCall { () throws(StoreError) in
            let out = try ByteWriter(path: output)
            return try HTMLReport.write(
                store, to: out,
                options: ReportOptions(
                    traceID: trace, windows: windows, windowNs: window.nanoseconds, worstStalls: stalls))
        }
        if !quiet {
            let note =
                summary.traceCount > 1 && trace == nil ? " (the most recent of \(summary.traceCount); --trace to choose)" : ""
            printError(
                "wrote \(output): trace \(summary.traceID)\(note), \(summary.stalls) stalls, \(summary.windows.count) window\(summary.windows.count == 1 ? "" : "s"), \(summary.bytes >> 10) KiB"
            )
        }
    }
}
