// The file-descriptor path of TraceReader (what `unclog import` uses): it reads through a
// 1 MiB window that is refilled and compacted, so chunks, syncs and damage that straddle
// refills must give exactly what the in-memory reader gives for the same bytes.

import Foundation
import Testing

@testable import UnclogTrace

/// Reads `bytes` through a temporary file and `TraceReader(path:)`.
private func readFile(_ bytes: [UInt8]) throws -> ReadBack {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("unclog-test-\(UUID().uuidString).bin")
    try Data(bytes).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    let reader = try TraceReader(path: url.path)
    #expect(reader.fileSize == UInt64(bytes.count))
    var out = ReadBack()
    while let chunk = reader.nextChunk() {
        #expect(reader.offset == chunk.offset + UInt64(chunk.size))  // progress = bytes consumed
        var events: [TraceEvent] = []
        if chunk.kind == ChunkKind.events.rawValue, let d = EventDecoder.decode(chunk, { events.append($0) }) {
            reader.report(d)
        }
        out.chunks.append(chunk)
        out.events.append(events)
    }
    #expect(reader.offset == UInt64(bytes.count))
    out.damage = reader.damage
    out.bytesLost = reader.bytesLost
    return out
}

private func expectSame(_ file: ReadBack, _ memory: ReadBack, _ what: String) {
    #expect(file.chunks.count == memory.chunks.count, "\(what)")
    for (a, b) in zip(file.chunks, memory.chunks) {
        #expect(a.offset == b.offset && a.payload == b.payload && a.seq == b.seq && a.thread == b.thread, "\(what)")
    }
    #expect(file.events == memory.events, "\(what)")
    #expect(file.damage == memory.damage, "\(what)")
    #expect(file.bytesLost == memory.bytesLost, "\(what)")
}

@Suite("File reader")
struct FileReaderTests {
    /// About 3 MiB: a metadata chunk and 30 events chunks of ~100 KiB of random events.
    static func bigTrace(seed: UInt64) -> TraceAssembler {
        var r = SeededRandom(seed: seed)
        var a = TraceAssembler()
        a.metadata([MetadataEntry("pid", .uint(1))], anchor: 0)
        for k in 0..<30 {
            var events = randomEvents(&r, count: 60, base: UInt64(k) << 40)
            // Pad with a large skippable event so each chunk is ~100 KiB whatever was drawn.
            events.append(TraceEvent(time: events.last!.time, .skipped(code: 0x99, length: 90_000 + Int(r.below(20_000)))))
            a.events(thread: UInt32(1 + k % 3), baseTime: UInt64(k) << 40, events)
        }
        return a
    }

    @Test("an intact 3 MiB trace reads the same from a file as from memory")
    func intact() throws {
        let a = Self.bigTrace(seed: 1)
        let file = try readFile(a.bytes)
        expectSame(file, try readAll(a.bytes), "intact")
        #expect(file.damage.isEmpty && file.chunks.count == 31)
    }

    @Test("damage across window refills: long garbage, false syncs, torn chunks, truncation", arguments: 0..<6)
    func damaged(seed: Int) throws {
        var r = SeededRandom(seed: 0xD1F0 + UInt64(seed))
        let a = Self.bigTrace(seed: UInt64(seed))
        var bytes = a.bytes
        // Corrupt a few chunks (from the back so earlier offsets stay valid), insert garbage
        // of up to 2.5 MiB (more than a window) with and without false syncs.
        for c in a.chunks.reversed() where r.chance(25) {
            switch r.below(3) {
            case 0: bytes[c.offset + Int(r.below(UInt64(c.size)))] ^= 0x5A
            case 1:
                var garbage = [UInt8](repeating: 0, count: Int(r.below(2_500_000)))
                for _ in 0..<r.int(0...20) where !garbage.isEmpty {
                    let at = Int(r.below(UInt64(garbage.count)))
                    let fake = TraceFormat.chunkSync + [UInt8(r.below(256)), UInt8(r.below(256)), UInt8(r.below(2)), 0]
                    for (i, b) in fake.enumerated() where at + i < garbage.count { garbage[at + i] = b }
                }
                bytes.insert(contentsOf: garbage, at: c.offset)
            default:
                bytes.insert(contentsOf: TraceFormat.chunkSync, at: c.offset)  // a sync with no chunk
            }
        }
        if r.chance(50) { bytes.removeLast(Int(r.below(200_000))) }
        let memory = try readAll(bytes)
        expectSame(try readFile(bytes), memory, "seed \(seed)")
        // Nothing silently vanished: every byte is in a chunk or counted lost.
        let kept = memory.chunks.reduce(0) { $0 + $1.size }
        let decoderLost = memory.damage.filter { $0.reason.contains("rest of the chunk dropped") }.reduce(0) { $0 + $1.bytesLost }
        #expect(UInt64(kept) + memory.bytesLost - decoderLost == UInt64(bytes.count - 16))
    }

    @Test("a 16 MiB chunk (the limit) is read; one byte more is damage")
    func largestChunk() throws {
        // code + dt + 4-byte length + body = exactly 16 MiB.
        var enc = ChunkEncoder(baseTime: 0)
        enc.append(TraceEvent(time: 0, .skipped(code: 0x80, length: TraceFormat.maxChunkPayload - 6)))
        let payload = enc.bytes
        try #require(payload.count == TraceFormat.maxChunkPayload)
        var a = TraceAssembler()
        a.append(kind: 2, thread: 1, baseTime: 0, payload: payload)
        a.events(thread: 1, baseTime: 0, [TraceEvent(time: 9, .switchToHub)])
        let file = try readFile(a.bytes)
        #expect(file.damage.isEmpty && file.chunks.count == 2)
        #expect(file.chunks.first?.payload.count == TraceFormat.maxChunkPayload)
        #expect(file.events.first == [TraceEvent(time: 0, .skipped(code: 0x80, length: TraceFormat.maxChunkPayload - 6))])

        // The same chunk claiming (and holding) one byte more, with a correct CRC: over the
        // limit, so damage up to the next chunk, which is still read.
        var over = Array(a.bytes[a.chunks[0].offset..<a.chunks[0].end]) + [0x00]
        over[4] = 0x01; over[5] = 0x00; over[6] = 0x00; over[7] = 0x01  // 16 MiB + 1
        let crc = CRC32.checksum(Array(over[12...]))
        for i in 0..<4 { over[8 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        let bytes = Array(a.bytes[..<16]) + over + Array(a.bytes[a.chunks[1].offset...])
        let got = try readFile(bytes)
        #expect(got.chunks.count == 1 && got.chunks.first?.offset == UInt64(16 + over.count))
        #expect(spans(got.damage) == [[16, UInt64(over.count)]])
        #expect(got.damage.first?.reason.contains("over the 16 MiB limit") == true)
    }
}
