// `unclog dump`: a trace file as JSON, chunk by chunk (the format of schema/vectors/*.json).

import ArgumentParser
import UnclogTrace

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a trace file's chunks and events as JSON (for debugging and other readers).",
        discussion: "The output is the canonical decoding of schema/trace-format.md §9. Damage goes to stderr; exit 2 if any."
    )

    @Argument(help: "The trace file.")
    var trace: String

    func run() throws {
        let reader: TraceReader
        do { reader = try TraceReader(path: trace) } catch { throw CLIError(message: error.description) }
        print(TraceJSON.render(reader), terminator: "")
        for d in reader.damage { printError("unclog: \(trace): \(d)") }
        if reader.bytesLost > 0 { throw ExitCode(2) }
    }
}
