// The read side of the store: the queries behind `stalls`, `top`, `check` and `sql`, over a
// database opened read-only. Analysis lives in the schema's views (stall_sites,
// stall_attribution, top_sites); this file only selects, filters and shapes rows.

import Foundation
import UnclogStore
import UnclogTrace

/// A frame of a stall's stack as the CLI prints it.
public struct StackFrameInfo: Sendable, Hashable {
    /// Function, file and line, when known (nil: unsymbolized or unknown).
    public var function: String?
    public var file: String?
    public var line: Int64?
    /// Runtime, hub or recorder code (attribution skips it).
    public var isInternal: Bool
}

/// One stall, with its call site and stack (innermost first).
public struct StallInfo: Sendable {
    /// `stalls.id`, and the trace it belongs to.
    public var id: Int64
    public var traceID: Int64
    /// The recorder's ids of the greenthread that stalled (0: unknown) and its OS thread.
    public var greenthreadID: Int64
    public var greenthreadName: String?
    public var threadID: Int64
    /// Start (ns since the trace start) and duration.
    public var startNs: Int64
    public var durationNs: Int64
    /// Its call site (the `stall_sites` view).
    public var function: String?
    public var file: String?
    public var line: Int64?
    /// Stacks sampled during it; greenthreads it kept waiting and the wait it added to them.
    public var samples: Int64
    public var victims: Int64
    public var victimWaitNs: Int64
    /// False when the recording ended inside it (the duration is a lower bound).
    public var complete: Bool
    public var stack: [StackFrameInfo]
}

/// How `top` groups call sites.
public enum SiteGrouping: String, CaseIterable, Sendable {
    case function, line, file
}

/// A read-only view of a unclog database.
public final class TraceStore {
    /// The connection (read-only), for queries of the other modules.
    public let db: Database

    /// Opens `path` read-only and checks it is a unclog database.
    public init(path: String) throws(StoreError) {
        db = try Database.openStore(path: path)
    }

    /// Trace ids in the database, oldest first.
    public func traceIDs() throws(StoreError) -> [Int64] {
        let s = try db.prepare("SELECT id FROM traces ORDER BY id")
        var out: [Int64] = []
        while try s.step() { out.append(s.int(0)) }
        return out
    }

    /// Stalls at least `minDuration` long, longest first.
    public func stalls(minDuration: Int64 = 0, limit: Int? = nil, traceID: Int64? = nil) throws(StoreError) -> [StallInfo] {
        var sql = """
            SELECT s.stall_id, s.trace_id, g.gt, g.name, t.tid, s.start_ns, s.duration_ns, s.function, s.file, s.line,
                   s.samples, s.victims, s.victim_wait_ns, s.complete, s.stack_key
            FROM stall_sites s
            LEFT JOIN greenthreads g ON g.key = s.gt_key
            LEFT JOIN threads t ON t.key = s.thread_key
            WHERE s.duration_ns >= ?
            """
        var args: [SQLValue] = [.int(minDuration)]
        if let traceID {
            sql += " AND s.trace_id = ?"
            args.append(.int(traceID))
        }
        sql += " ORDER BY s.duration_ns DESC, s.stall_id"
        if let limit {
            sql += " LIMIT ?"
            args.append(.int(Int64(limit)))
        }
        let s = try db.prepare(sql)
        try s.bind(args)
        let frames = try db.prepare(
            """
            SELECT f.function, f.file, f.line, f.internal FROM stack_frames sf JOIN frames f ON f.key = sf.frame_key
            WHERE sf.stack_key = ? ORDER BY sf.depth
            """)
        var out: [StallInfo] = []
        while try s.step() {
            var stack: [StackFrameInfo] = []
            if let key = s.optInt(14) {
                try frames.bind([.int(key)])
                while try frames.step() {
                    stack.append(
                        StackFrameInfo(
                            function: frames.text(0), file: frames.text(1), line: frames.optInt(2),
                            isInternal: frames.int(3) != 0))
                }
            }
            out.append(
                StallInfo(
                    id: s.int(0), traceID: s.int(1), greenthreadID: s.optInt(2) ?? 0, greenthreadName: s.text(3),
                    threadID: s.optInt(4) ?? 0, startNs: s.int(5), durationNs: s.int(6), function: s.text(7), file: s.text(8),
                    line: s.optInt(9), samples: s.int(10), victims: s.int(11), victimWaitNs: s.int(12),
                    complete: s.int(13) != 0, stack: stack))
        }
        return out
    }

    /// Stalls as a printable table (the JSON keys are the documented `unclog stalls` fields).
    public static func stallTable(_ stalls: [StallInfo]) -> ResultTable {
        var t = ResultTable(
            columns: [
                "trace_id", "greenthread_id", "greenthread_name", "thread_id", "start_ns", "duration_ns",
                "function", "file", "line", "samples", "victims", "victim_wait_ns", "complete", "stack",
            ],
            rightAligned: ["start_ns", "duration_ns", "line", "samples", "victims", "victim_wait_ns"])
        for s in stalls {
            let appFrames = s.stack.filter { !$0.isInternal }
            let stackJSON =
                "["
                + s.stack.map { f in
                    "{\"function\": \(f.function.map(jsonQuote) ?? "null"), \"file\": \(f.file.map(jsonQuote) ?? "null"), \"line\": \(f.line.map(String.init) ?? "null"), \"internal\": \(f.isInternal)}"
                }.joined(separator: ", ") + "]"
            let stackText =
                appFrames.prefix(3).map { $0.function ?? "?" }.joined(separator: " < ")
                + (appFrames.count > 3 ? " < …" : "")
            t.rows.append([
                .int(s.traceID), .int(s.greenthreadID), .text(s.greenthreadName), .int(s.threadID),
                .duration(s.startNs), .duration(s.durationNs), .text(s.function), .text(s.file), .int(s.line),
                .int(s.samples), .int(s.victims), .duration(s.victimWaitNs),
                // "no": the recording ended inside this stall, so its duration is a lower bound
                Cell(json: s.complete ? "true" : "false", text: s.complete ? "yes" : "no", csv: s.complete ? "1" : "0"),
                .raw(json: stackJSON, text: stackText),
            ])
        }
        return t
    }

