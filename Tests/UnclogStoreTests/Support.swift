// Shared helpers for the store tests: temporary directories, a small script language over
// TraceBuilder (times relative to the trace start, explicit flushes so the file order of
// chunks is chosen by the test), and row access to the imported database.

import CSQLite
import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTrace

/// A fresh directory under /tmp, removed when the value dies.
final class TempDir {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "/unclog-store-XXXXXX").utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    /// File names in the directory, sorted.
    func listing() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
}

/// The CLOCK_MONOTONIC time every scripted trace starts at; event times are offsets from it.
let anchor: UInt64 = 5_000_000_000

/// Milliseconds in nanoseconds.
func ms(_ v: Int64) -> Int64 { v * 1_000_000 }

/// A trace written event by event. `at(t, thread, kind)` appends an event of `thread`'s stream
/// at `anchor + t`; chunks reach the file when a thread's buffer fills (`chunkBytes`) or on
/// `flush()`, so a test decides which thread's chunk comes first in the file.
final class ScriptedTrace {
    private final class Sink { var bytes: [UInt8] = [] }
    private let sink = Sink()
    private let builder: TraceBuilder
    private(set) var finished = false

    init(pid: UInt64 = 4242, chunkBytes: Int = 64 << 10, thresholdNs: UInt64 = 10_000_000,
         runtime: String = "eventlet", extraMetadata: [MetadataEntry] = []) {
        let s = sink
        builder = TraceBuilder(
            metadata: [
                MetadataEntry("clock", .string("CLOCK_MONOTONIC")),
                MetadataEntry("anchor_mono_ns", .uint(anchor)),
                MetadataEntry("anchor_wall_ns", .uint(1_700_000_000_000_000_000)),
                MetadataEntry("pid", .uint(pid)),
                MetadataEntry("argv", .list(["python3", "app.py"])),
                MetadataEntry("runtime", .string(runtime)),
                MetadataEntry("runtime_version", .string("0.36.1")),
                MetadataEntry("threshold_ns", .uint(thresholdNs)),
                MetadataEntry("sample_interval_ns", .uint(1_000_000)),
            ] + extraMetadata,
            anchorTime: anchor, chunkBytes: chunkBytes, sink: { s.bytes += $0 })
    }

    func at(_ t: Int64, _ thread: UInt32, _ kind: TraceEvent.Kind) {
        precondition(!finished)
        builder.append(TraceEvent(time: anchor + UInt64(t), kind), thread: thread)
    }

    /// Defines string `id` = `value` (in `thread`'s stream, at time `t`).
    func string(_ id: UInt32, _ value: String, thread: UInt32 = 1, at t: Int64 = 0) {
        at(t, thread, .string(id: id, value: value))
    }

    func flush() { builder.flushAll() }

    /// A clean end: every buffer flushed and the `End` marker written.
    func finish(at t: Int64) {
        builder.finish(at: anchor + UInt64(t))
        finished = true
    }

    /// The file so far (partial buffers not included: call `flush()` or `finish` first).
    var bytes: [UInt8] { sink.bytes }

    @discardableResult
    func write(to path: String) -> String {
        FileManager.default.createFile(atPath: path, contents: Data(sink.bytes))
        return path
    }
}

/// Symbolic frames and stacks, defined through string ids allocated on the way.
final class Symbols {
    private var strings: [String: UInt32] = [:]
    private var nextString: UInt32 = 1000
    private var frames: [String: UInt32] = [:]
    private var nextFrame: UInt32 = 1
    private var nextStack: UInt32 = 1
    let trace: ScriptedTrace
    let thread: UInt32
    /// The time definitions are stamped with (a thread's times must not go backwards).
    var time: Int64 = 0

    init(_ trace: ScriptedTrace, thread: UInt32) {
        self.trace = trace
        self.thread = thread
    }

    func string(_ s: String) -> UInt32 {
        if let id = strings[s] { return id }
        nextString += 1
        strings[s] = nextString
        trace.string(nextString, s, thread: thread, at: time)
        return nextString
    }

    /// A frame `function file:line`; `internal` frames belong to the runtime.
    func frame(_ function: String, _ file: String, _ line: UInt64, isInternal: Bool = false) -> UInt32 {
        let k = "\(function)|\(file)|\(line)|\(isInternal)"
        if let id = frames[k] { return id }
        let id = nextFrame
        nextFrame += 1
        frames[k] = id
        trace.at(time, thread, .frame(id: id, flags: isInternal ? .internal : [], function: string(function), file: string(file),
                                   line: line))
        return id
    }

    /// A stack of frames, innermost first.
    func stack(_ frames: [UInt32]) -> UInt32 {
        let id = nextStack
        nextStack += 1
        trace.at(time, thread, .stack(id: id, frames: frames))
        return id
    }
}

