// `unclog top`: call sites ranked by the stall time they caused.

import ArgumentParser
import UnclogQuery
import UnclogStore

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Rank call sites by total stall time.",
        discussion: """
            Self attribution (the default) charges each stall to its blocking call, the innermost \
            application frame. --inclusive charges it to every application frame on the stack, so \
            a function is charged for the stalls of everything it called. Columns: number of stalls, \
            total, longest, median and 99th percentile duration, share of all stall time, and the \
            wait the stalls added to other greenthreads.
            """
    )

    @Argument(help: "The database written by `unclog import`.")
    var database: String

    @Option(help: "Group by function, line (function and line) or file.")
    var by: SiteGrouping = .line

    @Flag(help: "Charge every frame on the stack, not only the innermost application frame.")
    var inclusive = false

    @Option(help: "At most this many call sites.")
    var limit: Int?

    @OptionGroup var selection: TraceSelection
    @OptionGroup var output: FormatOptions

    func run() throws {
        let store = try openStore(database)
        let table = try storeCall { () throws(StoreError) in
            try store.top(by: by, inclusive: inclusive, limit: limit, traceID: selection.trace)
        }
        print(table.render(output.format), terminator: "")
    }
}
