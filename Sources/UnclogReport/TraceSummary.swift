// What the exporters need to know about one trace of a database: which trace (the one asked
// for, or the most recent), its process and recorder settings, its OS threads, and how
// greenthreads are named. Shared by the Chrome trace export, the HTML report and the diff.

import UnclogQuery
import UnclogStore

/// One trace's header row, as the report and the export show it.
public struct TraceSummary: Sendable {
    public var id: Int64
    public var path: String
    public var runtime: String?
    public var runtimeVersion: String?
    public var pid: Int64?
    public var hostname: String?
    /// The command line, as the JSON array the importer stored.
    public var argvJSON: String?
    public var thresholdNs: Int64?
    public var sampleIntervalNs: Int64?
    public var anchorWallNs: Int64?
    public var durationNs: Int64
    public var events: Int64
    public var bytesLost: Int64
    public var eventsDropped: Int64
    public var cleanEnd: Bool
    public var traceCount: Int

    /// The command line as one string (`python3 app.py`), from the stored JSON array.
    public var commandLine: String {
        guard let argvJSON else { return "" }
        return JSONText.stringArray(argvJSON)?.joined(separator: " ") ?? argvJSON
    }
}

/// An OS thread of a trace.
public struct ThreadSummary: Sendable {
    public var key: Int64
    public var tid: Int64
    public var name: String?
    public var slices: Int64
    public var busyNs: Int64
    public var ioWaitNs: Int64
    public var label: String { name.map { "\($0) (\(tid))" } ?? "thread \(tid)" }
}

extension TraceStore {
    /// The trace `id`, or the most recent one when nil.
    public func traceSummary(_ id: Int64?) throws(StoreError) -> TraceSummary {
        let count = Int(try db.scalar("SELECT COUNT(*) FROM traces") ?? 0)
        guard count > 0 else { throw StoreError("\(db.path): the database holds no trace yet") }
        let chosen: Int64
        if let id {
            guard try db.scalar("SELECT id FROM traces WHERE id = ?", [.int(id)]) != nil else {
                throw StoreError("\(db.path): no trace \(id) (see `unclog sql \(db.path) \"SELECT id, path FROM traces\"`)")
            }
            chosen = id
        } else {
            chosen = try db.scalar("SELECT MAX(id) FROM traces") ?? 0
        }
        let s = try db.prepare(
            """
            SELECT id, path, runtime, runtime_version, pid, hostname, argv, threshold_ns, sample_interval_ns, anchor_wall_ns,
                   COALESCE(duration_ns, 0), events, bytes_lost, events_dropped, clean_end
            FROM traces WHERE id = ?
            """)
        try s.bind([.int(chosen)])
        guard try s.step() else { throw StoreError("\(db.path): no trace \(chosen)") }
        return TraceSummary(
            id: s.int(0), path: s.text(1) ?? "", runtime: s.text(2), runtimeVersion: s.text(3), pid: s.optInt(4),
            hostname: s.text(5), argvJSON: s.text(6), thresholdNs: s.optInt(7), sampleIntervalNs: s.optInt(8),
            anchorWallNs: s.optInt(9), durationNs: s.int(10), events: s.int(11), bytesLost: s.int(12),
            eventsDropped: s.int(13), cleanEnd: s.int(14) != 0, traceCount: count)
    }

    /// The OS threads of a trace, by tid.
    public func threads(trace: Int64) throws(StoreError) -> [ThreadSummary] {
        let s = try db.prepare("SELECT key, tid, name, slices, busy_ns, io_wait_ns FROM threads WHERE trace_id = ? ORDER BY tid")
        try s.bind([.int(trace)])
        var out: [ThreadSummary] = []
        while try s.step() {
            out.append(
                ThreadSummary(
                    key: s.int(0), tid: s.int(1), name: s.text(2), slices: s.int(3), busyNs: s.int(4),
                    ioWaitNs: s.int(5)))
        }
        return out
    }

    /// The id range of a thread's rows (kind 1: slices, 2: I/O waits) that may overlap
    /// [from, to], from the slice_checkpoints entry points (see schema.sql and Timeline.swift):
    /// the last checkpoint starting before `from` up to the first starting after `to`.
    public func checkpointRange(
        kind: Int64, threadKey: Int64, trace: Int64, from: Int64, to: Int64
    ) throws(StoreError) -> (Int64, Int64) {
        let lo =
            try db.scalar(
                """
                SELECT row_id FROM slice_checkpoints WHERE kind = ?1 AND key = ?2 AND start_ns < ?3 ORDER BY row_id DESC LIMIT 1
                """, [.int(kind), .int(threadKey), .int(from)]) ?? StoreKey.rows(trace: trace).lowerBound
        let hi =
            try db.scalar(
                """
                SELECT row_id FROM slice_checkpoints WHERE kind = ?1 AND key = ?2 AND start_ns > ?3 ORDER BY row_id LIMIT 1
                """, [.int(kind), .int(threadKey), .int(to)]) ?? StoreKey.rows(trace: trace).upperBound
        return (lo, hi)
    }
}

