// `unclog diff`: compare the stalls of two recordings call site by call site, and gate CI on
// regressions. A call site is matched across the two traces by its function and file, not
// its line: an edit above a blocking call moves its line but keeps the match (the lines seen
// on each side are listed). Each site's stall time, stall count and victim wait are compared;
// a site regresses when one of them grows by more than the limit (a site that is new in the
// second recording has grown without bound).

import UnclogQuery
import UnclogStore

/// One call site's stalls in one trace.
public struct SiteStats: Sendable, Equatable {
    public var stalls: Int64 = 0
    public var totalNs: Int64 = 0
    public var maxNs: Int64 = 0
    public var victimWaitNs: Int64 = 0
    /// The lines the site's stalls were charged to, ascending.
    public var lines: [Int64] = []

    public init(stalls: Int64 = 0, totalNs: Int64 = 0, maxNs: Int64 = 0, victimWaitNs: Int64 = 0, lines: [Int64] = []) {
        self.stalls = stalls
        self.totalNs = totalNs
        self.maxNs = maxNs
        self.victimWaitNs = victimWaitNs
        self.lines = lines
    }
}

/// What the regression gate compares.
public enum DiffMeasure: String, CaseIterable, Sendable, Hashable {
    case stallTime = "stall-time", stalls, victimWait = "victim-wait"
}

/// How a site changed.
public enum SiteStatus: String, Sendable {
    case new, gone, regressed, worse, better, same
}

/// A call site in the two traces.
public struct SiteChange: Sendable {
    public var function: String?
    public var file: String?
    public var before: SiteStats
    public var after: SiteStats
    public var status: SiteStatus
    /// Which measures grew past the limit ("stall time", "stalls", "victim wait").
    public var regressedOn: [String]

    public var stallTimeChangeNs: Int64 { after.totalNs - before.totalNs }
    public var victimWaitChangeNs: Int64 { after.victimWaitNs - before.victimWaitNs }
    /// Relative change (0.25 = +25 %); nil when the site had none before.
    public static func relative(_ before: Int64, _ after: Int64) -> Double? {
        before == 0 ? (after == 0 ? 0 : nil) : Double(after - before) / Double(before)
    }
    public var stallTimeChange: Double? { Self.relative(before.totalNs, after.totalNs) }
    public var stallsChange: Double? { Self.relative(before.stalls, after.stalls) }
    public var victimWaitChange: Double? { Self.relative(before.victimWaitNs, after.victimWaitNs) }
    public var isRegression: Bool { !regressedOn.isEmpty }
}

/// What to compare and when to fail.
public struct DiffOptions: Sendable {
    /// The trace of each database; nil = its most recent.
    public var beforeTrace: Int64?
    public var afterTrace: Int64?
    /// A site regresses when a measure grows by more than this fraction (0.2 = 20 %); nil = never.
    public var regressionLimit: Double?
    /// Sites whose stall time is below this in both traces never count as regressions (noise).
    public var ignoreBelowNs: Int64 = 0
    /// The measures the gate looks at (victim wait varies most between runs of one program).
    public var measures: Set<DiffMeasure> = Set(DiffMeasure.allCases)

    public init(
        beforeTrace: Int64? = nil, afterTrace: Int64? = nil, regressionLimit: Double? = nil, ignoreBelowNs: Int64 = 0,
        measures: Set<DiffMeasure> = Set(DiffMeasure.allCases)
    ) {
        self.measures = measures
        self.beforeTrace = beforeTrace
        self.afterTrace = afterTrace
        self.regressionLimit = regressionLimit
        self.ignoreBelowNs = ignoreBelowNs
    }
}

/// The comparison: every site seen in either trace, biggest change first, and the totals.
public struct DiffResult: Sendable {
    public var beforeTrace: TraceSummary
    public var afterTrace: TraceSummary
    public var changes: [SiteChange]
    /// All call sites together (status computed the same way).
    public var total: SiteChange
    public var regressionLimit: Double?
    public var regressions: [SiteChange] { changes.filter(\.isRegression) }
    /// True when a site, or all sites together, regressed past the limit.
    public var failed: Bool { total.isRegression || changes.contains(where: \.isRegression) }
}

