// `unclog check`: a CI gate that fails when any stall is longer than allowed.

import ArgumentParser
import UnclogImport
import UnclogQuery
import UnclogStore

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Fail (exit 1) when a stall is longer than --max-stall.",
        discussion: "Lists the offending stalls, longest first. Exit 0: none; 1: some; 2: a usage or input error."
    )

    @Argument(help: "The database written by `unclog import`.")
    var database: String

    @Option(name: .customLong("max-stall"), help: "The longest stall allowed (e.g. 100ms).")
    var maxStall: DurationArgument

    @OptionGroup var selection: TraceSelection
    @OptionGroup var output: FormatOptions

    func run() throws {
        let store = try openStore(database)
        let offending = try storeCall { () throws(StoreError) in
            try store.stalls(minDuration: maxStall.nanoseconds &+ 1, traceID: selection.trace)
        }
        if offending.isEmpty {
            if output.format == .table {
                print("ok: no stall longer than \(DurationText.format(maxStall.nanoseconds))")
            } else {
                print(TraceStore.stallTable([]).render(output.format), terminator: "")
            }
            return
        }
        if output.format == .table {
            print(
                "FAIL: \(offending.count) stall\(offending.count == 1 ? "" : "s") longer than \(DurationText.format(maxStall.nanoseconds)):"
            )
        }
        print(TraceStore.stallTable(offending).render(output.format), terminator: "")
        throw ExitCode(1)
    }
}