/// Names of greenthreads, looked up on demand and cached up to a bound (memory stays flat
/// however many greenthreads a trace has).
final class GreenthreadNames {
    /// A class: handing one out per exported row costs one reference count, not one per field.
    final class Info {
        let gt: Int64
        let name: String
        let isHub: Bool
        let lastSliceID: Int64?
        /// `name #gt`, escaped for a JSON string (no quotes).
        let jsonLabel: [UInt8]
        /// `,"name":"name #gt"` and `,"bind_id":gt`: the export's run-event fields, made once.
        let jsonName: [UInt8]
        let jsonBind: [UInt8]

        init(gt: Int64, name: String, isHub: Bool, lastSliceID: Int64?) {
            self.gt = gt
            self.name = name
            self.isHub = isHub
            self.lastSliceID = lastSliceID
            jsonLabel = JSONText.escaped("\(name) #\(gt)")
            jsonName = Array(#","name":""#.utf8) + jsonLabel + [UInt8(ascii: "\"")]
            jsonBind = Array(#","bind_id":"#.utf8) + Array(String(gt).utf8)
        }
    }
    private var cache: [Int64: Info] = [:]
    private let lookup: Statement
    private let limit: Int

    init(_ store: TraceStore, limit: Int = 100_000) throws(StoreError) {
        lookup = try store.db.prepare("SELECT gt, name, is_hub, last_slice_id FROM greenthreads WHERE key = ?")
        self.limit = limit
    }

    func info(_ key: Int64) throws(StoreError) -> Info {
        if let i = cache[key] { return i }
        try lookup.bind([.int(key)])
        let info: Info
        if try lookup.step() {
            let gt = lookup.int(0)
            let name = lookup.text(1) ?? (lookup.int(2) != 0 ? "hub" : "greenthread")
            info = Info(gt: gt, name: name, isHub: lookup.int(2) != 0, lastSliceID: lookup.optInt(3))
        } else {
            let gt = StoreKey.id(ofObject: key)
            info = Info(gt: gt, name: "greenthread", isHub: false, lastSliceID: nil)
        }
        lookup.reset()
        if cache.count >= limit { cache.removeAll(keepingCapacity: true) }
        cache[key] = info
        return info
    }
}

/// Small JSON helpers that need no Foundation.
enum JSONText {
    /// The contents of a JSON string literal for `s` (escaped, without the quotes).
    static func escaped(_ s: String) -> [UInt8] {
        let w = ByteWriter(memory: ())
        var s = s
        s.withUTF8 { w.jsonEscape($0) }
        return w.contents
    }

    /// `s` as a quoted JSON string.
    static func quoted(_ s: String) -> String {
        "\"" + String(decoding: escaped(s), as: UTF8.self) + "\""
    }

    /// Parses a flat JSON array of strings (the importer's argv), nil if it is anything else.
    static func stringArray(_ text: String) -> [String]? {
        var out: [String] = []
        var it = Array(text.unicodeScalars).makeIterator()
        func skipSpace(_ c: inout Unicode.Scalar?) {
            while let x = c, x == " " || x == "\n" || x == "\t" || x == "\r" { c = it.next() }
        }
        var c = it.next()
        skipSpace(&c)
        guard c == "[" else { return nil }
        c = it.next()
        skipSpace(&c)
        if c == "]" { return [] }
        while true {
            guard c == "\"" else { return nil }
            var s = ""
            while let x = it.next() {
                if x == "\"" { break }
                if x == "\\" {
                    guard let e = it.next() else { return nil }
                    switch e {
                    case "n": s += "\n"
                    case "t": s += "\t"
                    case "r": s += "\r"
                    case "b": s += "\u{8}"
                    case "f": s += "\u{C}"
                    case "u":
                        var hex = ""
                        for _ in 0..<4 { if let h = it.next() { hex.unicodeScalars.append(h) } }
                        if let v = UInt32(hex, radix: 16), let u = Unicode.Scalar(v) { s.unicodeScalars.append(u) }
                    default: s.unicodeScalars.append(e)
                    }
                } else {
                    s.unicodeScalars.append(x)
                }
            }
            out.append(s)
            c = it.next()
            skipSpace(&c)
            if c == "]" { return out }
            guard c == "," else { return nil }
            c = it.next()
            skipSpace(&c)
        }
    }
}
