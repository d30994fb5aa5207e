// `unclog timeline`: a terminal picture of who ran, who waited and who stalled.
// Slices are found without a secondary index: a greenthread's by walking slices.prev_id back
// from the nearest checkpoint after the window; a thread's as an id range between checkpoints.

import UnclogStore

/// What to draw.
public struct TimelineOptions: Sendable {
    /// The recorder's greenthread id; nil draws every thread and the busiest greenthreads.
    public var greenthread: Int64?
    /// The trace; nil: the most recent.
    public var traceID: Int64?
    /// Window, in ns since the trace start; nil = from the start / to the end.
    public var from: Int64?
    public var to: Int64?
    /// Columns of the drawing.
    public var width: Int = 100
    /// Greenthread rows at most (all-greenthreads view).
    public var limit: Int = 40

    /// What to draw; the defaults draw the latest trace whole.
    public init(
        greenthread: Int64? = nil, traceID: Int64? = nil, from: Int64? = nil, to: Int64? = nil,
        width: Int = 100, limit: Int = 40
    ) {
        self.greenthread = greenthread
        self.traceID = traceID
        self.from = from
        self.to = to
        self.width = width
        self.limit = limit
    }
}

/// A slice as the timeline needs it.
public struct SliceRow: Sendable, Hashable {
    /// The greenthread's and the OS thread's keys (`StoreKey`).
    public var gtKey: Int64
    public var threadKey: Int64
    /// Ready since (nil: unknown), then ran from start to end (ns since the trace start).
    public var readyNs: Int64?
    public var startNs: Int64
    public var endNs: Int64
    /// Why it ran: `switch_reasons.code`.
    public var reason: Int64
}

/// States a column can show, in increasing priority.
enum CellState: UInt8 {
    case idle = 0, ioWait, ready, running, stalled
    var glyph: Character {
        switch self {
        case .idle: " "
        case .ioWait: "."
        case .ready: "-"
        case .running: "#"
        case .stalled: "!"
        }
    }
}

extension TraceStore {
    /// The trace to show: the one asked for, or the most recent.
    func resolveTrace(_ id: Int64?) throws(StoreError) -> Int64 {
        if let id {
            guard try db.scalar("SELECT id FROM traces WHERE id = ?", [.int(id)]) != nil else {
                throw StoreError("\(db.path): no trace \(id) (see `unclog sql \(db.path) \"SELECT id, path FROM traces\"`)")
            }
            return id
        }
        guard let last = try db.scalar("SELECT MAX(id) FROM traces") else {
            throw StoreError("\(db.path): the database holds no trace yet")
        }
        return last
    }

    /// The slices of one greenthread that overlap [from, to], oldest first.
    public func greenthreadSlices(gtKey: Int64, from: Int64, to: Int64) throws(StoreError) -> [SliceRow] {
        // A chain out of time order (kind 3 checkpoint) is walked whole, from the last slice.
        let inOrder = try db.scalar("SELECT 1 FROM slice_checkpoints WHERE kind = 3 AND key = ? LIMIT 1", [.int(gtKey)]) == nil
        // Start from the first checkpoint that begins after the window, else the last slice.
        var startID =
            !inOrder
            ? nil
            : try db.scalar(
                """
                SELECT row_id FROM slice_checkpoints WHERE kind = 0 AND key = ?1 AND start_ns > ?2 ORDER BY row_id LIMIT 1
                """, [.int(gtKey), .int(to)])
        if startID == nil { startID = try db.scalar("SELECT last_slice_id FROM greenthreads WHERE key = ?", [.int(gtKey)]) }
        guard let startID else { return [] }
        let s = try db.prepare(
            """
            WITH RECURSIVE chain(id, gt_key, thread_key, ready_ns, start_ns, end_ns, reason, prev_id) AS (
              SELECT id, gt_key, thread_key, ready_ns, start_ns, end_ns, reason, prev_id FROM slices WHERE id = ?1
              UNION ALL
              SELECT s.id, s.gt_key, s.thread_key, s.ready_ns, s.start_ns, s.end_ns, s.reason, s.prev_id
              FROM chain c JOIN slices s ON s.id = c.prev_id WHERE ?4 = 0 OR c.end_ns >= ?2)
            SELECT gt_key, thread_key, ready_ns, start_ns, end_ns, reason FROM chain WHERE end_ns >= ?2 AND start_ns <= ?3
            """)
        try s.bind([.int(startID), .int(from), .int(to), .int(inOrder ? 1 : 0)])
        let out = try Self.sliceRows(s)
        return inOrder ? out.reversed() : out.sorted { ($0.startNs, $0.endNs) < ($1.startNs, $1.endNs) }
    }

