// `unclog diff`: what changed in the stalls between two recordings, and a CI gate on it.

import ArgumentParser
import UnclogQuery
import UnclogReport
import UnclogStore

/// A percentage typed as `20%` (or `20`).
struct PercentArgument: ExpressibleByArgument, Sendable {
    var fraction: Double
    init?(argument: String) {
        var s = argument.trimmingCharacters(in: .whitespaces)
        if s.hasSuffix("%") { s.removeLast() }
        guard let v = Double(s), v.isFinite, v >= 0 else { return nil }
        fraction = v / 100
    }
}

extension DiffMeasure: ExpressibleByArgument {}

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare the stalls of two recordings call site by call site (a CI gate with --fail-on-regression).",
        discussion: """
            Each call site (the blocking call: function and file, so an edit that moves its line keeps the \
            match) is listed with its stall time, number of stalls and the wait it added to other greenthreads \
            in BEFORE and AFTER, biggest change in stall time first. The last row sums all sites. With \
            --fail-on-regression 20% the exit code is 1 when any site, or all of them together, got more than \
            20% worse on one of those measures; a site that did not stall in BEFORE counts as a regression. \
            --ignore-below keeps small sites out of the gate, and --gate-on chooses the measures (victim wait \
            varies most from run to run: it depends on how many greenthreads happened to be ready).

              unclog diff before.db after.db --fail-on-regression 20%
              unclog diff before.db after.db --fail-on-regression 50% --ignore-below 100ms --gate-on stall-time

            Exit codes: 0 no regression past the limit, 1 a regression, 2 a usage or input error.
            """
    )

    @Argument(help: "The database of the earlier recording.")
    var before: String

    @Argument(help: "The database of the later recording.")
    var after: String

    @Option(
        name: .customLong("fail-on-regression"),
        help: "Exit 1 when a site's stall time, stall count or victim wait grows by more than this (e.g. 20%).")
    var failOnRegression: PercentArgument?

    @Option(
        name: .customLong("ignore-below"),
        help: "Sites with less stall time than this in both recordings never fail the gate (e.g. 100ms).")
    var ignoreBelow: DurationArgument?

    @Option(
        name: .customLong("gate-on"), parsing: .upToNextOption,
        help: "The measures the gate looks at: stall-time, stalls, victim-wait (default: all three).")
    var gateOn: [DiffMeasure] = DiffMeasure.allCases

    @Option(name: .customLong("before-trace"), help: "The trace of BEFORE to compare (default: its most recent).")
    var beforeTrace: Int64?

    @Option(name: .customLong("after-trace"), help: "The trace of AFTER to compare (default: its most recent).")
    var afterTrace: Int64?

    @Option(help: "Show at most this many call sites.")
    var limit: Int?

    @OptionGroup var output: FormatOptions

    func run() throws {
        let b = try openStore(before)
        let a = try openStore(after)
        let result = try storeCall { () throws(StoreError) in
            try TraceDiff.diff(
                before: b, after: a,
                options: DiffOptions(
                    beforeTrace: beforeTrace, afterTrace: afterTrace, regressionLimit: failOnRegression?.fraction,
                    ignoreBelowNs: ignoreBelow?.nanoseconds ?? 0, measures: Set(gateOn)))
        }
        print(result.table(output.format, limit: limit).render(output.format, maxWidth: 80), terminator: "")
        guard let limit = failOnRegression else { return }
        let pct = "\(limit.fraction * 100)".replacingOccurrences(of: ".0", with: "") + "%"
        if result.failed {
            let sites = result.regressions
            if output.format == .table {
                print(
                    "FAIL: \(sites.count) call site\(sites.count == 1 ? "" : "s") regressed by more than \(pct)"
                        + (result.total.isRegression
                            ? "; all sites together: \(result.total.regressedOn.joined(separator: ", "))" : ""))
                for s in sites.prefix(10) {
                    print("  \(s.function ?? "<unknown>") (\(s.file ?? "?")): \(s.regressedOn.joined(separator: ", "))")
                }
                if sites.count > 10 { print("  … and \(sites.count - 10) more (--format json lists them all)") }
            }
            throw ExitCode(1)
        }
        if output.format == .table { print("ok: no call site regressed by more than \(pct)") }
    }
}
