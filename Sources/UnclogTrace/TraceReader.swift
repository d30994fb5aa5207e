// The validating streaming reader: file header, chunk framing, CRC checks, resynchronisation
// after damage. Memory is bounded by the largest chunk (16 MiB), whatever the file size.

#if canImport(Glibc)
    import Glibc
#endif

/// The parsed 16-byte file header.
public struct FileHeader: Sendable, Hashable {
    public var versionMajor: UInt16
    public var versionMinor: UInt16
}

/// One intact chunk (its CRC matched).
public struct Chunk: Sendable {
    /// Byte offset of the chunk's first byte (its sync) in the file.
    public var offset: UInt64
    public var kind: UInt8
    public var flags: UInt8
    public var baseTime: UInt64
    public var thread: UInt32
    public var seq: UInt32
    public var payload: [UInt8]

    /// Byte offset in the file of the payload's first byte.
    public var payloadOffset: UInt64 { offset + UInt64(TraceFormat.chunkHeaderSize) }
    /// Header plus payload.
    public var size: Int { TraceFormat.chunkHeaderSize + payload.count }
}

/// A stretch of the file that could not be used, and why.
public struct TraceDamage: Sendable, Hashable, CustomStringConvertible {
    /// Where the damage starts (absolute byte offset in the file).
    public var offset: UInt64
    /// How many bytes of the file were not used because of it.
    public var bytesLost: UInt64
    /// What was wrong, in words.
    public var reason: String

    public init(offset: UInt64, bytesLost: UInt64, reason: String) {
        self.offset = offset
        self.bytesLost = bytesLost
        self.reason = reason
    }

    public var description: String { "byte \(offset): \(reason) (\(bytesLost) bytes lost)" }
}

/// A trace that cannot be read at all: the file cannot be opened, is not a trace, or has a
/// format version this reader does not know.
public struct TraceReadError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var offset: UInt64
    public var message: String
    public var description: String { "\(path): byte \(offset): \(message)" }
}

/// Reads a trace file chunk by chunk. Every damage it meets is recorded in `damage` and
/// skipped; `nextChunk()` only ever returns intact chunks.
public final class TraceReader {
    /// The name used in messages (the path, or a caller-chosen name for in-memory data).
    public let path: String
    public let header: FileHeader
    /// Damage met so far, in file order (at most `maxDamageRecords`; the rest are counted).
    public private(set) var damage: [TraceDamage] = []
    /// Damage records beyond `maxDamageRecords`, counted but not kept.
    public private(set) var damageNotRecorded = 0
    /// Total bytes lost to damage so far.
    public private(set) var bytesLost: UInt64 = 0
    /// Intact chunks returned so far.
    public private(set) var chunksRead = 0
    public let maxDamageRecords = 1000

    private var source: ByteSource

    /// Opens `path` and reads its header.
    public convenience init(path: String) throws(TraceReadError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TraceReadError(path: path, offset: 0, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw TraceReadError(path: path, offset: 0, message: "is a directory, not a trace file")
        }
        try self.init(source: ByteSource(fd: fd), name: path)
    }

