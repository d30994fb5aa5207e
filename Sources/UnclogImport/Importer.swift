// `unclog import`: streams a trace file into the SQLite store, rebuilding the timeline
// (slices, I/O waits, stalls, victims) on the way, with memory bounded by live greenthreads.
// A failed import leaves the database as it was: a new database is built under a temporary
// name and renamed; an existing one is changed in one transaction.

import CSQLite
import Synchronization
import UnclogStore
import UnclogTrace

#if canImport(Glibc)
import Glibc
#endif

/// What to import, and where.
public struct ImportOptions: Sendable {
    public var tracePath: String
    public var databasePath: String
    /// Called about ten times a second with the bytes read so far.
    public var progress: (@Sendable (ImportProgress) -> Void)?
    /// Replace a trace that was imported before from a file of the same recording.
    public var replace: Bool

    public init(tracePath: String, databasePath: String, replace: Bool = false,
                progress: (@Sendable (ImportProgress) -> Void)? = nil) {
        self.tracePath = tracePath
        self.databasePath = databasePath
        self.replace = replace
        self.progress = progress
    }
}

/// Progress of a running import.
public struct ImportProgress: Sendable {
    public var bytesRead: UInt64
    public var fileSize: UInt64?
    public var events: Int
}

/// What an import did.
public struct ImportSummary: Sendable {
    public var traceID: Int64
    /// True when the trace was already in the database and nothing was done.
    public var alreadyImported = false
    /// True when an earlier import of the same recording was replaced.
    public var replaced = false
    public var events = 0
    public var chunks = 0
    public var greenthreads = 0
    public var threads = 0
    public var slices = 0
    public var ioWaits = 0
    public var stalls = 0
    public var samples = 0
    public var fileBytes: UInt64 = 0
    public var bytesLost: UInt64 = 0
    public var damage: [TraceDamage] = []
    public var eventsDropped: UInt64 = 0
    public var recorderErrors: UInt64 = 0
    public var cleanEnd = false
    public var skippedEvents = 0
    public var skippedChunks = 0
    /// Native frames (Swift recordings): what offline symbolization did and why frames stayed unnamed.
    public var symbols: SymbolizationReport?
    public var seconds = 0.0
    public var eventsPerSecond: Double { seconds > 0 ? Double(events) / seconds : 0 }
}

/// Why an import failed as a whole (the database is unchanged).
public enum ImportError: Error, CustomStringConvertible {
    case unreadableTrace(TraceReadError)
    case store(StoreError)
    case cancelled

    public var description: String {
        switch self {
        case let .unreadableTrace(e): e.description
        case let .store(e): e.description
        case .cancelled: "import cancelled; the database is unchanged"
        }
    }
}

/// Lets a signal handler stop a running import between two chunks (the import then rolls
/// back like any failed one). Async-signal-safe: a lock-free atomic store.
public enum ImportCancellation {
    static let flag = Atomic<Bool>(false)
    /// Asks running imports to stop.
    public static func request() { flag.store(true, ordering: .relaxed) }
    static var requested: Bool { flag.load(ordering: .relaxed) }
}

/// Streams traces into a database.
public enum TraceImporter {
    /// Imports one trace file. Damage inside the file does not fail the import: intact data
    /// is kept and the damage is listed in the summary (and the `import_damage` table).
    public static func run(_ options: ImportOptions) throws(ImportError) -> ImportSummary {
        let clock = Stopwatch()
        let reader: TraceReader
        do { reader = try TraceReader(path: options.tracePath) } catch { throw .unreadableTrace(error) }

        let exists = access(options.databasePath, F_OK) == 0
        let workPath = exists ? options.databasePath : options.databasePath + ".importing-\(getpid())"
        do throws(StoreError) {
            if !exists { unlink(workPath) }
            let db = try Database(path: workPath)
            var summary: ImportSummary
            do throws(StoreError) {
                if exists {
                    try Schema.check(db)
                    // A 64 MiB page cache: smaller ones made the 10M-event import ~1.4x slower;
                    // the import's peak memory plateaus at about this much above its base.
                    try db.exec("PRAGMA synchronous=OFF; PRAGMA cache_size=-65536; PRAGMA locking_mode=EXCLUSIVE; BEGIN IMMEDIATE;")
                } else {
                    // A new file: no journal needed, since a failure just deletes it.
                    try db.exec("PRAGMA page_size=65536; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536; PRAGMA locking_mode=EXCLUSIVE;")
                    try db.exec("BEGIN;")
                    try Schema.create(db)
                }
                let importer = try StreamingImport(db: db, reader: reader, options: options)
                summary = try importer.run()
                if summary.alreadyImported {
                    try db.exec("ROLLBACK;")
                } else {
                    try db.exec("COMMIT;")
                }
            } catch {
                try? db.exec("ROLLBACK;")
                throw error
            }
            if !exists {
                if summary.alreadyImported { unlink(workPath) } else if rename(workPath, options.databasePath) != 0 {
                    throw StoreError("\(options.databasePath): cannot create: \(String(cString: strerror(errno)))")
                }
            }
            summary.seconds = clock.seconds
            return summary
        } catch {
            if !exists { unlink(workPath); unlink(workPath + "-journal") }
            if ImportCancellation.requested { throw .cancelled }
            // Name the database the user asked for, not the temporary file it was built in.
            throw .store(exists ? error : StoreError(error.message.replacing(workPath, with: options.databasePath)))
        }
    }
}

