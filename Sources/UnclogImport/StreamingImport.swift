// One import of one trace file: identifies the recording (refusing or replacing an earlier
// import of it), reads its metadata, streams its chunks through the timeline rebuild into the
// writer, and writes the rows about the trace as a whole (traces, trace_metadata,
// import_damage), then symbolizes its native frames.

import UnclogStore
import UnclogTrace

/// Time 0 and the runtime model of a trace, from its metadata and its first chunk.
struct TraceSetup {
    /// CLOCK_MONOTONIC time 0: the anchor key, else the first chunk's base_ns (a metadata
    /// chunk's base_ns is the anchor, spec §3; without metadata, the first events chunk's).
    var start: UInt64
    /// Swift Concurrency (metadata runtime "swift-concurrency"): victims across pool workers.
    var pool: PoolVictims?

    init(metadata: [String: MetadataValue], firstBase: UInt64?) {
        if case let .uint(anchor)? = metadata["anchor_mono_ns"] {
            start = anchor
        } else {
            start = firstBase ?? 0
        }
        if case .string("swift-concurrency")? = metadata["runtime"] {
            // The main thread (tid = pid on Linux) runs main-queue jobs, not the pool's.
            var main: UInt32? = nil
            if case let .uint(pid)? = metadata["pid"], pid <= UInt64(UInt32.max) { main = UInt32(pid) }
            pool = PoolVictims(mainThread: main)
        }
    }
}

/// One import: the chunk loop around the rebuild and the writer.
final class StreamingImport {
    let db: Database
    let reader: TraceReader
    let options: ImportOptions
    var traceID: Int64 = 0
    var summary = ImportSummary(traceID: 0)
    var metadata: [String: MetadataValue] = [:]

    init(db: Database, reader: TraceReader, options: ImportOptions) {
        self.db = db
        self.reader = reader
        self.options = options
    }

