// The writer: turns the timeline rebuild's records into rows of trace T. It alone knows the
// storage side: the key scheme (`StoreKey`), NULL for nil, batched multi-row inserts for the
// big tables, the every-256th-row checkpoints the timeline queries start from, and the
// closing UPDATEs that resolve what only the whole trace tells (samples to stalls, names).

import UnclogStore
import UnclogTrace

/// Writes the records of one trace's rebuild into the database (inside the import's transaction).
final class RowWriter: TimelineSink {
    typealias Failure = StoreError

    let db: Database
    let traceID: Int64

    private let slicesOut: BatchInserter
    private let ioOut: BatchInserter
    private let checkpointsOut: BatchInserter
    private let samplesOut: BatchInserter
    private let victimsOut: BatchInserter
    private let stackFramesOut: Statement
    private let stringsOut: Statement
    private let framesOut: Statement
    private let imagesOut: Statement
    private let stallsOut: Statement
    private let greenthreadsOut: Statement
    private let threadsOut: Statement
    private let victimTotalsOut: Statement

    /// Every this many slices of a greenthread or a thread (and I/O waits of a thread), a
    /// `slice_checkpoints` row: where the timeline queries enter the id-ordered tables.
    static let checkpointEvery = 256

    init(db: Database, traceID: Int64) throws(StoreError) {
        self.db = db
        self.traceID = traceID
        slicesOut = try BatchInserter(
            db, table: "slices",
            columns: ["id", "gt_key", "thread_key", "ready_ns", "start_ns", "end_ns", "reason", "prev_id"])
        ioOut = try BatchInserter(
            db, table: "io_waits", columns: ["id", "thread_key", "start_ns", "end_ns", "timeout_ns", "nready"])
        checkpointsOut = try BatchInserter(db, table: "slice_checkpoints", columns: ["kind", "key", "start_ns", "row_id"])
        samplesOut = try BatchInserter(
            db, table: "stall_samples",
            columns: ["id", "trace_id", "thread_key", "ts_ns", "stack_key", "state"], rowsPerStatement: 16)
        // OR IGNORE: a garbled trace (times jumping back) could repeat a (stall, greenthread,
        // ready) key; that must not fail the whole import.
        victimsOut = try BatchInserter(
            db, table: "stall_victims",
            columns: ["stall_id", "gt_key", "ready_ns", "resumed_ns", "wait_ns"], rowsPerStatement: 16,
            orIgnore: true)
        stackFramesOut = try db.prepare("INSERT OR IGNORE INTO stack_frames (stack_key, depth, frame_key) VALUES (?,?,?)")
        stringsOut = try db.prepare("INSERT OR IGNORE INTO strings (key, trace_id, value) VALUES (?,?,?)")
        framesOut = try db.prepare(
            """
            INSERT OR IGNORE INTO frames (key, trace_id, function_key, file_key, line, internal, image_key, address, flags)
            VALUES (?,?,?,?,?,?,?,?,?)
            """)
        imagesOut = try db.prepare(
            """
            INSERT OR IGNORE INTO images (key, trace_id, path_key, load_bias, start, end, build_id) VALUES (?,?,?,?,?,?,?)
            """)
        stallsOut = try db.prepare(
            """
            INSERT INTO stalls (id, trace_id, thread_key, gt_key, start_ns, end_ns, duration_ns, stack_key, end_stack_key,
                                samples, complete, victims, victim_wait_ns)
            VALUES (?,?,?,?,?,?,?,NULL,?,0,?,0,0)
            """)
        // A greenthread can be written twice (when it exits, and again if its id is seen
        // later): the second write merges into the first.
        greenthreadsOut = try db.prepare(
            """
            INSERT INTO greenthreads (key, trace_id, gt, name_key, spawn_stack_key, parent_key, is_hub, created_ns, exited_ns,
                                      slices, run_ns, ready_wait_ns, last_slice_id)
            VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
            ON CONFLICT(key) DO UPDATE SET
              name_key = COALESCE(excluded.name_key, name_key),
              spawn_stack_key = COALESCE(excluded.spawn_stack_key, spawn_stack_key),
              parent_key = COALESCE(excluded.parent_key, parent_key),
              is_hub = MAX(is_hub, excluded.is_hub),
              created_ns = COALESCE(created_ns, excluded.created_ns),
              exited_ns = COALESCE(excluded.exited_ns, exited_ns),
              slices = slices + excluded.slices, run_ns = run_ns + excluded.run_ns,
              ready_wait_ns = ready_wait_ns + excluded.ready_wait_ns,
              last_slice_id = COALESCE(excluded.last_slice_id, last_slice_id)
            """)
        threadsOut = try db.prepare(
            """
            INSERT INTO threads (key, trace_id, tid, name_key, hub_key, slices, busy_ns, io_wait_ns) VALUES (?,?,?,?,?,?,?,?)
            ON CONFLICT(key) DO UPDATE SET slices = slices + excluded.slices, busy_ns = busy_ns + excluded.busy_ns,
              io_wait_ns = io_wait_ns + excluded.io_wait_ns, name_key = COALESCE(excluded.name_key, name_key),
              hub_key = COALESCE(excluded.hub_key, hub_key)
            """)
        victimTotalsOut = try db.prepare("UPDATE stalls SET victims = ?, victim_wait_ns = ? WHERE id = ?")
    }