    /// Call sites ranked by total stall time (self or inclusive), as a table.
    ///
    /// The ranking is the schema's `top_sites` view (nearest-rank percentiles of stall
    /// duration, each site's share of all stall time); the default question — self time by
    /// function, file and line over the whole database — reads the view itself. A coarser
    /// grouping, inclusive attribution or one trace of several ranks other rows the same way
    /// (`rankedSites`), under the view's column names.
    public func top(
        by grouping: SiteGrouping, inclusive: Bool, limit: Int? = nil, traceID: Int64? = nil
    ) throws(StoreError) -> ResultTable {
        let siteColumns: [String]
        switch grouping {
        case .function: siteColumns = ["function", "file"]
        case .line: siteColumns = ["function", "file", "line"]
        case .file: siteColumns = ["file"]
        }
        let site = siteColumns.joined(separator: ", ")
        let ranked =
            grouping == .line && !inclusive && traceID == nil
            ? "top_sites" : "(\(Self.rankedSites(site, inclusive: inclusive, traceID: traceID)))"
        let sql = """
            SELECT \(site), stalls, total_ns, max_ns, p50_ns, p99_ns, share, victim_wait_ns FROM \(ranked)
            ORDER BY total_ns DESC, \(site) \(limit.map { "LIMIT \($0)" } ?? "")
            """
        let s = try db.prepare(sql)
        var t = ResultTable(
            columns: siteColumns + ["stalls", "total_ns", "max_ns", "p50_ns", "p99_ns", "share", "victim_wait_ns"],
            rightAligned: ["line", "stalls", "total_ns", "max_ns", "p50_ns", "p99_ns", "share", "victim_wait_ns"])
        let n = Int32(siteColumns.count)
        while try s.step() {
            var row: [Cell] = []
            for i in 0..<n {
                row.append(siteColumns[Int(i)] == "line" ? .int(s.optInt(i)) : .text(s.text(i) ?? (i == 0 ? "<unknown>" : nil)))
            }
            row += [
                .int(s.int(n)), .duration(s.int(n + 1)), .duration(s.int(n + 2)), .duration(s.optInt(n + 3)),
                .duration(s.optInt(n + 4)), .percent(s.isNull(n + 5) ? nil : s.double(n + 5)), .duration(s.int(n + 6)),
            ]
            t.rows.append(row)
        }
        return t
    }

    /// `top_sites`'s query for another partition (`site`: its SQL column list) and scope, and
    /// optionally one trace: one row per site with the view's columns.
    static func rankedSites(_ site: String, inclusive: Bool, traceID: Int64?) -> String {
        let traceFilter = traceID.map { " AND trace_id = \($0)" } ?? ""
        // One row per (stall, site): inclusive attribution lists a stall once per distinct
        // frame, so grouping by function or file must not charge it once per line or function.
        return """
            WITH a AS (SELECT DISTINCT stall_id, \(site), duration_ns, victim_wait_ns FROM stall_attribution
                       WHERE scope = '\(inclusive ? "inclusive" : "self")'\(traceFilter)),
            r AS (SELECT a.*, ROW_NUMBER() OVER (PARTITION BY \(site) ORDER BY duration_ns) AS rn,
                         COUNT(*) OVER (PARTITION BY \(site)) AS n FROM a)
            SELECT \(site), COUNT(*) AS stalls, SUM(duration_ns) AS total_ns, MAX(duration_ns) AS max_ns,
                   MIN(CASE WHEN rn >= 0.50 * n THEN duration_ns END) AS p50_ns,
                   MIN(CASE WHEN rn >= 0.99 * n THEN duration_ns END) AS p99_ns,
                   1.0 * SUM(duration_ns) / (SELECT SUM(duration_ns) FROM stalls WHERE 1=1\(traceFilter)) AS share,
                   SUM(victim_wait_ns) AS victim_wait_ns
            FROM r GROUP BY \(site)
            """
    }

    /// Runs one read-only SQL statement and returns its rows.
    public func query(_ sql: String, maxRows: Int? = nil) throws(StoreError) -> ResultTable {
        let s = try db.prepareSingle(sql)
        guard s.isReadOnly else {
            throw StoreError("SQL error: `unclog sql` is read-only; that statement would change the database")
        }
        let n = s.columnCount
        var t = ResultTable(columns: (0..<n).map { s.columnName($0) })
        var numeric = Set(t.columns)
        do throws(StoreError) {
            while try s.step() {
                var row: [Cell] = []
                for i in 0..<n {
                    let v = s.value(i)
                    switch v {
                    case .int, .double, .null: break
                    default: numeric.remove(t.columns[Int(i)])
                    }
                    row.append(.sql(v))
                }
                t.rows.append(row)
                if let maxRows, t.rows.count >= maxRows { break }
            }
        } catch {
            throw StoreError("SQL error: \(db.lastError)")
        }
        t.rightAligned = numeric
        return t
    }
}
