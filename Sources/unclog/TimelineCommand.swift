// `unclog timeline`: a terminal drawing of running, waiting and stalled greenthreads.

import ArgumentParser
import UnclogQuery
import UnclogStore

struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "Draw who ran, who waited and who stalled, over time.",
        discussion: """
            One row per OS thread (# a greenthread runs, . the hub waits for I/O, ! a stall) and one \
            per greenthread (# running, ! stalled, - ready but waiting for the thread, . waiting on \
            I/O). Times are since the start of the trace, e.g. --from 1.2s --to 1.5s.
            """
    )

    @Argument(help: "The database written by `unclog import`.")
    var database: String

    @Option(help: "Only this greenthread (its id as `stalls` shows it).")
    var greenthread: Int64?

    @Option(help: "Start of the window (time since the trace start, e.g. 1.5s).")
    var from: DurationArgument?

    @Option(help: "End of the window.")
    var to: DurationArgument?

    @Option(help: "Width of the drawing in columns.")
    var width: Int = 100

    @Option(help: "At most this many greenthread rows (the busiest in the window).")
    var limit: Int = 40

    @OptionGroup var selection: TraceSelection

    func validate() throws {
        if width < 10 || width > 1000 { throw ValidationError("--width must be between 10 and 1000") }
        if let from, let to, to.nanoseconds <= from.nanoseconds { throw ValidationError("--to must be after --from") }
    }

    func run() throws {
        let store = try openStore(database)
        let text = try storeCall { () throws(StoreError) in
            try store.timeline(
                TimelineOptions(
                    greenthread: greenthread, traceID: selection.trace, from: from?.nanoseconds,
                    to: to?.nanoseconds, width: width, limit: limit))
        }
        print(text, terminator: "")
    }
}