    /// Reads a trace held in memory (tests, fuzzing); `name` appears in messages.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws(TraceReadError) {
        try self.init(source: ByteSource(bytes: bytes), name: name)
    }

    private init(source src: ByteSource, name: String) throws(TraceReadError) {
        self.path = name
        self.source = src
        do {
            self.header = try Self.readHeader(&source, name: name)
        } catch {
            // deinit does not run for a half-initialised object: close the file here.
            source.close()
            throw error
        }
    }

    deinit { source.close() }

    /// Checks and consumes the 16-byte file header.
    private static func readHeader(_ source: inout ByteSource, name: String) throws(TraceReadError) -> FileHeader {
        let available = source.fill(TraceFormat.fileHeaderSize)
        let magic = TraceFormat.magic
        let head = source.peek(min(available, TraceFormat.fileHeaderSize))
        if available == 0 {
            throw TraceReadError(path: name, offset: 0, message: "empty file, not a unclog trace")
        }
        let magicMatches = zip(head.prefix(8), magic).allSatisfy { $0 == $1 }
        if !magicMatches {
            throw TraceReadError(path: name, offset: 0, message: "not a unclog trace (bad magic number)")
        }
        if available < TraceFormat.fileHeaderSize {
            throw TraceReadError(
                path: name, offset: UInt64(available),
                message: "file truncated inside its 16-byte header")
        }
        let major = UInt16(head[8]) | UInt16(head[9]) << 8
        let minor = UInt16(head[10]) | UInt16(head[11]) << 8
        guard major == TraceFormat.versionMajor else {
            throw TraceReadError(
                path: name, offset: 8,
                message:
                    "unsupported trace format version \(major).\(minor) (this unclog reads version \(TraceFormat.versionMajor))")
        }
        source.consume(TraceFormat.fileHeaderSize)
        return FileHeader(versionMajor: major, versionMinor: minor)
    }

    /// Bytes of the file consumed so far (for progress reports).
    public var offset: UInt64 { source.offset }

    /// The file's size when known (files; nil for pipes).
    public var fileSize: UInt64? { source.size }

    /// Records damage found by a caller decoding an intact chunk (e.g. a malformed event),
    /// so all of a file's damage is reported in one place.
    public func report(_ d: TraceDamage) {
        bytesLost += d.bytesLost
        if damage.count < maxDamageRecords { damage.append(d) } else { damageNotRecorded += 1 }
    }

    /// The next intact chunk, or nil at the end of the file.
    public func nextChunk() -> Chunk? {
        while true {
            let start = source.offset
            let have = source.fill(TraceFormat.chunkHeaderSize)
            if have == 0 { return nil }
            if have < TraceFormat.chunkHeaderSize {
                let isSync = source.peek(min(have, 4)).elementsEqual(TraceFormat.chunkSync.prefix(min(have, 4)))
                report(
                    TraceDamage(
                        offset: start, bytesLost: UInt64(have),
                        reason: isSync
                            ? "file truncated inside a chunk header"
                            : "\(have) trailing bytes that are not a chunk"))
                source.consume(have)
                return nil
            }
            switch validateChunk() {
            case let .intact(chunk):
                chunksRead += 1
                return chunk
            case let .damaged(reason, truncated):
                // Look for the next intact chunk; everything before it is lost.
                source.consume(1)
                let found = resynchronise()
                let lost = source.offset - start
                if truncated && !found {
                    report(TraceDamage(offset: start, bytesLost: lost, reason: "file truncated inside a chunk (\(reason))"))
                    return nil
                }
                // A chunk running past the end with an intact chunk after it: its length is
                // damaged, the file is not truncated; the reason then says only what it claims.
                report(
                    TraceDamage(
                        offset: start, bytesLost: lost,
                        reason: found
                            ? "\(reason); resumed at the next intact chunk at byte \(source.offset)"
                            : "\(reason); no intact chunk after it"))
                if !found { return nil }
            }
        }
    }

    private enum Validation {
        case intact(Chunk)
        case damaged(String, truncated: Bool)
    }

    /// Checks the chunk starting at the current position; consumes it only when intact.
    private func validateChunk() -> Validation {
        let h = source.peek(TraceFormat.chunkHeaderSize)
        guard h[0] == 0xFF, h[1] == 0x55, h[2] == 0x43, h[3] == 0x4B else {
            return .damaged("no chunk starts here (bad sync bytes)", truncated: false)
        }
        let length = Int(le32(h, 4))
        guard length <= TraceFormat.maxChunkPayload else {
            return .damaged("chunk claims \(length) payload bytes, over the 16 MiB limit", truncated: false)
        }
        let total = TraceFormat.chunkHeaderSize + length
        let have = source.fill(total)
        guard have >= total else {
            return .damaged(
                "it claims \(length) payload bytes, the file holds \(have - TraceFormat.chunkHeaderSize) more",
                truncated: true)
        }
        let stored = le32(h, 8)
        let computed = source.withBytes(total) { CRC32.update(0, UnsafeRawBufferPointer(rebasing: $0[12...])) }
        guard stored == computed else {
            return .damaged("chunk checksum mismatch (stored \(hex(stored)), computed \(hex(computed)))", truncated: false)
        }
        let chunk = Chunk(
            offset: source.offset, kind: h[12], flags: h[13], baseTime: le64(h, 16),
            thread: le32(h, 24), seq: le32(h, 28),
            payload: source.withBytes(total) { Array($0[TraceFormat.chunkHeaderSize...]) })
        source.consume(total)
        return .intact(chunk)
    }

    /// Advances to the next offset holding an intact chunk; false (at end of file) if none.
    private func resynchronise() -> Bool {
        var ranges = RangeCRC(anchor: source.offset)
        while true {
            guard source.skipToSync() else { return false }
            if source.fill(TraceFormat.chunkHeaderSize) < TraceFormat.chunkHeaderSize {
                source.consume(source.fill(1))
                continue
            }
            let h = source.peek(TraceFormat.chunkHeaderSize)
            let length = Int(le32(h, 4))
            // Exactly the test of validateChunk (spec §2.2 "intact"): sync, length, CRC. Not
            // also requiring reserved == 0, or a chunk accepted in place would be skipped here.
            if length <= TraceFormat.maxChunkPayload {
                let total = TraceFormat.chunkHeaderSize + length
                if source.fill(total) >= total {
                    // Every sync met is checked, so syncs claiming long lengths would cost
                    // O(bytes × 16 MiB) computed one by one; long ranges come from prefix CRCs.
                    let start = source.offset
                    let crc =
                        (total > 256 ? ranges.crc(start + 12, start + UInt64(total), source) : nil)
                        ?? source.withBytes(total) { CRC32.update(0, UnsafeRawBufferPointer(rebasing: $0[12...])) }
                    if crc == le32(h, 8) { return true }
                }
            }
            source.consume(1)
        }
    }
}