    /// The key of what the recorder calls `id` in this trace.
    @inline(__always) private func key(_ id: UInt32) -> Int64 { StoreKey.object(trace: traceID, id: Int64(id)) }
    /// The key of an optional id; `BatchInserter.null` (NULL) for none.
    @inline(__always) private func key(_ id: UInt32?) -> Int64 { id.map(key) ?? BatchInserter.null }
    /// The id of the rebuild's `n`-th row of a kind.
    @inline(__always) private func row(_ n: Int64) -> Int64 { StoreKey.row(trace: traceID, n: n) }
    @inline(__always) private func row(_ n: Int64?) -> Int64 { n.map(row) ?? BatchInserter.null }
    @inline(__always) private func value(_ v: Int64?) -> Int64 { v ?? BatchInserter.null }

    private func bind(_ s: Statement, _ i: Int32, _ v: Int64?) {
        if let v { s.bind(i, v) } else { s.bindNull(i) }
    }

    @inline(__always)
    func slice(_ r: SliceRecord) throws(StoreError) {
        let id = row(r.id), gtKey = key(r.gt), threadKey = key(r.thread)
        try slicesOut.add8(id, gtKey, threadKey, value(r.ready), r.start, r.end, Int64(r.reason?.rawValue ?? 0), row(r.previous))
        if r.indexInGreenthread % Self.checkpointEvery == 0 { try checkpointsOut.add(0, gtKey, r.start, id) }
        if r.indexInThread % Self.checkpointEvery == 0 { try checkpointsOut.add(1, threadKey, r.start, id) }
        // A chain out of time order is walked whole by the timeline queries (kind 3).
        if r.outOfOrder { try checkpointsOut.add(3, gtKey, r.start, id) }
    }

    func ioWait(_ r: IOWaitRecord) throws(StoreError) {
        let id = row(r.id), threadKey = key(r.thread)
        try ioOut.add(id, threadKey, r.start, r.end, value(r.timeout), value(r.nready))
        if r.indexInThread % Self.checkpointEvery == 0 { try checkpointsOut.add(2, threadKey, r.start, id) }
    }

    func stall(_ r: StallRecord) throws(StoreError) {
        let s = stallsOut
        s.bind(1, row(r.id)); s.bind(2, traceID); s.bind(3, key(r.thread)); s.bind(4, key(r.gt))
        s.bind(5, r.start); s.bind(6, r.end); s.bind(7, r.duration)
        bind(s, 8, r.endStack.map(key))
        s.bind(9, r.complete ? 1 : 0)
        try s.run()
    }

    func sample(_ r: SampleRecord) throws(StoreError) {
        try samplesOut.add(row(r.id), traceID, key(r.thread), r.time, key(r.stack), r.state)
    }

    func victim(_ r: VictimRecord) throws(StoreError) {
        try victimsOut.add(row(r.stall), key(r.gt), r.ready, r.resumed, r.wait)
    }

    func greenthread(_ r: GreenthreadRecord) throws(StoreError) {
        let s = greenthreadsOut
        s.bind(1, key(r.gt)); s.bind(2, traceID); s.bind(3, Int64(r.gt))
        bind(s, 4, r.name.map(key)); bind(s, 5, r.spawnStack.map(key)); bind(s, 6, r.parent.map(key))
        s.bind(7, r.isHub ? 1 : 0); bind(s, 8, r.created); bind(s, 9, r.exited)
        s.bind(10, Int64(r.slices)); s.bind(11, r.runNs); s.bind(12, r.readyWaitNs); bind(s, 13, r.lastSlice.map(row))
        try s.run()
    }

    func thread(_ r: ThreadRecord) throws(StoreError) {
        let s = threadsOut
        s.bind(1, key(r.tid)); s.bind(2, traceID); s.bind(3, Int64(r.tid)); bind(s, 4, r.name.map(key))
        bind(s, 5, r.hub.map(key)); s.bind(6, Int64(r.slices)); s.bind(7, r.busyNs); s.bind(8, r.ioWaitNs)
        try s.run()
    }

    func victimTotals(_ r: VictimTotalsRecord) throws(StoreError) {
        let s = victimTotalsOut
        s.bind(1, r.victims); s.bind(2, r.waitNs); s.bind(3, row(r.stall))
        try s.run()
    }