/// Per OS thread: who runs now, since when, and what recently stalled it.
private final class ThreadState {
    let key: Int64
    let tid: UInt32
    var hub: UInt32 = 0
    var nameKey: Int64 = BatchInserter.null
    /// The greenthread running now (0: the hub or unknown) and its slice so far.
    var current: UInt32 = 0
    var sliceStart: Int64 = 0
    var sliceReady: Int64 = BatchInserter.null
    var sliceReason: Int64 = 0
    var ioStart: Int64?
    var ioTimeout: Int64 = BatchInserter.null
    var lastTime: Int64 = 0
    var slices = 0
    var ios = 0
    var busyNs: Int64 = 0
    var ioWaitNs: Int64 = 0
    /// Stalls whose victims may still start running: (id, start, end, greenthread).
    var recentStalls: [(id: Int64, start: Int64, end: Int64, gt: UInt32)] = []
    /// The latest end among `recentStalls`: a greenthread ready after it is nobody's victim.
    var recentStallsEnd = Int64.min

    init(key: Int64, tid: UInt32) {
        self.key = key
        self.tid = tid
    }
}

/// Per greenthread: totals and the tail of its slice chain.
private final class GreenthreadState {
    var lastSlice: Int64 = BatchInserter.null
    /// When its last slice ended (it was not ready to run before that).
    var lastEnd = Int64.min
    var slices = 0
    var runNs: Int64 = 0
    var readyWaitNs: Int64 = 0
    var created: Int64 = BatchInserter.null
    var exited: Int64 = BatchInserter.null
    var nameKey: Int64 = BatchInserter.null
    var spawnStack: Int64 = BatchInserter.null
    var parent: Int64 = BatchInserter.null
    var isHub = false
}

/// How long a greenthread ready at `ready` and resumed at `resumed` was kept waiting by a stall
/// over [`stallStart`, `stallEnd`]: the overlap of the two, if it resumed within `victimHorizon`
/// of the stall's end; 0 when it was not a victim.
private func victimWait(ready: Int64, resumed: Int64, stallStart: Int64, stallEnd: Int64) -> Int64 {
    guard resumed - stallEnd <= StreamingImport.victimHorizon else { return 0 }
    return max(0, min(resumed, stallEnd) - max(ready, stallStart))
}

/// Victims across the workers of a thread pool (Swift Concurrency's global executor).
///
/// A stall on one worker leaves the pool a worker short: a job queued while it lasted waited
/// longer, whichever worker finally ran it. So a job that ran on pool thread B, ready at r and
/// started at s, is a victim of a stall [x0, x1] on another pool thread A when r < x1 and
/// s > x0, for the overlap of its wait with the stall. (A queued job means no worker was idle
/// in a work-conserving pool, up to wake-up latency.) Same-thread victims are found as for any
/// runtime, by `chargeVictim`.
///
/// Threads' chunks reach the file out of time order, so each (stall, job) pair is charged
/// when the second of the two is read: a job checks the stalls already read, a stall the jobs
/// already read. Jobs are remembered for `window` of trace time behind the latest job read, and
/// at most `capacity` of them (about 0.2 s of a pool running a million jobs a second): a stall
/// read later than that after its jobs misses them. A job that waited through stalls on several
/// workers at once is a victim of each (their victim waits overlap). The main thread (main-queue
/// jobs) is not a worker.
struct PoolVictims {
    struct Job { var gt: UInt32; var thread: UInt32; var ready: Int64; var start: Int64 }
    struct Stall { var id: Int64; var gt: UInt32; var thread: UInt32; var start: Int64; var end: Int64 }

    static let window: Int64 = 10_000_000_000
    static let capacity = 200_000
    let mainThread: UInt32?
    private(set) var jobs: [Job] = []
    private var jobsHead = 0
    private(set) var stalls: [Stall] = []
    /// The latest end among `stalls`: a job ready after it waited through none of them.
    private var stallsEnd = Int64.min
    private var latest = Int64.min

    init(mainThread: UInt32?) { self.mainThread = mainThread }

    /// Whether `thread` is one of the pool's workers (threads without a hub, but the main one).
    func isWorker(_ thread: UInt32) -> Bool { thread != mainThread }

