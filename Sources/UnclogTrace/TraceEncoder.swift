// Encoding of events, chunks and file headers: the reference writer of schema/trace-format.md.
// Used by TraceBuilder (the benchmark's trace generator, the tests' hand-built traces), by the
// generator of the conformance vectors (schema/vectors/), and by TraceFileWriter (exercised by
// the tests only). The recorders are C and Python, with writers of their own checked against
// the same spec.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds the payload of one events chunk: events appended in time order, each as
/// `code dt fields…` with `dt` relative to the previous event of the chunk.
public struct ChunkEncoder: Sendable {
    /// The encoded payload so far.
    public private(set) var bytes: [UInt8]
    /// The chunk header's `base_ns`: the first event's `dt` is relative to it.
    public let baseTime: UInt64
    /// Events appended so far.
    public private(set) var eventCount = 0
    private var lastTime: UInt64

    public init(baseTime: UInt64, capacity: Int = 64 << 10) {
        self.baseTime = baseTime
        self.lastTime = baseTime
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    /// Appends one event. A time earlier than the previous event's is written as `dt = 0`
    /// (the format requires non-decreasing times within a chunk).
    public mutating func append(_ event: TraceEvent) {
        let dt = event.time >= lastTime ? event.time - lastTime : 0
        lastTime = max(lastTime, event.time)
        eventCount += 1
        switch event.kind {
        case let .string(id, value):
            head(.string, dt); u(id)
            bytes.appendBytes(TraceEncoding.limitedUTF8(value))
        case let .frame(id, flags, function, file, line):
            head(.frame, dt); u(id); u(flags.rawValue); u(function); u(file); u(line)
        case let .nativeFrame(id, flags, image, address):
            head(.nativeFrame, dt); u(id); u(flags.rawValue); u(image); u(address)
        case let .stack(id, frames):
            head(.stack, dt); u(id)
            let kept = frames.prefix(TraceFormat.maxStackDepth)
            u(UInt64(kept.count))
            for f in kept { u(f) }
        case let .image(id, path, loadBias, start, end, buildID):
            head(.image, dt); u(id); u(path); u(loadBias); u(start); u(end)
            bytes.appendBytes(buildID.prefix(TraceFormat.maxBuildIDBytes))
        case let .thread(tid, name):
            head(.thread, dt); u(tid); u(name)
        case let .greenthreadCreate(gt, name, spawnStack, parent):
            head(.greenthreadCreate, dt); u(gt); u(name); u(spawnStack); u(parent)
        case let .greenthreadExit(gt):
            head(.greenthreadExit, dt); u(gt)
        case let .running(gt, hub):
            head(.running, dt); u(gt); u(hub)
        case .switchToHub:
            head(.switchToHub, dt)
        case let .switchTo(to, reason, readyDelta):
            bytes.append(0x10 + reason.rawValue); bytes.appendUvarint(dt); u(to); u(readyDelta)
        case let .ioWaitBegin(timeout):
            head(.ioWaitBegin, dt); u(timeout.map { $0 &+ 1 } ?? 0)
        case let .ioWaitEnd(ready):
            head(.ioWaitEnd, dt); u(ready)
        case let .stallBegin(tid, gt, sinceDelta):
            head(.stallBegin, dt); u(tid); u(gt); u(sinceDelta)
        case let .stallSample(tid, stack, state):
            head(.stallSample, dt); u(tid); u(stack); u(state)
        case let .stallEnd(gt, duration, stack):
            head(.stallEnd, dt); u(gt); u(duration); u(stack)
        case let .dropped(reason, count):
            head(.dropped, dt); u(reason); u(count)
        case let .end(chunks, events):
            head(.end, dt); u(chunks); u(events)
        case let .skipped(code, length):
            // Writes a length-prefixed event of `length` zero bytes (tests of forward compatibility).
            bytes.append(code); bytes.appendUvarint(dt); u(UInt64(length))
            bytes.append(contentsOf: [UInt8](repeating: 0, count: length))
        }
    }

    @inline(__always) private mutating func head(_ code: EventCode, _ dt: UInt64) {
        bytes.append(code.rawValue)
        bytes.appendUvarint(dt)
    }
    @inline(__always) private mutating func u(_ v: UInt64) { bytes.appendUvarint(v) }
    @inline(__always) private mutating func u(_ v: UInt32) { bytes.appendUvarint(UInt64(v)) }
}

/// Static helpers that produce the byte layout of headers and chunks.
public enum TraceEncoding {
    /// The 16-byte file header.
    public static func fileHeader(
        versionMajor: UInt16 = TraceFormat.versionMajor,
        versionMinor: UInt16 = TraceFormat.versionMinor
    ) -> [UInt8] {
        var out = TraceFormat.magic
        out.appendLE(versionMajor)
        out.appendLE(versionMinor)
        out.appendLE(UInt32(0))
        return out
    }