    func run() throws(StoreError) -> ImportSummary {
        summary.fileBytes = reader.fileSize ?? 0
        var first = reader.nextChunk()
        // The recording's identity: its first chunk (metadata with pid and clock anchor).
        let fingerprint: String
        if let c = first {
            fingerprint = "v1-\(hex32(CRC32.checksum(c.payload)))-\(c.baseTime)-\(c.thread)"
        } else {
            fingerprint = "v1-empty-\(reader.fileSize ?? 0)"
        }
        if let old = try db.scalar("SELECT id FROM traces WHERE fingerprint = ?", [.text(fingerprint)]) {
            if !options.replace {
                summary.traceID = old
                summary.alreadyImported = true
                return summary
            }
            try deleteTrace(old)
            summary.replaced = true
        }
        traceID = (try db.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM traces")) ?? 1
        guard traceID < StoreKey.traceLimit else { throw StoreError("\(db.path): too many traces in one database") }
        summary.traceID = traceID

        let firstBase = first?.baseTime
        if let c = first, c.kind == ChunkKind.metadata.rawValue {
            readMetadata(c)
            first = nil
        }
        let setup = TraceSetup(metadata: metadata, firstBase: firstBase)
        let ins = try db.prepare(
            """
            INSERT INTO traces (id, path, fingerprint, imported_at, start_mono_ns, events, chunks, file_bytes, bytes_lost,
                                events_dropped, recorder_errors, clean_end)
            VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ','now'), ?, 0, 0, 0, 0, 0, 0, 0)
            """)
        try ins.bind([.int(traceID), .text(options.tracePath), .text(fingerprint), .int(Int64(bitPattern: setup.start))])
        try ins.run()

        let writer = try RowWriter(db: db, traceID: traceID)
        let rebuild = TimelineRebuild(start: setup.start, pool: setup.pool, sink: writer)
        var lastProgress = Stopwatch()
        if let c = first { try process(c, rebuild) }
        while let c = reader.nextChunk() {
            if ImportCancellation.requested { throw StoreError("cancelled") }
            try process(c, rebuild)
            if let progress = options.progress, lastProgress.seconds > 0.1 {
                lastProgress = Stopwatch()
                progress(
                    ImportProgress(
                        bytesRead: reader.offset, fileSize: reader.fileSize,
                        events: rebuild.counts.events))
            }
        }
        try rebuild.finish()
        try writer.finish()
        try finish(rebuild.counts, duration: rebuild.lastTime)
        return summary
    }

    func process(_ chunk: Chunk, _ rebuild: TimelineRebuild<RowWriter>) throws(StoreError) {
        switch chunk.kind {
        case ChunkKind.metadata.rawValue:
            readMetadata(chunk)
        case ChunkKind.events.rawValue:
            summary.chunks += 1
            var events = EventIterator(chunk)
            try rebuild.consume(&events, thread: chunk.thread)
            if let damage = events.damage { reader.report(damage) }
        default:
            summary.skippedChunks += 1
        }
    }

    func readMetadata(_ c: Chunk) {
        let (entries, damage) = EventDecoder.decodeMetadata(c)
        for e in entries { metadata[e.key] = e.value }
        if let damage { reader.report(damage) }
        summary.chunks += 1
    }

    /// Removes every row of trace `t` (used by --replace).
    func deleteTrace(_ t: Int64) throws(StoreError) {
        // Tables keyed by an importer-made row id, by a recorder id (StoreKey), or by the trace id.
        let byRow = [
            ("slices", "id"), ("io_waits", "id"), ("stall_victims", "stall_id"), ("stall_samples", "id"),
            ("stalls", "id"), ("slice_checkpoints", "row_id"),
        ]
        let byKey = [
            ("stack_frames", "stack_key"), ("frames", "key"), ("strings", "key"), ("images", "key"),
            ("threads", "key"), ("greenthreads", "key"),
        ]
        let byTrace = [("trace_metadata", "trace_id"), ("import_damage", "trace_id"), ("traces", "id")]
        let rows = StoreKey.rows(trace: t), keys = StoreKey.objects(trace: t)
        var sql = ""
        for (table, column) in byRow {
            sql += "DELETE FROM \(table) WHERE \(column) >= \(rows.lowerBound) AND \(column) < \(rows.upperBound);\n"
        }
        for (table, column) in byKey {
            sql += "DELETE FROM \(table) WHERE \(column) >= \(keys.lowerBound) AND \(column) < \(keys.upperBound);\n"
        }
        for (table, column) in byTrace { sql += "DELETE FROM \(table) WHERE \(column) = \(t);\n" }
        try db.exec(sql)
    }

    /// The rows about the whole trace, the summary, and symbolization.
    func finish(_ counts: RebuildCounts, duration: Int64) throws(StoreError) {
        summary.events = counts.events
        summary.slices = counts.slices
        summary.ioWaits = counts.ioWaits
        summary.stalls = counts.stalls
        summary.samples = counts.samples
        summary.eventsDropped = counts.eventsDropped
        summary.recorderErrors = counts.recorderErrors
        summary.cleanEnd = counts.cleanEnd
        summary.skippedEvents = counts.skippedEvents
        summary.threads = counts.threads

        let md = try db.prepare("INSERT OR REPLACE INTO trace_metadata (trace_id, key, value) VALUES (?,?,?)")
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            try md.bind([.int(traceID), .text(k), .text(Self.text(v))])
            try md.run()
        }
        let dm = try db.prepare("INSERT INTO import_damage (trace_id, offset, bytes_lost, reason) VALUES (?,?,?,?)")
        for d in reader.damage {
            try dm.bind([.int(traceID), .int(Int64(d.offset)), .int(Int64(d.bytesLost)), .text(d.reason)])
            try dm.run()
        }

        summary.damage = reader.damage
        summary.bytesLost = reader.bytesLost
        summary.greenthreads = Int(
            try db.scalar(
                "SELECT COUNT(*) FROM greenthreads WHERE trace_id = ? AND is_hub = 0",
                [.int(traceID)]) ?? 0)
        func meta(_ k: String) -> SQLValue {
            switch metadata[k] {
            case let .uint(x)?: return .int(Int64(clamping: x))
            case let v?: return .text(Self.text(v))
            case nil: return .null
            }
        }
        let up = try db.prepare(
            """
            UPDATE traces SET runtime = ?, runtime_version = ?, pid = ?, hostname = ?, argv = ?, threshold_ns = ?,
              sample_interval_ns = ?, anchor_wall_ns = ?, duration_ns = ?, events = ?, chunks = ?, file_bytes = ?,
              bytes_lost = ?, events_dropped = ?, recorder_errors = ?, clean_end = ?
            WHERE id = ?
            """)
        try up.bind([
            meta("runtime"), meta("runtime_version"), meta("pid"), meta("hostname"), meta("argv"),
            meta("threshold_ns"), meta("sample_interval_ns"), meta("anchor_wall_ns"), .int(duration),
            .int(Int64(summary.events)), .int(Int64(summary.chunks)), .int(Int64(summary.fileBytes)),
            .int(Int64(summary.bytesLost)), .int(Int64(clamping: summary.eventsDropped)),
            .int(Int64(clamping: summary.recorderErrors)), .int(summary.cleanEnd ? 1 : 0), .int(traceID),
        ])
        try up.run()
        let symbols = try Symbolizer.run(db: db, traceID: traceID)  // native frames → function, file, line
        if symbols.frames > 0 { summary.symbols = symbols }
    }

    /// A metadata value as trace_metadata stores it: integers in decimal, lists as JSON arrays.
    static func text(_ v: MetadataValue) -> String {
        switch v {
        case let .uint(x): String(x)
        case let .string(s): s
        case let .list(l): "[" + l.map(TraceJSON.quote).joined(separator: ",") + "]"
        }
    }
}