    /// A job that waited (ready < start) started on `thread`: the known stalls of other pool
    /// threads it waited through, with the wait each caused.
    mutating func jobStarted(gt: UInt32, thread: UInt32, ready: Int64, start: Int64) -> [(Int64, Int64)] {
        var out: [(Int64, Int64)] = []
        if ready < stallsEnd {  // most jobs became ready after every stall read so far
            for x in stalls where x.thread != thread && x.gt != gt {
                let wait = victimWait(ready: ready, resumed: start, stallStart: x.start, stallEnd: x.end)
                if wait > 0 { out.append((x.id, wait)) }
            }
        }
        jobs.append(Job(gt: gt, thread: thread, ready: ready, start: start))
        latest = max(latest, start)
        // Forget jobs out of the window (amortized: compact when half the array is dead).
        while jobsHead < jobs.count && (latest - jobs[jobsHead].start > PoolVictims.window
                                        || jobs.count - jobsHead > PoolVictims.capacity) {
            jobsHead += 1
        }
        if jobsHead > 4096 && jobsHead * 2 > jobs.count {
            jobs.removeFirst(jobsHead)
            jobsHead = 0
        }
        if let first = stalls.first, latest - first.end > StreamingImport.victimHorizon {
            stalls.removeAll { latest - $0.end > StreamingImport.victimHorizon }
            stallsEnd = stalls.map(\.end).max() ?? Int64.min
        }
        return out
    }

    /// A stall on pool thread `thread` was read: the jobs already read that it kept waiting.
    mutating func stallEnded(id: Int64, gt: UInt32, thread: UInt32, start: Int64, end: Int64) -> [(gt: UInt32, ready: Int64, start: Int64, wait: Int64)] {
        var out: [(gt: UInt32, ready: Int64, start: Int64, wait: Int64)] = []
        for j in jobs[jobsHead...] where j.thread != thread && j.gt != gt {
            let wait = victimWait(ready: j.ready, resumed: j.start, stallStart: start, stallEnd: end)
            if wait > 0 { out.append((j.gt, j.ready, j.start, wait)) }
        }
        stalls.append(Stall(id: id, gt: gt, thread: thread, start: start, end: end))
        if stalls.count > 256 { stalls.removeFirst(stalls.count - 256) }
        stallsEnd = stalls.map(\.end).max() ?? Int64.min
        return out
    }
}

/// One import: the state machine that turns events into rows.
private final class StreamingImport {
    let db: Database
    let reader: TraceReader
    let options: ImportOptions
    var traceID: Int64 = 0
    var keyBase: Int64 = 0  // traceID << 32
    var start: UInt64 = 0   // start_mono_ns
    var summary = ImportSummary(traceID: 0)

    var threads: [UInt32: ThreadState] = [:]
    var greenthreads: [UInt32: GreenthreadState] = [:]
    var exitedCount = 0
    var nextSlice: Int64 = 0
    var nextIO: Int64 = 0
    var nextStall: Int64 = 0
    var nextSample: Int64 = 0
    var victimTotals: [Int64: (count: Int64, wait: Int64)] = [:]
    /// A thread pool runtime (Swift Concurrency: metadata runtime "swift-concurrency"): a stall on
    /// one worker also keeps waiting the jobs queued for the others (see `PoolVictims`).
    var pool: PoolVictims?
    var stallBegins: [(tid: UInt32, gt: UInt32, start: Int64)] = []
    var lastTime: Int64 = 0
    var metadata: [String: MetadataValue] = [:]

    let slicesOut: BatchInserter
    let ioOut: BatchInserter
    let checkpointsOut: BatchInserter
    let samplesOut: BatchInserter
    let victimsOut: BatchInserter
    let stackFramesOut: Statement
    let stringsOut: Statement
    let framesOut: Statement
    let imagesOut: Statement
    let stallsOut: Statement

    static let checkpointEvery = 256
    /// A greenthread resumed more than this after a stall ended is not counted as its victim.
    static let victimHorizon: Int64 = 10_000_000_000

    init(db: Database, reader: TraceReader, options: ImportOptions) throws(StoreError) {
        self.db = db
        self.reader = reader
        self.options = options
        slicesOut = try BatchInserter(db, table: "slices",
                                      columns: ["id", "gt_key", "thread_key", "ready_ns", "start_ns", "end_ns", "reason", "prev_id"])
        ioOut = try BatchInserter(db, table: "io_waits", columns: ["id", "thread_key", "start_ns", "end_ns", "timeout_ns", "nready"])
        checkpointsOut = try BatchInserter(db, table: "slice_checkpoints", columns: ["kind", "key", "start_ns", "row_id"])
        samplesOut = try BatchInserter(db, table: "stall_samples",
                                       columns: ["id", "trace_id", "thread_key", "ts_ns", "stack_key", "state"], rowsPerStatement: 16)
        // OR IGNORE: a garbled trace (times jumping back) could repeat a (stall, greenthread,
        // ready) key; that must not fail the whole import.
        victimsOut = try BatchInserter(db, table: "stall_victims",
                                       columns: ["stall_id", "gt_key", "ready_ns", "resumed_ns", "wait_ns"], rowsPerStatement: 16,
                                       orIgnore: true)
        stackFramesOut = try db.prepare("INSERT OR IGNORE INTO stack_frames (stack_key, depth, frame_key) VALUES (?,?,?)")
        stringsOut = try db.prepare("INSERT OR IGNORE INTO strings (key, trace_id, value) VALUES (?,?,?)")
        framesOut = try db.prepare("""
            INSERT OR IGNORE INTO frames (key, trace_id, function_key, file_key, line, internal, image_key, address, flags)
            VALUES (?,?,?,?,?,?,?,?,?)
            """)
        imagesOut = try db.prepare("""
            INSERT OR IGNORE INTO images (key, trace_id, path_key, load_bias, start, end, build_id) VALUES (?,?,?,?,?,?,?)
            """)
        stallsOut = try db.prepare("""
            INSERT INTO stalls (id, trace_id, thread_key, gt_key, start_ns, end_ns, duration_ns, stack_key, end_stack_key,
                                samples, complete, victims, victim_wait_ns)
            VALUES (?,?,?,?,?,?,?,NULL,?,0,?,0,0)
            """)
    }