    func string(_ r: StringRecord) throws(StoreError) {
        stringsOut.bind(1, key(r.id)); stringsOut.bind(2, traceID); stringsOut.bind(3, r.value)
        try stringsOut.run()
    }

    func frame(_ r: FrameRecord) throws(StoreError) {
        let s = framesOut
        s.bind(1, key(r.id)); s.bind(2, traceID)
        bind(s, 3, r.function.map(key)); bind(s, 4, r.file.map(key)); bind(s, 5, r.line.map { Int64(clamping: $0) })
        s.bind(6, r.flags.contains(.internal) ? 1 : 0)
        if let address = r.address {  // a native frame
            bind(s, 7, r.image.map(key))
            s.bind(8, Int64(bitPattern: address))
        } else {
            s.bindNull(7); s.bindNull(8)
        }
        s.bind(9, Int64(bitPattern: r.flags.rawValue))
        try s.run()
    }

    func stack(_ r: StackRecord) throws(StoreError) {
        let sk = key(r.id)
        for (depth, f) in r.frames.enumerated() {
            stackFramesOut.bind(1, sk); stackFramesOut.bind(2, Int64(depth)); stackFramesOut.bind(3, key(f))
            try stackFramesOut.run()
        }
    }

    func image(_ r: ImageRecord) throws(StoreError) {
        let s = imagesOut
        s.bind(1, key(r.id)); s.bind(2, traceID); bind(s, 3, r.path.map(key))
        s.bind(4, Int64(bitPattern: r.loadBias)); s.bind(5, Int64(bitPattern: r.start))
        s.bind(6, Int64(bitPattern: r.end))
        s.bind(
            7,
            r.buildID.isEmpty
                ? nil
                : r.buildID.map { b in
                    let h = String(b, radix: 16); return h.count == 1 ? "0" + h : h
                }.joined())
        try s.run()
    }

    /// Writes the rows still buffered, then what needs the whole trace: each sample's stall,
    /// each stall's sample count and most-sampled stack, and the names behind string keys.
    func finish() throws(StoreError) {
        try slicesOut.flush(); try ioOut.flush(); try checkpointsOut.flush()
        try samplesOut.flush(); try victimsOut.flush()

        let rows = StoreKey.rows(trace: traceID), keys = StoreKey.objects(trace: traceID)
        let (lo, hi) = (rows.lowerBound, rows.upperBound), (k0, k1) = (keys.lowerBound, keys.upperBound)
        try db.exec(
            """
            UPDATE stall_samples SET stall_id = (
                SELECT s.id FROM stalls s WHERE s.thread_key = stall_samples.thread_key
                  AND s.start_ns <= stall_samples.ts_ns AND s.end_ns >= stall_samples.ts_ns
                ORDER BY s.start_ns DESC LIMIT 1)
              WHERE id >= \(lo) AND id < \(hi);
            UPDATE stalls SET
              samples = (SELECT COUNT(*) FROM stall_samples m WHERE m.stall_id = stalls.id),
              stack_key = COALESCE(
                (SELECT m.stack_key FROM stall_samples m WHERE m.stall_id = stalls.id AND m.stack_key IS NOT NULL
                  GROUP BY m.stack_key ORDER BY COUNT(*) DESC, MIN(m.ts_ns) LIMIT 1),
                end_stack_key)
              WHERE id >= \(lo) AND id < \(hi);
            UPDATE frames SET function = \(stringOrMissing("function_key")), file = \(stringOrMissing("file_key"))
              WHERE key >= \(k0) AND key < \(k1) AND (function_key IS NOT NULL OR file_key IS NOT NULL);
            UPDATE greenthreads SET name = \(stringOrMissing("name_key"))
              WHERE key >= \(k0) AND key < \(k1) AND name_key IS NOT NULL;
            UPDATE threads SET name = \(stringOrMissing("name_key"))
              WHERE key >= \(k0) AND key < \(k1) AND name_key IS NOT NULL;
            UPDATE images SET path = \(stringOrMissing("path_key"))
              WHERE key >= \(k0) AND key < \(k1) AND path_key IS NOT NULL;
            """)
    }
}

/// SQL for the string a key column refers to; a string the trace never defined reads
/// `<string N>` (spec §4.3), and no reference (NULL) stays NULL. (`& 4294967295` is the
/// recorder's id of a key: see `StoreKey` and schema.sql's conventions.)
func stringOrMissing(_ column: String) -> String {
    "CASE WHEN \(column) IS NULL THEN NULL ELSE COALESCE((SELECT value FROM strings WHERE key = \(column)), "
        + "'<string ' || (\(column) & 4294967295) || '>') END"
}