/// Call-site diff of two databases.
public enum TraceDiff {
    /// Per (function, file): the self-attributed stalls of `trace` (stall_sites), in one grouped query.
    public static func sites(_ store: TraceStore, trace: Int64) throws(StoreError) -> [SiteKey: SiteStats] {
        let s = try store.db.prepare(
            """
            SELECT function, file, COUNT(*), SUM(duration_ns), MAX(duration_ns), SUM(victim_wait_ns),
                   GROUP_CONCAT(DISTINCT line)
            FROM stall_sites WHERE stall_id >= ?1 AND stall_id < ?2 GROUP BY function, file
            """)
        let rows = StoreKey.rows(trace: trace)
        try s.bind([.int(rows.lowerBound), .int(rows.upperBound)])
        var out: [SiteKey: SiteStats] = [:]
        while try s.step() {
            let lines = (s.text(6) ?? "").split(separator: ",").compactMap { Int64($0) }.sorted()
            out[SiteKey(function: s.text(0), file: s.text(1))] = SiteStats(
                stalls: s.int(2), totalNs: s.int(3), maxNs: s.int(4), victimWaitNs: s.int(5), lines: lines)
        }
        return out
    }

    /// A call site's identity across traces.
    public struct SiteKey: Hashable, Sendable {
        public var function: String?
        public var file: String?
    }

    /// Compares the stalls of `before` and `after`.
    public static func diff(
        before: TraceStore, after: TraceStore, options: DiffOptions = DiffOptions()
    ) throws(StoreError) -> DiffResult {
        let bt = try before.traceSummary(options.beforeTrace)
        let at = try after.traceSummary(options.afterTrace)
        let b = try sites(before, trace: bt.id)
        let a = try sites(after, trace: at.id)
        var changes: [SiteChange] = []
        var totalBefore = SiteStats(), totalAfter = SiteStats()
        for key in Set(b.keys).union(a.keys) {
            let sb = b[key] ?? SiteStats(), sa = a[key] ?? SiteStats()
            changes.append(classify(function: key.function, file: key.file, before: sb, after: sa, options: options))
            totalBefore.stalls += sb.stalls; totalBefore.totalNs += sb.totalNs; totalBefore.victimWaitNs += sb.victimWaitNs
            totalBefore.maxNs = max(totalBefore.maxNs, sb.maxNs)
            totalAfter.stalls += sa.stalls; totalAfter.totalNs += sa.totalNs; totalAfter.victimWaitNs += sa.victimWaitNs
            totalAfter.maxNs = max(totalAfter.maxNs, sa.maxNs)
        }
        changes.sort { x, y in
            let dx = abs(x.stallTimeChangeNs), dy = abs(y.stallTimeChangeNs)
            if dx != dy { return dx > dy }
            let vx = abs(x.victimWaitChangeNs), vy = abs(y.victimWaitChangeNs)
            if vx != vy { return vx > vy }
            return ((x.function ?? ""), (x.file ?? "")) < ((y.function ?? ""), (y.file ?? ""))
        }
        let total = classify(function: "(all call sites)", file: nil, before: totalBefore, after: totalAfter, options: options)
        return DiffResult(
            beforeTrace: bt, afterTrace: at, changes: changes, total: total, regressionLimit: options.regressionLimit)
    }

    /// The status of one site, and the measures that grew past the limit.
    static func classify(
        function: String?, file: String?, before: SiteStats, after: SiteStats, options: DiffOptions
    ) -> SiteChange {
        var c = SiteChange(function: function, file: file, before: before, after: after, status: .same, regressedOn: [])
        if let limit = options.regressionLimit, max(before.totalNs, after.totalNs) >= options.ignoreBelowNs, after.stalls > 0 {
            func grew(_ x: Int64, _ y: Int64) -> Bool {
                // Past the limit: y > x · (1 + limit); a site new in `after` (x = 0) always is.
                guard x > 0 else { return y > 0 }
                return Double(y) > Double(x) * (1 + limit)
            }
            let m = options.measures
            if m.contains(.stallTime), grew(before.totalNs, after.totalNs) { c.regressedOn.append("stall time") }
            if m.contains(.stalls), grew(before.stalls, after.stalls) { c.regressedOn.append("stalls") }
            if m.contains(.victimWait), grew(before.victimWaitNs, after.victimWaitNs) { c.regressedOn.append("victim wait") }
        }
        if before.stalls == 0 && after.stalls > 0 {
            c.status = .new
        } else if after.stalls == 0 && before.stalls > 0 {
            c.status = .gone
        } else if c.isRegression {
            c.status = .regressed
        } else if after.totalNs > before.totalNs || (after.totalNs == before.totalNs && after.victimWaitNs > before.victimWaitNs)
        {
            c.status = .worse
        } else if after.totalNs < before.totalNs || after.victimWaitNs < before.victimWaitNs {
            c.status = .better
        }
        return c
    }
}

