// The `unclog` command: record a cooperative program, import its trace, query the stalls.
// Commands are thin; the work lives in UnclogTrace, UnclogStore and UnclogLaunch.

import ArgumentParser
import UnclogTrace

#if canImport(Glibc)
    import Glibc
#endif

struct Unclog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unclog",
        abstract: "Find the code that blocks a cooperative runtime (Eventlet, gevent, Swift Concurrency, SwiftNIO).",
        discussion: """
            Record a program, import the trace into SQLite, then ask who stalled the event loop:

              unclog record --threshold 50ms -o app.trace -- python3 app.py
              unclog import app.trace              # writes app.db beside it
              unclog stalls app.db                 # every stall, longest first
              unclog top app.db                    # call sites by stall time
              unclog timeline app.db               # who ran, waited and stalled
              unclog check app.db --max-stall 100ms   # a CI gate

            Exit codes: 0 success, 1 a check failed, 2 a usage or input error.
            """,
        version: UnclogDefaults.version,
        subcommands: [
            RecordCommand.self, ImportCommand.self, StallsCommand.self, TopCommand.self, TimelineCommand.self,
            SQLCommand.self, CheckCommand.self, DumpCommand.self, ExportCommand.self, ReportCommand.self, DiffCommand.self,
        ]
    )
}

/// An error for the user: printed as `unclog: message`, exits with `code`.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var code: Int32 = 2
    var description: String { message }
}

@main
enum Main {
    static func main() {
        do {
            var command = try Unclog.parseAsRoot()
            try command.run()
        } catch let e as CLIError {
            printError("unclog: \(e.message)")
            exit(e.code)
        } catch let e as ExitCode {
            exit(e.rawValue)
        } catch {
            // Argument errors exit 2 (scripts rely on it), help and --version exit 0.
            let code = Unclog.exitCode(for: error)
            let message = Unclog.fullMessage(for: error)
            if code == .success {
                print(message)
                exit(0)
            }
            printError(message)
            exit(code == .validationFailure ? 2 : (code.rawValue == 1 ? 2 : code.rawValue))
        }
    }
}

/// Writes a line to standard error.
func printError(_ s: String) {
    var line = s
    if !line.hasSuffix("\n") { line += "\n" }
    writeStderr(line)
}

/// Writes raw text to file descriptor 2 (no buffering, safe from any thread).
func writeStderr(_ text: String) {
    _ = text.withCString { write(2, $0, strlen($0)) }
}