    /// A whole chunk: the 32-byte header with its CRC, then the payload.
    public static func chunk(
        kind: UInt8, baseTime: UInt64, thread: UInt32, seq: UInt32,
        payload: [UInt8], flags: UInt8 = 0
    ) -> [UInt8] {
        precondition(payload.count <= TraceFormat.maxChunkPayload, "chunk payload over 16 MiB")
        var out = TraceFormat.chunkSync
        out.reserveCapacity(TraceFormat.chunkHeaderSize + payload.count)
        out.appendLE(UInt32(payload.count))
        out.appendLE(UInt32(0))  // CRC, filled in below
        out.append(kind)
        out.append(flags)
        out.appendLE(UInt16(0))
        out.appendLE(baseTime)
        out.appendLE(thread)
        out.appendLE(seq)
        out.append(contentsOf: payload)
        let crc = out.withUnsafeBytes { CRC32.update(0, UnsafeRawBufferPointer(rebasing: $0[12...])) }
        withUnsafeBytes(of: crc.littleEndian) { c in
            for i in 0..<4 { out[8 + i] = c[i] }
        }
        return out
    }

    /// The payload of a metadata chunk. Like every writer it stays within the limits of
    /// spec §6 (strings truncated, at most 4096 entries) so readers never reject its output.
    public static func metadataPayload(_ entries: [MetadataEntry]) -> [UInt8] {
        var out: [UInt8] = []
        let kept = entries.prefix(TraceFormat.maxMetadataEntries)
        out.appendUvarint(UInt64(kept.count))
        for e in kept {
            out.appendBytes(limitedUTF8(e.key))
            switch e.value {
            case let .uint(v):
                out.append(0); out.appendUvarint(v)
            case let .string(s):
                out.append(1); out.appendBytes(limitedUTF8(s))
            case let .list(items):
                out.append(2); out.appendUvarint(UInt64(items.count))
                for s in items { out.appendBytes(limitedUTF8(s)) }
            }
        }
        return out
    }

    /// The UTF-8 of `s`, truncated to the 65 536-byte string limit on a scalar boundary
    /// (cutting inside a scalar would make readers show U+FFFD).
    static func limitedUTF8(_ s: String) -> [UInt8] {
        var utf8 = Array(s.utf8)
        if utf8.count > TraceFormat.maxStringBytes {
            var n = TraceFormat.maxStringBytes
            while n > 0 && utf8[n] & 0xC0 == 0x80 { n -= 1 }  // utf8[n] is the first byte cut off
            utf8.removeSubrange(n...)
        }
        return utf8
    }
}

/// Writes a trace file: header, a metadata chunk, then events chunks, one per-thread
/// sequence number counter each. Not thread-safe: a writer of several threads keeps one
/// `ChunkEncoder` per thread and serializes only whole-chunk writes.
public final class TraceFileWriter {
    private let fd: Int32
    public let path: String
    private var sequence: [UInt32: UInt32] = [:]
    /// Chunks written so far (the `End` event reports it).
    public private(set) var chunksWritten: UInt64 = 0
    /// Bytes written so far, header included.
    public private(set) var bytesWritten: UInt64 = 0

    /// Creates (or truncates) `path` and writes the file header and metadata chunk.
    public init(path: String, metadata: [MetadataEntry], anchorTime: UInt64) throws(TraceWriteError) {
        self.path = path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TraceWriteError(path: path, errno: errno) }
        self.fd = fd
        try write(TraceEncoding.fileHeader())
        try write(
            TraceEncoding.chunk(
                kind: ChunkKind.metadata.rawValue, baseTime: anchorTime, thread: 0,
                seq: 0, payload: TraceEncoding.metadataPayload(metadata)))
    }

    deinit { close(fd) }

    /// Writes the encoder's events as one chunk of `thread`.
    public func writeChunk(_ encoder: ChunkEncoder, thread: UInt32) throws(TraceWriteError) {
        let seq = sequence[thread, default: 0]
        sequence[thread] = seq &+ 1
        try write(
            TraceEncoding.chunk(
                kind: ChunkKind.events.rawValue, baseTime: encoder.baseTime,
                thread: thread, seq: seq, payload: encoder.bytes))
        chunksWritten += 1
    }

    /// Writes raw bytes (used by tests that build damaged files).
    public func write(_ bytes: [UInt8]) throws(TraceWriteError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TraceWriteError(path: path, errno: errno)
            }
            done += n
        }
        bytesWritten += UInt64(bytes.count)
    }
}

/// A trace file could not be written.
public struct TraceWriteError: Error, CustomStringConvertible {
    public let path: String
    public let errno: Int32
    public var description: String { "\(path): \(String(cString: strerror(errno)))" }
}
