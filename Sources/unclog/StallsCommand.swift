// `unclog stalls`: every stall, longest first, with its call site and victims.

import ArgumentParser
import UnclogQuery
import UnclogStore

struct StallsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stalls",
        abstract: "List stalls, longest first, with their call site and victims.",
        discussion: """
            One row per stall: the greenthread that held the thread, how long, the blocking call \
            (the innermost application frame of the stack sampled during the stall), how many \
            stack samples were taken, and how many greenthreads it kept waiting and for how long. \
            With --format json each stall also carries its whole stack, innermost first.
            """
    )

    @Argument(help: "The database written by `unclog import`.")
    var database: String

    @Option(help: "Only stalls at least this long (e.g. 100ms).")
    var min: DurationArgument?

    @Option(help: "At most this many stalls.")
    var limit: Int?

    @OptionGroup var selection: TraceSelection
    @OptionGroup var output: FormatOptions

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
    }

    func run() throws {
        let store = try openStore(database)
        let stalls = try storeCall { () throws(StoreError) in
            try store.stalls(minDuration: min?.nanoseconds ?? 0, limit: limit, traceID: selection.trace)
        }
        print(TraceStore.stallTable(stalls).render(output.format), terminator: "")
    }
}
