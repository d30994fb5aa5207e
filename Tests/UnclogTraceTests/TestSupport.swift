// Shared helpers for the trace-format tests: a seeded PRNG whose output never changes across
// Swift versions (vectors depend on it), an in-memory trace builder that remembers where each
// chunk landed, and a reader loop that decodes everything the way the importer does.

import UnclogTestSupport

@testable import UnclogTrace

/// SplitMix64. Deliberately not `random(in:using:)`: the standard library may change how it
/// maps generator output to ranges, and the conformance vectors must stay byte-identical.
struct SeededRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform-enough in 0..<n (modulo bias is irrelevant for tests).
    mutating func below(_ n: UInt64) -> UInt64 { n == 0 ? 0 : next() % n }
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(below(UInt64(range.upperBound - range.lowerBound) + 1))
    }
    mutating func chance(_ percent: UInt64) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[Int(below(UInt64(items.count)))] }

    /// A value that favours the edges varint encodings care about: 0, small, 7-bit
    /// boundaries, and the top of the range.
    mutating func edgy(max: UInt64) -> UInt64 {
        switch below(6) {
        case 0: return 0
        case 1: return below(min(max, 300) + 1)
        case 2:
            let shift = below(64)
            let b = UInt64(1) << shift
            let v = chance(50) ? b : b &- 1
            return min(v, max)
        case 3: return max - below(min(max, 3) + 1)
        default: return max == .max ? next() : below(max + 1)
        }
    }

    mutating func id() -> UInt32 { UInt32(edgy(max: UInt64(UInt32.max))) }

    /// A string mixing ASCII, JSON-hostile characters and multi-byte scalars.
    mutating func string(maxScalars: Int = 24) -> String {
        let pool: [Unicode.Scalar] = [
            "a", "z", "Q", "0", " ", "_", "/", ".", "\"", "\\", "\n", "\t", "\u{0}", "\u{1F}", "\u{7F}",
            "é", "ß", "ø", "Ж", "λ", "日", "本", "語", "€", "\u{FFFD}", "\u{FEFF}", "😀", "🚀", "\u{10FFFF}",
        ]
        var s = String.UnicodeScalarView()
        for _ in 0..<int(0...maxScalars) { s.append(pick(pool)) }
        return String(s)
    }
}

/// Where a chunk went in a built trace and what it holds.
struct BuiltChunk {
    var offset: Int
    var kind: UInt8
    var thread: UInt32
    var seq: UInt32
    var baseTime: UInt64
    var payload: [UInt8]
    /// The events the payload encodes (events chunks built from events).
    var events: [TraceEvent] = []
    /// The entries the payload encodes (metadata chunks).
    var metadata: [MetadataEntry] = []

    var size: Int { TraceFormat.chunkHeaderSize + payload.count }
    var end: Int { offset + size }
    var payloadOffset: Int { offset + TraceFormat.chunkHeaderSize }
}

/// Assembles a trace in memory with the reference encoder, one chunk at a time.
struct TraceAssembler {
    private(set) var bytes: [UInt8]
    private(set) var chunks: [BuiltChunk] = []
    private var seqs: [UInt32: UInt32] = [:]

    init(header: [UInt8] = TraceEncoding.fileHeader()) { bytes = header }

    mutating func metadata(_ entries: [MetadataEntry], anchor: UInt64) {
        var c = append(
            kind: ChunkKind.metadata.rawValue, thread: 0, baseTime: anchor,
            payload: TraceEncoding.metadataPayload(entries))
        c.metadata = entries
        chunks[chunks.count - 1] = c
    }

    /// An events chunk of `thread` holding `events`, encoded by `ChunkEncoder`.
    @discardableResult
    mutating func events(thread: UInt32, baseTime: UInt64, _ events: [TraceEvent]) -> BuiltChunk {
        var enc = ChunkEncoder(baseTime: baseTime, capacity: 256)
        for e in events { enc.append(e) }
        var c = append(kind: ChunkKind.events.rawValue, thread: thread, baseTime: baseTime, payload: enc.bytes)
        c.events = events
        chunks[chunks.count - 1] = c
        return c
    }

    /// Any chunk with a correct CRC; `seq` defaults to the thread's next number.
    @discardableResult
    mutating func append(
        kind: UInt8, thread: UInt32, baseTime: UInt64, payload: [UInt8],
        seq: UInt32? = nil
    ) -> BuiltChunk {
        let s = seq ?? seqs[thread, default: 0]
        seqs[thread] = s &+ 1
        let c = BuiltChunk(offset: bytes.count, kind: kind, thread: thread, seq: s, baseTime: baseTime, payload: payload)
        bytes += TraceEncoding.chunk(kind: kind, baseTime: baseTime, thread: thread, seq: s, payload: payload)
        chunks.append(c)
        return c
    }

    /// Bytes that are not a chunk (garbage between chunks, a torn write).
    mutating func raw(_ b: [UInt8]) { bytes += b }
}

/// Everything a reader got out of a trace.
struct ReadBack {
    var chunks: [Chunk] = []
    /// Per chunk: decoded events (events chunks), else empty.
    var events: [[TraceEvent]] = []
    /// Per chunk: decoded metadata (metadata chunks), else empty.
    var metadata: [[MetadataEntry]] = []
    var damage: [TraceDamage] = []
    var bytesLost: UInt64 = 0
}

/// Reads `bytes` as the importer does: every chunk, every event and metadata entry, decoder
/// damage reported back into the reader so the damage list is complete and in file order.
func readAll(_ bytes: [UInt8]) throws(TraceReadError) -> ReadBack {
    let reader = try TraceReader(bytes: bytes, name: "test.bin")
    var out = ReadBack()
    while let chunk = reader.nextChunk() {
        var events: [TraceEvent] = []
        var metadata: [MetadataEntry] = []
        switch chunk.kind {
        case ChunkKind.events.rawValue:
            if let d = EventDecoder.decode(chunk, { events.append($0) }) { reader.report(d) }
        case ChunkKind.metadata.rawValue:
            let (entries, d) = EventDecoder.decodeMetadata(chunk)
            metadata = entries
            if let d { reader.report(d) }
        default:
            break
        }
        out.chunks.append(chunk)
        out.events.append(events)
        out.metadata.append(metadata)
    }
    out.damage = reader.damage
    out.bytesLost = reader.bytesLost
    return out
}

/// True when a read chunk is byte-for-byte the chunk that was built.
func same(_ read: Chunk, _ built: BuiltChunk) -> Bool {
    read.offset == UInt64(built.offset) && read.kind == built.kind && read.thread == built.thread
        && read.seq == built.seq && read.baseTime == built.baseTime && read.payload == built.payload
}

/// The damage list as (offset, bytes lost) pairs, for readable expectations.
func spans(_ d: [TraceDamage]) -> [[UInt64]] { d.map { [$0.offset, $0.bytesLost] } }