    @inline(__always) func key(_ id: UInt32) -> Int64 { keyBase | Int64(id) }
    @inline(__always) func optKey(_ id: UInt32) -> Int64 { id == 0 ? BatchInserter.null : keyBase | Int64(id) }
    @inline(__always) func rel(_ t: UInt64) -> Int64 { Int64(bitPattern: t &- start) }

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
        if let old = try existingTrace(fingerprint) {
            if !options.replace {
                summary.traceID = old
                summary.alreadyImported = true
                return summary
            }
            try deleteTrace(old)
            summary.replaced = true
        }
        traceID = (try db.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM traces")) ?? 1
        guard traceID < (1 << 22) else { throw StoreError("\(db.path): too many traces in one database") }
        keyBase = traceID << 32
        nextSlice = traceID << 40
        nextIO = traceID << 40
        nextStall = traceID << 40
        nextSample = traceID << 40
        summary.traceID = traceID

        // Time 0: the anchor key, else the first chunk's base_ns (a metadata chunk's base_ns is
        // the anchor, spec §3; without metadata, the first events chunk's).
        let firstBase = first?.baseTime
        if let c = first, c.kind == ChunkKind.metadata.rawValue {
            readMetadata(c)
            first = nil
        }
        if case .string("swift-concurrency")? = metadata["runtime"] {
            // The main thread (tid = pid on Linux) runs main-queue jobs, not the pool's.
            var main: UInt32? = nil
            if case let .uint(pid)? = metadata["pid"], pid <= UInt64(UInt32.max) { main = UInt32(pid) }
            pool = PoolVictims(mainThread: main)
        }
        if case let .uint(anchor)? = metadata["anchor_mono_ns"] {
            start = anchor
        } else if let firstBase {
            start = firstBase
        }
        let ins = try db.prepare("""
            INSERT INTO traces (id, path, fingerprint, imported_at, start_mono_ns, events, chunks, file_bytes, bytes_lost,
                                events_dropped, recorder_errors, clean_end)
            VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ','now'), ?, 0, 0, 0, 0, 0, 0, 0)
            """)
        try ins.bind([.int(traceID), .text(options.tracePath), .text(fingerprint), .int(Int64(bitPattern: start))])
        try ins.run()

        var lastProgress = Stopwatch()
        if let c = first { try process(c) }
        while let c = reader.nextChunk() {
            if ImportCancellation.requested { throw StoreError("cancelled") }
            try process(c)
            if let progress = options.progress, lastProgress.seconds > 0.1 {
                lastProgress = Stopwatch()
                progress(ImportProgress(bytesRead: reader.offset, fileSize: reader.fileSize, events: summary.events))
            }
        }
        try finish(fingerprint: fingerprint)
        return summary
    }

    func existingTrace(_ fingerprint: String) throws(StoreError) -> Int64? {
        try db.scalar("SELECT id FROM traces WHERE fingerprint = ?", [.text(fingerprint)])
    }

    /// Removes every row of trace `t` (used by --replace).
    func deleteTrace(_ t: Int64) throws(StoreError) {
        let lo = t << 40, hi = (t + 1) << 40
        let klo = t << 32, khi = (t + 1) << 32
        try db.exec("""
            DELETE FROM slices WHERE id >= \(lo) AND id < \(hi);
            DELETE FROM io_waits WHERE id >= \(lo) AND id < \(hi);
            DELETE FROM stall_victims WHERE stall_id >= \(lo) AND stall_id < \(hi);
            DELETE FROM stall_samples WHERE id >= \(lo) AND id < \(hi);
            DELETE FROM stalls WHERE id >= \(lo) AND id < \(hi);
            DELETE FROM slice_checkpoints WHERE row_id >= \(lo) AND row_id < \(hi);
            DELETE FROM stack_frames WHERE stack_key >= \(klo) AND stack_key < \(khi);
            DELETE FROM frames WHERE key >= \(klo) AND key < \(khi);
            DELETE FROM strings WHERE key >= \(klo) AND key < \(khi);
            DELETE FROM images WHERE key >= \(klo) AND key < \(khi);
            DELETE FROM threads WHERE key >= \(klo) AND key < \(khi);
            DELETE FROM greenthreads WHERE key >= \(klo) AND key < \(khi);
            DELETE FROM trace_metadata WHERE trace_id = \(t);
            DELETE FROM import_damage WHERE trace_id = \(t);
            DELETE FROM traces WHERE id = \(t);
            """)
    }