/// Imports `trace` (written to `dir/name.trace`) into `dir/name.db` or `db`.
@discardableResult
func importTrace(_ trace: ScriptedTrace, in dir: TempDir, name: String = "t", db: String? = nil,
                 replace: Bool = false) throws -> ImportSummary {
    let path = trace.write(to: dir.file(name + ".trace"))
    return try TraceImporter.run(ImportOptions(tracePath: path, databasePath: db ?? dir.file(name + ".db"), replace: replace))
}

/// The key of a recorder id in trace `t` (schema convention, see StoreKey).
func key(_ id: Int64, trace t: Int64 = 1) -> Int64 { StoreKey.object(trace: t, id: id) }

/// The id of the `n`-th importer-created row of trace `t` (schema convention, see StoreKey).
func rowID(_ n: Int64, trace t: Int64 = 1) -> Int64 { StoreKey.row(trace: t, n: n) }

extension TraceStore {
    /// All rows of a query as SQL values.
    func rows(_ sql: String, _ args: [SQLValue] = []) throws -> [[SQLValue]] {
        let s = try db.prepare(sql)
        try s.bind(args)
        var out: [[SQLValue]] = []
        while try s.step() { out.append((0..<s.columnCount).map { s.value($0) }) }
        return out
    }

    /// The one integer a query returns (0 for NULL).
    func int(_ sql: String, _ args: [SQLValue] = []) throws -> Int64 {
        let r = try rows(sql, args)
        guard case let .int(v)? = r.first?.first else { return 0 }
        return v
    }

    /// Row counts of every table, to check that an operation changed nothing.
    func tableCounts() throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for row in try rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") {
            guard case let .text(name) = row[0] else { continue }
            out[name] = try int("SELECT COUNT(*) FROM \"\(name)\"")
        }
        return out
    }
}

/// A SQL integer or NULL as an optional.
func opt(_ v: SQLValue) -> Int64? {
    if case let .int(x) = v { return x }
    return nil
}

extension ResultTable {
    /// Cell `column` of row `row` as CSV text (raw numbers).
    func cell(_ row: Int, _ column: String) -> String {
        guard let i = columns.firstIndex(of: column) else { return "<no column \(column)>" }
        return rows[row][i].csv
    }

    /// The row whose `column` reads `value`.
    func row(where column: String, is value: String) -> Int? {
        guard let i = columns.firstIndex(of: column) else { return nil }
        return rows.firstIndex { $0[i].csv == value }
    }
}

/// Offsets of the chunks of a well-formed trace (the 16-byte header skipped).
func chunkOffsets(_ bytes: [UInt8]) -> [Int] {
    var out: [Int] = []
    var at = TraceFormat.fileHeaderSize
    while at + TraceFormat.chunkHeaderSize <= bytes.count {
        out.append(at)
        let len = Int(bytes[at + 4]) | Int(bytes[at + 5]) << 8 | Int(bytes[at + 6]) << 16 | Int(bytes[at + 7]) << 24
        at += TraceFormat.chunkHeaderSize + len
    }
    return out
}

/// The bytes of a file (empty if missing).
func contents(_ path: String) -> [UInt8] {
    (FileManager.default.contents(atPath: path)).map { [UInt8]($0) } ?? []
}

/// A slice as tests write it (SliceRow has no public initializer).
struct Slice: Equatable, CustomStringConvertible {
    var gtKey: Int64
    var threadKey: Int64
    var readyNs: Int64?
    var startNs: Int64
    var endNs: Int64
    var reason: Int64
    var description: String { "gt \(StoreKey.id(ofObject: gtKey)) on \(StoreKey.id(ofObject: threadKey)) [\(startNs), \(endNs)] ready \(readyNs.map(String.init) ?? "nil") reason \(reason)" }
}

extension Array where Element == SliceRow {
    var plain: [Slice] {
        map { Slice(gtKey: $0.gtKey, threadKey: $0.threadKey, readyNs: $0.readyNs, startNs: $0.startNs, endNs: $0.endNs, reason: $0.reason) }
    }
}

/// A trace imported once and shared by the tests that only read it (imports dominate the
/// run time of this suite in debug builds). Tests must not write to it; the SQL tests check
/// that its bytes never change.
final class Fixture: @unchecked Sendable {
    let dir: TempDir
    let path: String
    private let result: Result<ImportSummary, any Error>
    /// The database file right after the import.
    let bytes: [UInt8]

    init(_ make: () -> ScriptedTrace) {
        let d = TempDir()
        dir = d
        path = d.file("t.db")
        let trace = make()
        result = Result { try importTrace(trace, in: d) }
        bytes = contents(path)
    }

    var summary: ImportSummary { get throws { try result.get() } }
    func store() throws -> TraceStore {
        _ = try result.get()
        return try TraceStore(path: path)
    }

    static let slices = Fixture { slicesTrace() }
    static let stalls = Fixture { StallScenario().trace }
    static let top = Fixture { topTrace() }
}