@inline(__always) func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
    let i = b.startIndex + at
    return UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

@inline(__always) func le64(_ b: [UInt8], _ at: Int) -> UInt64 {
    UInt64(le32(b, at)) | UInt64(le32(b, at + 4)) << 32
}

func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}

/// CRCs of arbitrary ranges of the file, each in O(log n), from CRCs of the prefixes from an
/// anchor taken every 64 bytes: crc(s ..< e) = crc(a ..< e) ^ shift(crc(a ..< s), e - s).
/// Used while resynchronising, where each sync candidate needs the CRC of its own range.
struct RangeCRC {
    private var anchor: UInt64
    /// checkpoints[k] = crc(anchor ..< anchor + 64 k).
    private var checkpoints: [UInt32] = [0]
    private static let step: UInt64 = 64

    init(anchor: UInt64) { self.anchor = anchor }

    /// The CRC of the file's bytes [s, e), or nil if the window no longer holds what it needs.
    mutating func crc(_ s: UInt64, _ e: UInt64, _ source: ByteSource) -> UInt32? {
        // Far behind (memory stays bounded) or bytes gone from the window: re-anchor at s.
        if s < anchor || s - anchor > 64 << 20 { reset(s) }
        if let ps = prefix(s, source), let pe = prefix(e, source) { return pe ^ CRC32.shift(ps, bytes: e - s) }
        reset(s)
        if let ps = prefix(s, source), let pe = prefix(e, source) { return pe ^ CRC32.shift(ps, bytes: e - s) }
        return nil
    }

    private mutating func reset(_ a: UInt64) {
        anchor = a
        checkpoints = [0]
    }

    /// crc(anchor ..< x), extending the checkpoints as far as x.
    private mutating func prefix(_ x: UInt64, _ source: ByteSource) -> UInt32? {
        let k = Int((x - anchor) / Self.step)
        if checkpoints.count <= k {
            let from = anchor + UInt64(checkpoints.count - 1) * Self.step
            let last = checkpoints[checkpoints.count - 1]
            let added = source.withRange(from, anchor + UInt64(k) * Self.step) { raw -> [UInt32] in
                var out: [UInt32] = []
                out.reserveCapacity(raw.count / Int(Self.step))
                var c = last
                var i = 0
                while i < raw.count {
                    c = CRC32.update(c, UnsafeRawBufferPointer(rebasing: raw[i..<(i + Int(Self.step))]))
                    out.append(c)
                    i += Int(Self.step)
                }
                return out
            }
            guard let added else { return nil }
            checkpoints += added
        }
        let base = checkpoints[k]
        return source.withRange(anchor + UInt64(k) * Self.step, x) { CRC32.update(base, $0) }
    }
}