    /// The slices of one thread that overlap [from, to], in time order.
    public func threadSlices(threadKey: Int64, from: Int64, to: Int64) throws(StoreError) -> [SliceRow] {
        let (lo, hi) = try idRange(kind: 1, key: threadKey, from: from, to: to)
        let s = try db.prepare(
            """
            SELECT gt_key, thread_key, ready_ns, start_ns, end_ns, reason FROM slices
            WHERE id >= ?1 AND id < ?2 AND thread_key = ?3 AND end_ns >= ?4 AND start_ns <= ?5 ORDER BY id
            """)
        try s.bind([.int(lo), .int(hi), .int(threadKey), .int(from), .int(to)])
        return try Self.sliceRows(s)
    }

    /// The rows of a statement selecting gt_key, thread_key, ready_ns, start_ns, end_ns, reason.
    static func sliceRows(_ s: Statement) throws(StoreError) -> [SliceRow] {
        var out: [SliceRow] = []
        while try s.step() {
            out.append(
                SliceRow(
                    gtKey: s.int(0), threadKey: s.int(1), readyNs: s.optInt(2), startNs: s.int(3),
                    endNs: s.int(4), reason: s.int(5)))
        }
        return out
    }

    /// The id range holding a thread's rows (kind 1: slices, 2: I/O waits) that may overlap
    /// [from, to]: from the last checkpoint starting before `from` to the first after `to`.
    func idRange(kind: Int64, key: Int64, from: Int64, to: Int64) throws(StoreError) -> (Int64, Int64) {
        var lo = try db.scalar(
            """
            SELECT row_id FROM slice_checkpoints WHERE kind = ?1 AND key = ?2 AND start_ns < ?3 ORDER BY row_id DESC LIMIT 1
            """, [.int(kind), .int(key), .int(from)])
        if lo == nil {
            lo = try db.scalar("SELECT MIN(row_id) FROM slice_checkpoints WHERE kind = ?1 AND key = ?2", [.int(kind), .int(key)])
        }
        // A thread's first row is always a checkpoint: none means it has no rows at all.
        guard let lo else { return (0, 0) }
        let hi =
            try db.scalar(
                """
                SELECT row_id FROM slice_checkpoints WHERE kind = ?1 AND key = ?2 AND start_ns > ?3 ORDER BY row_id LIMIT 1
                """, [.int(kind), .int(key), .int(to)]) ?? Int64.max
        return (lo, hi)
    }