    func readMetadata(_ c: Chunk) {
        let (entries, damage) = EventDecoder.decodeMetadata(c)
        for e in entries { metadata[e.key] = e.value }
        if let damage { reader.report(damage) }
        summary.chunks += 1
    }

    func thread(_ tid: UInt32) -> ThreadState {
        if let t = threads[tid] { return t }
        let t = ThreadState(key: key(tid), tid: tid)
        threads[tid] = t
        return t
    }

    @inline(__always)
    func greenthread(_ gt: UInt32) -> GreenthreadState {
        if let g = greenthreads[gt] { return g }
        let g = GreenthreadState()
        greenthreads[gt] = g
        return g
    }

    func process(_ chunk: Chunk) throws(StoreError) {
        switch chunk.kind {
        case ChunkKind.metadata.rawValue:
            readMetadata(chunk)
            return
        case ChunkKind.events.rawValue:
            break
        default:
            summary.skippedChunks += 1
            return
        }
        summary.chunks += 1
        let th = thread(chunk.thread)
        var iterator = EventIterator(chunk)
        while let e = iterator.next() {
            summary.events += 1
            let t = rel(e.time)
            th.lastTime = t
            switch e.kind {
            case .switchToHub:
                try closeSlice(th, at: t)
                th.current = 0
            case let .switchTo(to, reason, readyDelta):
                try closeSlice(th, at: t)
                let ready = readyDelta <= e.time ? rel(e.time - readyDelta) : t
                try openSlice(th, gt: to, at: t, ready: ready, reason: Int64(reason.rawValue))
            case let .ioWaitBegin(timeout):
                if let s = th.ioStart { try closeIO(th, start: s, end: t, nready: BatchInserter.null) }
                th.ioStart = t
                th.ioTimeout = timeout.map { Int64(clamping: $0) } ?? BatchInserter.null
            case let .ioWaitEnd(ready):
                if let s = th.ioStart { try closeIO(th, start: s, end: t, nready: Int64(clamping: ready)) }
            case let .running(gt, hub):
                if hub != 0 {
                    th.hub = hub
                    greenthread(hub).isHub = true
                }
                let now = gt == th.hub ? 0 : gt
                if now != th.current {
                    try closeSlice(th, at: t)
                    try openSlice(th, gt: now, at: t, ready: BatchInserter.null, reason: 0)
                }
            case let .stallEnd(gt, duration, stack):
                try addStall(th, gt: gt, start: t - Int64(clamping: duration), end: t, endStack: optKey(stack), complete: true)
            case let .stallSample(tid, stack, state):
                try samplesOut.add(nextSample, traceID, key(tid), t, optKey(stack), Int64(clamping: state))
                nextSample += 1
                summary.samples += 1
            case let .stallBegin(tid, gt, since):
                if stallBegins.count < 1_000_000 { stallBegins.append((tid, gt, t - Int64(clamping: since))) }
            case let .string(id, value):
                stringsOut.bind(1, key(id)); stringsOut.bind(2, traceID); stringsOut.bind(3, value)
                try stringsOut.run()
            case let .frame(id, flags, function, file, line):
                framesOut.bind(1, key(id)); framesOut.bind(2, traceID)
                bindOpt(framesOut, 3, optKey(function)); bindOpt(framesOut, 4, optKey(file))
                if line == 0 { framesOut.bindNull(5) } else { framesOut.bind(5, Int64(clamping: line)) }
                framesOut.bind(6, flags.contains(.internal) ? 1 : 0)
                framesOut.bindNull(7); framesOut.bindNull(8)
                framesOut.bind(9, Int64(bitPattern: flags.rawValue))
                try framesOut.run()
            case let .nativeFrame(id, flags, image, address):
                framesOut.bind(1, key(id)); framesOut.bind(2, traceID)
                framesOut.bindNull(3); framesOut.bindNull(4); framesOut.bindNull(5)
                framesOut.bind(6, flags.contains(.internal) ? 1 : 0)
                bindOpt(framesOut, 7, optKey(image))
                framesOut.bind(8, Int64(bitPattern: address))
                framesOut.bind(9, Int64(bitPattern: flags.rawValue))
                try framesOut.run()
            case let .stack(id, frames):
                let sk = key(id)
                for (depth, f) in frames.enumerated() {
                    stackFramesOut.bind(1, sk); stackFramesOut.bind(2, Int64(depth)); stackFramesOut.bind(3, key(f))
                    try stackFramesOut.run()
                }
            case let .image(id, path, loadBias, start, end, buildID):
                imagesOut.bind(1, key(id)); imagesOut.bind(2, traceID); bindOpt(imagesOut, 3, optKey(path))
                imagesOut.bind(4, Int64(bitPattern: loadBias)); imagesOut.bind(5, Int64(bitPattern: start))
                imagesOut.bind(6, Int64(bitPattern: end))
                imagesOut.bind(7, buildID.isEmpty ? nil : buildID.map { b in
                    let h = String(b, radix: 16); return h.count == 1 ? "0" + h : h }.joined())
                try imagesOut.run()
            case let .thread(tid, name):
                thread(tid).nameKey = optKey(name)
            case let .greenthreadCreate(gt, name, spawnStack, parent):
                let g = greenthread(gt)
                g.created = t
                g.nameKey = optKey(name)
                g.spawnStack = optKey(spawnStack)
                g.parent = optKey(parent)
            case let .greenthreadExit(gt):
                greenthread(gt).exited = t
                exitedCount += 1
                if exitedCount >= 10_000 { try flushExitedGreenthreads() }
            case let .dropped(reason, count):
                summary.eventsDropped += count
                if reason == 2 { summary.recorderErrors += count }
            case .end:
                summary.cleanEnd = true
            case .skipped:
                summary.skippedEvents += 1
            }
        }
        if th.lastTime > lastTime { lastTime = th.lastTime }
        if let damage = iterator.damage { reader.report(damage) }
    }