/// A forward-only window over a file descriptor or an in-memory array. `offset` is the file
/// offset of the window's first unconsumed byte.
struct ByteSource {
    private var buffer: [UInt8]
    private var start = 0  // index of the first unconsumed byte in `buffer`
    private var fd: Int32  // -1 for memory (or once closed)
    private var eof: Bool
    private(set) var offset: UInt64 = 0
    let size: UInt64?

    init(fd: Int32) {
        self.fd = fd
        self.buffer = []
        self.buffer.reserveCapacity(1 << 20)
        self.eof = false
        var st = stat()
        self.size = (fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG) ? UInt64(st.st_size) : nil
    }

    init(bytes: [UInt8]) {
        self.fd = -1
        self.buffer = bytes
        self.eof = true
        self.size = UInt64(bytes.count)
    }

    var available: Int { buffer.count - start }

    /// Makes at least `n` bytes available if the file has them; returns how many are.
    mutating func fill(_ n: Int) -> Int {
        if available >= n || eof { return available }
        if start > 0 && (start >= buffer.count / 2 || buffer.capacity - buffer.count < n) {
            buffer.removeFirst(start)
            start = 0
        }
        var chunkSize = max(n - available, 1 << 20)
        while available < n && !eof {
            let old = buffer.count
            buffer.append(contentsOf: [UInt8](repeating: 0, count: chunkSize))
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + old, chunkSize) }
            if got < 0 && errno == EINTR {
                buffer.removeLast(chunkSize)
                continue
            }
            if got <= 0 {
                // A read error is treated as the end of the file; what was read is kept.
                eof = true
                buffer.removeLast(chunkSize)
            } else {
                buffer.removeLast(chunkSize - got)
            }
            chunkSize = max(n - available, 1 << 20)
        }
        return available
    }

    /// A copy of the next `n` bytes, indexed from 0. (A slice of `buffer` would keep
    /// `buffer`'s indices, so `h[0]` would read the wrong byte or trap.)
    func peek(_ n: Int) -> [UInt8] { Array(buffer[start..<(start + n)]) }

    func withBytes<R>(_ n: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        buffer.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<(start + n)])) }
    }

    /// Calls `body` with the file's bytes [from, to) if the window still holds them all.
    func withRange<R>(_ from: UInt64, _ to: UInt64, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        let base = offset - UInt64(start)  // file offset of buffer[0]
        guard from >= base, to >= from, to - base <= UInt64(buffer.count) else { return nil }
        let i = Int(from - base), j = Int(to - base)
        return buffer.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[i..<j])) }
    }

    /// Closes the file descriptor (nothing for memory); the reader owns it from `init`.
    mutating func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    mutating func consume(_ n: Int) {
        start += n
        offset += UInt64(n)
    }

    /// Consumes bytes up to the next `FF 55 43 4B`; false (all consumed) at end of file.
    mutating func skipToSync() -> Bool {
        while true {
            if fill(4) < 4 {
                consume(available)
                return false
            }
            let found: Int? = buffer.withUnsafeBytes { raw -> Int? in
                var i = start
                let end = buffer.count - 3
                while i < end {
                    guard let p = memchr(raw.baseAddress! + i, 0xFF, end - i) else { return nil }
                    i = UnsafeRawPointer(raw.baseAddress!).distance(to: UnsafeRawPointer(p))
                    if raw[i + 1] == 0x55 && raw[i + 2] == 0x43 && raw[i + 3] == 0x4B { return i }
                    i += 1
                }
                return nil
            }
            if let i = found {
                consume(i - start)
                return true
            }
            // Keep the last 3 bytes: a sync may straddle the refill.
            consume(available - 3)
            if eof {
                consume(available)
                return false
            }
        }
    }
}