extension DiffResult {
    /// The comparison as a table. Table format: one compact row per site; JSON and CSV: every
    /// measure in its own column (durations in ns, changes as fractions, null for new sites).
    public func table(_ format: OutputFormat, limit: Int? = nil) -> ResultTable {
        let rows = limit.map { Array(changes.prefix($0)) } ?? changes
        func pct(_ v: Double?) -> String {
            guard let v else { return "new" }
            let p = (v * 1000).rounded() / 10
            return (p > 0 ? "+" : "") + (p == p.rounded() ? String(Int(p)) : String(p)) + "%"
        }
        func lines(_ s: SiteStats) -> String { s.lines.map(String.init).joined(separator: ",") }
        // A relative change with 4 decimals and its sign (null: new site).
        func fraction(_ v: Double?) -> Cell {
            guard let v, v.isFinite else { return .null }
            let r = Int64((abs(v) * 10_000).rounded())
            var frac = String(r % 10_000)
            while frac.count < 4 { frac = "0" + frac }
            let text = (v < 0 && r != 0 ? "-" : "") + "\(r / 10_000).\(frac)"
            return .raw(json: text, text: text)
        }
        if format == .table {
            var t = ResultTable(
                columns: ["status", "function", "file", "lines", "stall time", "change", "stalls", "victim wait"],
                rightAligned: ["change"])
            for c in rows + [total] {
                let lineText =
                    c.before.lines == c.after.lines
                    ? lines(c.after)
                    : "\(c.before.lines.isEmpty ? "-" : lines(c.before)) → \(c.after.lines.isEmpty ? "-" : lines(c.after))"
                t.rows.append([
                    .text(c.status == .regressed ? "REGRESSED" : c.status.rawValue),
                    .text(c.function ?? "<unknown>"), .text(c.file), .text(lineText),
                    .text("\(DurationText.format(c.before.totalNs)) → \(DurationText.format(c.after.totalNs))"),
                    .text(c.before.totalNs == 0 && c.after.totalNs == 0 ? "" : pct(c.stallTimeChange)),
                    .text("\(c.before.stalls) → \(c.after.stalls)"),
                    .text(
                        "\(DurationText.format(c.before.victimWaitNs)) → \(DurationText.format(c.after.victimWaitNs))"
                            + (c.before.victimWaitNs == c.after.victimWaitNs ? "" : " (\(pct(c.victimWaitChange)))")),
                ])
            }
            return t
        }
        var t = ResultTable(columns: [
            "status", "function", "file", "lines_before", "lines_after",
            "stalls_before", "stalls_after", "stall_ns_before", "stall_ns_after", "stall_ns_change",
            "stall_time_change", "stalls_change", "max_ns_before", "max_ns_after",
            "victim_wait_ns_before", "victim_wait_ns_after", "victim_wait_change", "regressed_on",
        ])
        for c in rows {
            func linesJSON(_ s: SiteStats) -> Cell {
                .raw(json: "[" + lines(s).replacingOccurrences(of: ",", with: ", ") + "]", text: lines(s))
            }
            t.rows.append([
                .text(c.status.rawValue), .text(c.function), .text(c.file), linesJSON(c.before), linesJSON(c.after),
                .int(c.before.stalls), .int(c.after.stalls), .int(c.before.totalNs), .int(c.after.totalNs),
                .int(c.stallTimeChangeNs), fraction(c.stallTimeChange), fraction(c.stallsChange),
                .int(c.before.maxNs), .int(c.after.maxNs), .int(c.before.victimWaitNs), .int(c.after.victimWaitNs),
                fraction(c.victimWaitChange),
                .raw(
                    json: "[" + c.regressedOn.map(JSONText.quoted).joined(separator: ", ") + "]",
                    text: c.regressedOn.joined(separator: ";")),
            ])
        }
        return t
    }
}