    func bindOpt(_ s: Statement, _ i: Int32, _ v: Int64) {
        if v == BatchInserter.null { s.bindNull(i) } else { s.bind(i, v) }
    }

    /// Ends the running greenthread's slice at `t` (hubs have no slices).
    @inline(__always)
    func closeSlice(_ th: ThreadState, at t: Int64) throws(StoreError) {
        let gt = th.current
        guard gt != 0 else { return }
        let g = greenthread(gt)
        let id = nextSlice
        nextSlice += 1
        try slicesOut.add8(id, key(gt), th.key, th.sliceReady, th.sliceStart, t, th.sliceReason, g.lastSlice)
        let run = t - th.sliceStart
        g.runNs += run
        th.busyNs += run
        if g.slices % StreamingImport.checkpointEvery == 0 {
            try checkpointsOut.add(0, key(gt), th.sliceStart, id)
        }
        if th.slices % StreamingImport.checkpointEvery == 0 {
            try checkpointsOut.add(1, th.key, th.sliceStart, id)
        }
        // A greenthread that moves between threads (a task of a thread pool) can have its slices
        // reach the file out of time order; mark it so its chain is not cut short by time.
        if th.sliceStart < g.lastEnd { try checkpointsOut.add(3, key(gt), th.sliceStart, id) }
        g.lastSlice = id
        g.lastEnd = t
        g.slices += 1
        th.slices += 1
        summary.slices += 1
    }

    /// Starts a slice of `gt` (0 or the hub: none) and charges recent stalls for its wait.
    @inline(__always)
    func openSlice(_ th: ThreadState, gt: UInt32, at t: Int64, ready: Int64, reason: Int64) throws(StoreError) {
        guard gt != 0, gt != th.hub else {
            th.current = 0
            return
        }
        th.current = gt
        th.sliceStart = t
        th.sliceReady = ready
        th.sliceReason = reason
        guard ready != BatchInserter.null else { return }
        let g = greenthread(gt)
        // A greenthread does not wait while it runs: a ready time before the end of its previous
        // slice (a recorder repeating a stale wake-up time) counts from that end. (Not when that
        // slice is later in time: slices of other threads' chunks can come out of order.)
        let ready = g.lastEnd <= t ? max(ready, g.lastEnd) : ready
        th.sliceReady = ready
        g.readyWaitNs += t - ready
        // Most greenthreads became ready after the last stall ended: one comparison skips the loop.
        if ready < th.recentStallsEnd { try chargeVictim(th, gt: gt, ready: ready, resumed: t) }
        if pool != nil, th.hub == 0, ready < t, pool!.isWorker(th.tid) {
            for (s, wait) in pool!.jobStarted(gt: gt, thread: th.tid, ready: ready, start: t) {
                try addVictim(stall: s, gt: gt, ready: ready, resumed: t, wait: wait)
            }
        }
    }

    func addVictim(stall: Int64, gt: UInt32, ready: Int64, resumed: Int64, wait: Int64) throws(StoreError) {
        try victimsOut.add(stall, key(gt), ready, resumed, wait)
        let old = victimTotals[stall] ?? (0, 0)
        victimTotals[stall] = (old.count + 1, old.wait + wait)
    }

