// Options shared by several commands: durations, output format, the trace to read.

import ArgumentParser
import UnclogQuery
import UnclogStore

/// A duration typed as `200us`, `50ms`, `1.5s`.
struct DurationArgument: ExpressibleByArgument, Sendable {
    var nanoseconds: Int64
    init?(argument: String) {
        guard let ns = DurationText.parse(argument) else { return nil }
        nanoseconds = ns
    }
    init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    static var defaultCompletionKind: CompletionKind { .default }
    /// Shown as `(default: 50ms)` in --help, in the form the option accepts.
    var defaultValueDescription: String { DurationText.format(nanoseconds) }
}

extension OutputFormat: ExpressibleByArgument {}
extension SiteGrouping: ExpressibleByArgument {}

struct FormatOptions: ParsableArguments {
    @Option(name: .long, help: "Output format: table, json or csv.")
    var format: OutputFormat = .table
}

struct TraceSelection: ParsableArguments {
    @Option(name: .long, help: "Only this trace of the database (see the traces table); default: all.")
    var trace: Int64?
}

/// Opens a database for reading, turning store errors into exit-code-2 errors.
func openStore(_ path: String) throws -> TraceStore {
    do { return try TraceStore(path: path) } catch { throw CLIError(message: error.message) }
}

/// Runs a store call, turning its errors into exit-code-2 errors.
func storeCall<T>(_ body: () throws(StoreError) -> T) throws -> T {
    do { return try body() } catch { throw CLIError(message: error.message) }
}
