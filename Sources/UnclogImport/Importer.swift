// `unclog import`: streams a trace file into the SQLite store, rebuilding the timeline
// (slices, I/O waits, stalls, victims) on the way, with memory bounded by live greenthreads.
// A failed import leaves the database as it was: a new database is built under a temporary
// name and renamed; an existing one is changed in one transaction. Chunks go through the
// timeline rebuild (events → records, `TimelineRebuild`) into the writer (records → rows,
// `RowWriter`), driven by `StreamingImport`; this file holds the import's public face.

import Synchronization
import UnclogStore
import UnclogTrace

#if canImport(Glibc)
    import Glibc
#endif

/// What to import, and where.
public struct ImportOptions: Sendable {
    /// The trace file to read.
    public var tracePath: String
    /// The database to create or add the trace to.
    public var databasePath: String
    /// Called about ten times a second with the bytes read so far.
    public var progress: (@Sendable (ImportProgress) -> Void)?
    /// Replace a trace that was imported before from a file of the same recording.
    public var replace: Bool

    /// Options for importing `tracePath` into `databasePath`.
    public init(
        tracePath: String, databasePath: String, replace: Bool = false,
        progress: (@Sendable (ImportProgress) -> Void)? = nil
    ) {
        self.tracePath = tracePath
        self.databasePath = databasePath
        self.replace = replace
        self.progress = progress
    }
}

/// Progress of a running import.
public struct ImportProgress: Sendable {
    /// Bytes of the trace file read so far, of `fileSize` (nil when unknown).
    public var bytesRead: UInt64
    public var fileSize: UInt64?
    /// Events decoded so far.
    public var events: Int
}

/// What an import did.
public struct ImportSummary: Sendable {
    /// The trace's id in the database (`traces.id`).
    public var traceID: Int64
    /// True when the trace was already in the database and nothing was done.
    public var alreadyImported = false
    /// True when an earlier import of the same recording was replaced.
    public var replaced = false
    /// What was read (events, intact chunks) and the rows made of it; the same counts as the
    /// `traces` row and the tables hold (greenthreads without hubs).
    public var events = 0
    public var chunks = 0
    public var greenthreads = 0
    public var threads = 0
    public var slices = 0
    public var ioWaits = 0
    public var stalls = 0
    public var samples = 0
    /// The file's size, the bytes of it lost to damage, and each damaged stretch.
    public var fileBytes: UInt64 = 0
    public var bytesLost: UInt64 = 0
    public var damage: [TraceDamage] = []
    /// Events the recorder reported losing, and of those its own errors (`Dropped` reason 2).
    public var eventsDropped: UInt64 = 0
    public var recorderErrors: UInt64 = 0
    /// The recorder wrote its `End` event.
    public var cleanEnd = false
    /// Events and chunks of a later format version, skipped.
    public var skippedEvents = 0
    public var skippedChunks = 0
    /// Native frames (Swift recordings): what offline symbolization did and why frames stayed unnamed.
    public var symbols: SymbolizationReport?
    /// Wall time of the import, and the events decoded per second of it.
    public var seconds = 0.0
    public var eventsPerSecond: Double { seconds > 0 ? Double(events) / seconds : 0 }
}

/// Why an import failed as a whole (the database is unchanged).
public enum ImportError: Error, CustomStringConvertible {
    case unreadableTrace(TraceReadError)
    case store(StoreError)
    case cancelled

    /// The reason, ready to print.
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
                try Schema.beginBulkWrite(db, isNew: !exists)
                let importer = StreamingImport(db: db, reader: reader, options: options)
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
                if summary.alreadyImported {
                    unlink(workPath)
                } else if rename(workPath, options.databasePath) != 0 {
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

/// A chunk's CRC-32 as eight hex digits (the recording's fingerprint).
func hex32(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}

/// Elapsed wall time since creation (CLOCK_MONOTONIC).
public struct Stopwatch: Sendable {
    private let start: UInt64
    /// Starts timing now.
    public init() { start = Stopwatch.now() }
    /// Seconds since creation.
    public var seconds: Double { Double(Stopwatch.now() - start) / 1e9 }
    /// CLOCK_MONOTONIC now, in ns.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