    func chargeVictim(_ th: ThreadState, gt: UInt32, ready: Int64, resumed: Int64) throws(StoreError) {
        for s in th.recentStalls where s.gt != gt {
            let wait = victimWait(ready: ready, resumed: resumed, stallStart: s.start, stallEnd: s.end)
            if wait > 0 { try addVictim(stall: s.id, gt: gt, ready: ready, resumed: resumed, wait: wait) }
        }
        // Forget stalls whose victims would have waited more than `victimHorizon` after them
        // (their wait is no longer this stall's doing alone), and keep at most 64.
        th.recentStalls.removeAll { resumed - $0.end > StreamingImport.victimHorizon }
        if th.recentStalls.count > 64 { th.recentStalls.removeFirst(th.recentStalls.count - 64) }
        th.recentStallsEnd = th.recentStalls.map(\.end).max() ?? Int64.min
    }

    func closeIO(_ th: ThreadState, start s: Int64, end t: Int64, nready: Int64) throws(StoreError) {
        let id = nextIO
        nextIO += 1
        try ioOut.add(id, th.key, s, t, th.ioTimeout, nready)
        if th.ios % StreamingImport.checkpointEvery == 0 { try checkpointsOut.add(2, th.key, s, id) }
        th.ios += 1
        th.ioWaitNs += t - s
        th.ioStart = nil
        summary.ioWaits += 1
    }

    func addStall(_ th: ThreadState, gt: UInt32, start s: Int64, end t: Int64, endStack: Int64, complete: Bool) throws(StoreError) {
        let id = nextStall
        nextStall += 1
        stallsOut.bind(1, id); stallsOut.bind(2, traceID); stallsOut.bind(3, th.key)
        stallsOut.bind(4, key(gt)); stallsOut.bind(5, s); stallsOut.bind(6, t); stallsOut.bind(7, t - s)
        bindOpt(stallsOut, 8, endStack)
        stallsOut.bind(9, complete ? 1 : 0)
        try stallsOut.run()
        th.recentStalls.append((id, s, t, gt))
        th.recentStallsEnd = max(th.recentStallsEnd, t)
        summary.stalls += 1
        if pool != nil, th.hub == 0, pool!.isWorker(th.tid) {
            for v in pool!.stallEnded(id: id, gt: gt, thread: th.tid, start: s, end: t) {
                try addVictim(stall: id, gt: v.gt, ready: v.ready, resumed: v.start, wait: v.wait)
            }
        }
    }

    /// Writes (merging) the rows of greenthreads that exited and are not running, and forgets them.
    func flushExitedGreenthreads() throws(StoreError) {
        let running = Set(threads.values.map(\.current))
        let done = greenthreads.filter { $0.value.exited != BatchInserter.null && !running.contains($0.key) }
        try writeGreenthreads(done)
        for k in done.keys { greenthreads[k] = nil }
        exitedCount = 0
    }

