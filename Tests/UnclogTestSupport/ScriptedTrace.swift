// Test support: a small script language over TraceBuilder for building traces whose meaning is
// known exactly (times relative to the trace start, explicit flushes so the file order of chunks
// is chosen by the test), and symbolic frames and stacks defined on the way.

import Foundation
import UnclogTrace

/// The CLOCK_MONOTONIC time every scripted trace starts at; event times are offsets from it.
public let anchor: UInt64 = 5_000_000_000

/// A trace written event by event. `at(t, thread, kind)` appends an event of `thread`'s stream
/// at `anchor + t`; chunks reach the file when a thread's buffer fills (`chunkBytes`) or on
/// `flush()`, so a test decides which thread's chunk comes first in the file.
public final class ScriptedTrace {
    private final class Sink { var bytes: [UInt8] = [] }
    private let sink = Sink()
    private let builder: TraceBuilder
    public private(set) var finished = false

    public init(
        pid: UInt64 = 4242, chunkBytes: Int = 64 << 10, thresholdNs: UInt64 = 10_000_000,
        runtime: String = "eventlet", extraMetadata: [MetadataEntry] = []
    ) {
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

    public func at(_ t: Int64, _ thread: UInt32, _ kind: TraceEvent.Kind) {
        precondition(!finished)
        builder.append(TraceEvent(time: anchor + UInt64(t), kind), thread: thread)
    }

    /// Defines string `id` = `value` (in `thread`'s stream, at time `t`).
    public func string(_ id: UInt32, _ value: String, thread: UInt32 = 1, at t: Int64 = 0) {
        at(t, thread, .string(id: id, value: value))
    }

    /// Writes every thread's buffered events as chunks.
    public func flush() { builder.flushAll() }

    /// A clean end: every buffer flushed and the `End` marker written.
    public func finish(at t: Int64) {
        builder.finish(at: anchor + UInt64(t))
        finished = true
    }

    /// The file so far (partial buffers not included: call `flush()` or `finish` first).
    public var bytes: [UInt8] { sink.bytes }

    /// Writes the file so far to `path` and returns `path`.
    @discardableResult
    public func write(to path: String) -> String {
        FileManager.default.createFile(atPath: path, contents: Data(sink.bytes))
        return path
    }
}

/// Symbolic frames and stacks, defined through string ids allocated on the way.
public final class Symbols {
    private var strings: [String: UInt32] = [:]
    private var nextString: UInt32 = 1000
    private var frames: [String: UInt32] = [:]
    private var nextFrame: UInt32 = 1
    private var nextStack: UInt32 = 1
    public let trace: ScriptedTrace
    public let thread: UInt32
    /// The time definitions are stamped with (a thread's times must not go backwards).
    public var time: Int64 = 0

    public init(_ trace: ScriptedTrace, thread: UInt32) {
        self.trace = trace
        self.thread = thread
    }

    /// The id of string `s`, defined on first use.
    public func string(_ s: String) -> UInt32 {
        if let id = strings[s] { return id }
        nextString += 1
        strings[s] = nextString
        trace.string(nextString, s, thread: thread, at: time)
        return nextString
    }

    /// A frame `function file:line`; `internal` frames belong to the runtime.
    public func frame(_ function: String, _ file: String, _ line: UInt64, isInternal: Bool = false) -> UInt32 {
        let k = "\(function)|\(file)|\(line)|\(isInternal)"
        if let id = frames[k] { return id }
        let id = nextFrame
        nextFrame += 1
        frames[k] = id
        trace.at(
            time, thread,
            .frame(
                id: id, flags: isInternal ? .internal : [], function: string(function), file: string(file),
                line: line))
        return id
    }

    /// A stack of frames, innermost first.
    public func stack(_ frames: [UInt32]) -> UInt32 {
        let id = nextStack
        nextStack += 1
        trace.at(time, thread, .stack(id: id, frames: frames))
        return id
    }
}

/// Offsets of the chunks of a well-formed trace (the 16-byte header skipped).
public func chunkOffsets(_ bytes: [UInt8]) -> [Int] {
    var out: [Int] = []
    var at = TraceFormat.fileHeaderSize
    while at + TraceFormat.chunkHeaderSize <= bytes.count {
        out.append(at)
        let len = Int(bytes[at + 4]) | Int(bytes[at + 5]) << 8 | Int(bytes[at + 6]) << 16 | Int(bytes[at + 7]) << 24
        at += TraceFormat.chunkHeaderSize + len
    }
    return out
}
