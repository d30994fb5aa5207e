// `unclog import`: load a trace file into a SQLite database.

import ArgumentParser
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTrace

#if canImport(Glibc)
    import Glibc
#endif

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a trace file into a SQLite database.",
        discussion: """
            Streams the trace into DB (default: the trace's name with .db, beside it), rebuilding \
            each greenthread's timeline, its I/O waits, stalls and their victims. Several traces can \
            share one database; importing the same recording again changes nothing (or replaces it, \
            with --replace). A damaged trace is imported up to and around the damage: every intact \
            chunk is kept, each damaged stretch is reported with its byte offset, and the exit code \
            is 2. A failed import leaves the database as it was.
            """
    )

    @Argument(help: "The trace file written by `unclog record`.")
    var trace: String

    @Option(name: [.short, .customLong("output")], help: "The database to write (created if missing).")
    var output: String?

    @Flag(help: "Replace an earlier import of the same recording.")
    var replace = false

    @Flag(help: "No progress bar and no summary line.")
    var quiet = false

    func run() throws {
        let db = output ?? ImportCommand.defaultDatabase(for: trace)
        let summary = try ImportCommand.importTrace(trace, into: db, replace: replace, quiet: quiet)
        if !summary.damage.isEmpty || summary.bytesLost > 0 { throw ExitCode(2) }
    }

    /// `dir/name.trace` → `dir/name.db`.
    static func defaultDatabase(for trace: String) -> String {
        let slash = trace.lastIndex(of: "/")
        let nameStart = slash.map { trace.index(after: $0) } ?? trace.startIndex
        if let dot = trace[nameStart...].lastIndex(of: "."), dot != nameStart {
            return String(trace[..<dot]) + ".db"
        }
        return trace + ".db"
    }

    /// Imports with a progress bar on a terminal and the summary line; damage goes to stderr.
    static func importTrace(_ trace: String, into db: String, replace: Bool, quiet: Bool) throws -> ImportSummary {
        let showProgress = !quiet && isatty(2) != 0
        let options = ImportOptions(
            tracePath: trace, databasePath: db, replace: replace,
            progress: showProgress ? progressPrinter(trace) : nil)
        // Ctrl-C or SIGTERM stops the import between chunks; it then rolls back and cleans up.
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { _ in ImportCancellation.request() }
        }
        defer { for sig in [SIGINT, SIGTERM] { signal(sig, SIG_DFL) } }
        let summary: ImportSummary
        do throws(ImportError) {
            summary = try TraceImporter.run(options)
        } catch {
            if showProgress { writeStderr("\r\u{1B}[K") }
            if case .cancelled = error { throw CLIError(message: "\(trace): \(error.description)", code: 130) }
            throw CLIError(message: error.description)
        }
        if showProgress { writeStderr("\r\u{1B}[K") }
        for d in summary.damage { printError("unclog: \(trace): \(d)") }
        if !quiet {
            if summary.alreadyImported {
                print("\(trace) is already in \(db) as trace \(summary.traceID); nothing to do (--replace to import it again)")
            } else {
                let rate =
                    summary.eventsPerSecond >= 1e6 ? "\(fmt(summary.eventsPerSecond / 1e6)) M" : "\(Int(summary.eventsPerSecond))"
                print(
                    """
                    \(summary.replaced ? "re-imported" : "imported") \(trace) → \(db) as trace \(summary.traceID): \
                    \(summary.events) events, \(summary.greenthreads) greenthreads, \(summary.stalls) stalls, \
                    \(summary.bytesLost) bytes lost, \(fmt(summary.seconds)) s, \(rate) events/s
                    """)
                if summary.eventsDropped > 0 {
                    printError(
                        "unclog: \(trace): the recorder dropped \(summary.eventsDropped) events (\(summary.recorderErrors) recorder errors)"
                    )
                }
                if let sym = summary.symbols {
                    for note in sym.notes { printError("unclog: \(trace): \(note)") }
                    if sym.programNamed < sym.programFrames {
                        print("symbols: \(sym.programNamed) of \(sym.programFrames) native frames of the program named")
                    }
                }
                if !summary.cleanEnd {
                    printError(
                        "unclog: \(trace): no end marker: the recording was cut short (program killed?); imported what was written"
                    )
                }
            }
        }
        return summary
    }
}

/// A progress line redrawn in place on standard error.
func progressPrinter(_ trace: String) -> @Sendable (ImportProgress) -> Void {
    { p in
        var line = "\rimporting \(trace): "
        if let size = p.fileSize, size > 0 {
            let pct = min(100, Int(Double(p.bytesRead) / Double(size) * 100))
            line += String(repeating: "█", count: pct / 4) + String(repeating: "·", count: 25 - pct / 4) + " \(pct)% "
        }
        line += "\(p.bytesRead >> 20) MiB, \(p.events) events"
        writeStderr(line)
    }
}

func fmt(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    return "\(r)"
}