    /// Draws the timeline.
    public func timeline(_ o: TimelineOptions) throws(StoreError) -> String {
        let trace = try resolveTrace(o.traceID)
        let width = max(10, min(o.width, 1000))
        var from = o.from ?? 0
        let traceEnd = try db.scalar("SELECT duration_ns FROM traces WHERE id = ?", [.int(trace)]) ?? 0
        var to = o.to ?? traceEnd
        var rows: [(label: String, cells: [CellState])] = []

        func paint(_ cells: inout [CellState], _ a: Int64, _ b: Int64, _ state: CellState) {
            guard b >= from, a <= to, to > from else { return }
            let span = Double(to - from)
            // Column c covers [c, c + 1) in units of span/width: [a, b] covers the columns from
            // floor(a) to ceil(b) − 1, so an interval ending on a column boundary does not spill
            // into the next column; one shorter than a column still shows in its own.
            let x0 = Double(max(a, from) - from) / span * Double(width)
            let x1 = Double(min(b, to) - from) / span * Double(width)
            let c0 = max(0, min(width - 1, Int(x0)))
            let c1 = max(c0, min(width - 1, Int(x1.rounded(.up)) - 1))
            for c in c0...c1 where cells[c].rawValue < state.rawValue { cells[c] = state }
        }
        func paintGreenthread(_ slices: [SliceRow], stalls: [(Int64, Int64)]) -> [CellState] {
            var cells = [CellState](repeating: .idle, count: width)
            var prevEnd: Int64?
            for s in slices {
                if let r = s.readyNs {
                    if s.reason == 2, let p = prevEnd { paint(&cells, p, r, .ioWait) }
                    paint(&cells, r, s.startNs, .ready)
                }
                paint(&cells, s.startNs, s.endNs, .running)
                prevEnd = s.endNs
            }
            for (a, b) in stalls { paint(&cells, a, b, .stalled) }
            return cells
        }
        func stallsOf(_ column: String, _ key: Int64) throws(StoreError) -> [(Int64, Int64)] {
            let s = try db.prepare("SELECT start_ns, end_ns FROM stalls WHERE \(column) = ? AND end_ns >= ? AND start_ns <= ?")
            try s.bind([.int(key), .int(from), .int(to)])
            var out: [(Int64, Int64)] = []
            while try s.step() { out.append((s.int(0), s.int(1))) }
            return out
        }
        func label(gtKey: Int64) throws(StoreError) -> String {
            let s = try db.prepare("SELECT gt, name FROM greenthreads WHERE key = ?")
            try s.bind([.int(gtKey)])
            guard try s.step() else { return "gt \(StoreKey.id(ofObject: gtKey))" }
            return "gt \(s.int(0)) \(s.text(1) ?? "")"
        }

        // A window the user set that holds nothing (e.g. --from past the end) is an error, not
        // an empty drawing.
        func checkWindow() throws(StoreError) {
            guard o.from != nil || o.to != nil, to <= from else { return }
            throw StoreError(
                "\(db.path): empty window \(DurationText.format(from)) … \(DurationText.format(to)) "
                    + "(trace \(trace) runs from 0ns to \(DurationText.format(traceEnd)))")
        }

        if let gt = o.greenthread {
            let gtKey = StoreKey.greenthread(trace: trace, id: gt)
            guard try db.scalar("SELECT 1 FROM greenthreads WHERE key = ?", [.int(gtKey)]) != nil else {
                throw StoreError("\(db.path): trace \(trace) has no greenthread \(gt)")
            }
            if o.from == nil || o.to == nil {
                // Default window: the greenthread's own life.
                var first = try db.scalar("SELECT MIN(start_ns) FROM slice_checkpoints WHERE kind = 0 AND key = ?", [.int(gtKey)])
                var last = try db.scalar(
                    "SELECT s.end_ns FROM greenthreads g JOIN slices s ON s.id = g.last_slice_id WHERE g.key = ?",
                    [.int(gtKey)])
                if try db.scalar("SELECT 1 FROM slice_checkpoints WHERE kind = 3 AND key = ? LIMIT 1", [.int(gtKey)]) != nil {
                    let all = try greenthreadSlices(gtKey: gtKey, from: Int64.min, to: Int64.max)  // out of order: look at all
                    first = all.map(\.startNs).min()
                    last = all.map(\.endNs).max()
                }
                if o.from == nil, let first { from = first }
                if o.to == nil, let last { to = last }
            }
            try checkWindow()
            let slices = try greenthreadSlices(gtKey: gtKey, from: from, to: to)
            rows.append((try label(gtKey: gtKey), paintGreenthread(slices, stalls: try stallsOf("gt_key", gtKey))))
        } else {
            try checkWindow()
            let ts = try db.prepare("SELECT key, tid, name FROM threads WHERE trace_id = ? ORDER BY tid")
            try ts.bind([.int(trace)])
            var threadRows: [(Int64, String)] = []
            while try ts.step() { threadRows.append((ts.int(0), "thread \(ts.int(1))\(ts.text(2).map { " " + $0 } ?? "")")) }
            var byGreenthread: [Int64: [SliceRow]] = [:]
            for (tk, name) in threadRows {
                let slices = try threadSlices(threadKey: tk, from: from, to: to)
                var cells = [CellState](repeating: .idle, count: width)
                let (lo, hi) = try idRange(kind: 2, key: tk, from: from, to: to)
                let io = try db.prepare(
                    """
                    SELECT start_ns, end_ns FROM io_waits WHERE id >= ? AND id < ? AND thread_key = ? AND end_ns >= ? AND start_ns <= ?
                    """)
                try io.bind([.int(lo), .int(hi), .int(tk), .int(from), .int(to)])
                while try io.step() { paint(&cells, io.int(0), io.int(1), .ioWait) }
                for s in slices {
                    paint(&cells, s.startNs, s.endNs, .running)
                    byGreenthread[s.gtKey, default: []].append(s)
                }
                for (a, b) in try stallsOf("thread_key", tk) { paint(&cells, a, b, .stalled) }
                if !slices.isEmpty || cells.contains(where: { $0 != .idle }) { rows.append((name, cells)) }
            }
            // The busiest greenthreads in the window (running plus waiting), in order of first appearance.
            let chosen = byGreenthread.map { key, s in
                (key, s.reduce(Int64(0)) { $0 + ($1.endNs - ($1.readyNs ?? $1.startNs)) }, s.first!.startNs)
            }.sorted { $0.1 > $1.1 }.prefix(max(0, o.limit)).sorted { ($0.2, $0.0) < ($1.2, $1.0) }
            for (key, _, _) in chosen {
                rows.append((try label(gtKey: key), paintGreenthread(byGreenthread[key]!, stalls: try stallsOf("gt_key", key))))
            }
            if byGreenthread.count > chosen.count {
                rows.append(("(\(byGreenthread.count - chosen.count) more greenthreads; --limit)", []))
            }
        }

        let labelWidth = min(32, rows.map(\.label.count).max() ?? 10)
        let perColumn = to > from ? (to - from) / Int64(width) : 0
        var out =
            "trace \(trace): \(DurationText.format(from)) … \(DurationText.format(to)), one column = \(DurationText.format(perColumn))\n"
        out += "legend: # running  ! stalled  - ready, waiting for the thread  . waiting on I/O\n"
        for r in rows {
            var l = r.label.count > labelWidth ? String(r.label.prefix(labelWidth - 1)) + "…" : r.label
            l += String(repeating: " ", count: labelWidth - l.count)
            out += r.cells.isEmpty ? r.label + "\n" : l + " |" + String(r.cells.map(\.glyph)) + "|\n"
        }
        return out
    }
}