    func writeGreenthreads(_ gts: [UInt32: GreenthreadState]) throws(StoreError) {
        let up = try db.prepare("""
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
        for (gt, g) in gts {
            up.bind(1, key(gt)); up.bind(2, traceID); up.bind(3, Int64(gt))
            bindOpt(up, 4, g.nameKey); bindOpt(up, 5, g.spawnStack); bindOpt(up, 6, g.parent)
            up.bind(7, g.isHub ? 1 : 0); bindOpt(up, 8, g.created); bindOpt(up, 9, g.exited)
            up.bind(10, Int64(g.slices)); up.bind(11, g.runNs); up.bind(12, g.readyWaitNs); bindOpt(up, 13, g.lastSlice)
            try up.run()
        }
    }

    func finish(fingerprint: String) throws(StoreError) {
        // Close what the recording left open at each thread's last event.
        for th in threads.values {
            try closeSlice(th, at: th.lastTime)
            th.current = 0
            if let s = th.ioStart { try closeIO(th, start: s, end: th.lastTime, nready: BatchInserter.null) }
        }
        try slicesOut.flush(); try ioOut.flush(); try checkpointsOut.flush()
        try samplesOut.flush(); try victimsOut.flush()

        // Stalls the watchdog saw begin but whose end was never written (the program died
        // inside them): closed at the last sample or event of that thread, marked incomplete.
        for b in stallBegins {
            let tk = key(b.tid)
            let covered = try db.scalar("SELECT 1 FROM stalls WHERE thread_key = ? AND start_ns <= ? AND end_ns >= ? LIMIT 1",
                                        [.int(tk), .int(b.start + 1_000_000), .int(b.start)]) != nil
            if covered { continue }
            let lastSample = try db.scalar("SELECT MAX(ts_ns) FROM stall_samples WHERE trace_id = ? AND thread_key = ? AND ts_ns >= ?",
                                           [.int(traceID), .int(tk), .int(b.start)]) ?? b.start
            let th = thread(b.tid)
            let end = max(lastSample, th.lastTime)
            try addStall(th, gt: b.gt, start: b.start, end: max(end, b.start), endStack: BatchInserter.null, complete: false)
        }

        // Thread 0 means "none" (the End marker's chunk): not an OS thread, unless a writer ran
        // greenthreads under it.
        threads = threads.filter { $0.key != 0 || $0.value.slices > 0 || $0.value.ios > 0 }
        for th in threads.values {
            let s = try db.prepare("""
                INSERT INTO threads (key, trace_id, tid, name_key, hub_key, slices, busy_ns, io_wait_ns) VALUES (?,?,?,?,?,?,?,?)
                ON CONFLICT(key) DO UPDATE SET slices = slices + excluded.slices, busy_ns = busy_ns + excluded.busy_ns,
                  io_wait_ns = io_wait_ns + excluded.io_wait_ns, name_key = COALESCE(excluded.name_key, name_key),
                  hub_key = COALESCE(excluded.hub_key, hub_key)
                """)
            s.bind(1, th.key); s.bind(2, traceID); s.bind(3, Int64(th.tid)); bindOpt(s, 4, th.nameKey)
            bindOpt(s, 5, optKey(th.hub)); s.bind(6, Int64(th.slices)); s.bind(7, th.busyNs); s.bind(8, th.ioWaitNs)
            try s.run()
        }
        try writeGreenthreads(greenthreads)

        let lo = traceID << 40, hi = (traceID + 1) << 40
        let k0 = traceID << 32, k1 = (traceID + 1) << 32
        try db.exec("""
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
        let vs = try db.prepare("UPDATE stalls SET victims = ?, victim_wait_ns = ? WHERE id = ?")
        for (id, v) in victimTotals {
            vs.bind(1, v.count); vs.bind(2, v.wait); vs.bind(3, id)
            try vs.run()
        }

        let md = try db.prepare("INSERT OR REPLACE INTO trace_metadata (trace_id, key, value) VALUES (?,?,?)")
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            let text: String
            switch v {
            case let .uint(x): text = String(x)
            case let .string(s): text = s
            case let .list(l): text = "[" + l.map(jsonQuote).joined(separator: ",") + "]"
            }
            try md.bind([.int(traceID), .text(k), .text(text)])
            try md.run()
        }
        let dm = try db.prepare("INSERT INTO import_damage (trace_id, offset, bytes_lost, reason) VALUES (?,?,?,?)")
        for d in reader.damage {
            try dm.bind([.int(traceID), .int(Int64(d.offset)), .int(Int64(d.bytesLost)), .text(d.reason)])
            try dm.run()
        }

        summary.damage = reader.damage
        summary.bytesLost = reader.bytesLost
        summary.threads = threads.count
        summary.greenthreads = Int(try db.scalar("SELECT COUNT(*) FROM greenthreads WHERE trace_id = ? AND is_hub = 0",
                                                 [.int(traceID)]) ?? 0)
        func meta(_ k: String) -> SQLValue {
            switch metadata[k] {
            case let .uint(x)?: return .int(Int64(clamping: x))
            case let .string(s)?: return .text(s)
            case let .list(l)?: return .text("[" + l.map(jsonQuote).joined(separator: ",") + "]")
            case nil: return .null
            }
        }
        let up = try db.prepare("""
            UPDATE traces SET runtime = ?, runtime_version = ?, pid = ?, hostname = ?, argv = ?, threshold_ns = ?,
              sample_interval_ns = ?, anchor_wall_ns = ?, duration_ns = ?, events = ?, chunks = ?, file_bytes = ?,
              bytes_lost = ?, events_dropped = ?, recorder_errors = ?, clean_end = ?
            WHERE id = ?
            """)
        try up.bind([meta("runtime"), meta("runtime_version"), meta("pid"), meta("hostname"), meta("argv"),
                     meta("threshold_ns"), meta("sample_interval_ns"), meta("anchor_wall_ns"), .int(lastTime),
                     .int(Int64(summary.events)), .int(Int64(summary.chunks)), .int(Int64(summary.fileBytes)),
                     .int(Int64(summary.bytesLost)), .int(Int64(clamping: summary.eventsDropped)),
                     .int(Int64(clamping: summary.recorderErrors)), .int(summary.cleanEnd ? 1 : 0), .int(traceID)])
        try up.run()
        let symbols = try Symbolizer.run(db: db, traceID: traceID)  // native frames → function, file, line
        if symbols.frames > 0 { summary.symbols = symbols }
    }
}

/// SQL for the string a key column refers to; a string the trace never defined reads
/// `<string N>` (spec §4.3), and no reference (NULL) stays NULL.
func stringOrMissing(_ column: String) -> String {
    "CASE WHEN \(column) IS NULL THEN NULL ELSE COALESCE((SELECT value FROM strings WHERE key = \(column)), "
        + "'<string ' || (\(column) & 4294967295) || '>') END"
}

func hex32(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}

let jsonQuote = TraceJSON.quote

/// Elapsed wall time since creation (CLOCK_MONOTONIC).
public struct Stopwatch: Sendable {
    private let start: UInt64
    public init() { start = Stopwatch.now() }
    public var seconds: Double { Double(Stopwatch.now() - start) / 1e9 }
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
