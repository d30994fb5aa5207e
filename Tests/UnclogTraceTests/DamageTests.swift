// Damage and recovery (spec §2.2): a small realistic recording cut at every byte, with every
// byte flipped, with garbage in the middle; malformed events inside intact chunks; unknown
// chunk kinds and skippable events; files that are not traces at all.

import Foundation
import Testing

@testable import UnclogTrace

extension TraceEvent {
    var isSwitch: Bool {
        switch kind {
        case .switchTo, .switchToHub: true
        default: false
        }
    }
}

/// A few hundred events: hub chunks of ~400 bytes, one stall with a watchdog chunk, metadata.
func smallRecording() -> EventletSimulation {
    EventletSimulation(.init(seed: 11, greenthreads: 6, runs: 90, chunkBytes: 400, stallsAt: [40]))
}

@Suite("Damage")
struct DamageTests {
    @Test("the small recording is realistic and reads back whole")
    func smallRecordingIsSane() throws {
        let sim = smallRecording()
        let b = sim.builder
        #expect((250...600).contains(sim.eventCount), "\(sim.eventCount) events")
        #expect(Set(b.chunks.map(\.thread)) == [0, EventletSimulation.hubTid, EventletSimulation.watchdogTid])
        #expect(b.chunks.count >= 6)
        let got = try readAll(b.bytes)
        #expect(got.damage.isEmpty)
        try #require(got.chunks.count == b.chunks.count)
        for (c, e) in zip(got.chunks, b.chunks) { #expect(same(c, e)) }
        #expect(got.metadata[0] == EventletSimulation.metadata)
        #expect(got.events.reduce(0) { $0 + $1.count } == sim.eventCount)
        // Writer rule of spec §4.1: every hub chunk that switches starts with Running.
        for (c, events) in zip(got.chunks, got.events) where c.thread == EventletSimulation.hubTid {
            guard events.contains(where: \.isSwitch) else { continue }
            guard case .running? = events.first?.kind else {
                Issue.record("chunk at \(c.offset) switches but does not start with Running")
                continue
            }
        }
    }

    @Test("cut at every byte: whole chunks kept, the torn one reported with exactly the bytes lost")
    func cutEverywhere() throws {
        let b = smallRecording().builder
        let file = b.bytes
        for cut in 0...file.count {
            let prefix = Array(file[..<cut])
            guard cut >= TraceFormat.fileHeaderSize else {
                #expect(throws: TraceReadError.self) { _ = try readAll(prefix) }
                continue
            }
            let got = try readAll(prefix)
            let whole = b.chunks.filter { $0.end <= cut }
            guard got.chunks.count == whole.count, zip(got.chunks, whole).allSatisfy({ same($0, $1) }) else {
                Issue.record("cut at \(cut): got \(got.chunks.count) chunks, expected \(whole.count)")
                continue
            }
            if let torn = b.chunks.first(where: { $0.offset < cut && cut < $0.end }) {
                #expect(spans(got.damage) == [[UInt64(torn.offset), UInt64(cut - torn.offset)]], "cut at \(cut)")
            } else {
                #expect(got.damage.isEmpty, "cut at \(cut) is on a chunk boundary")
            }
            let kept = whole.reduce(0) { $0 + $1.size }
            #expect(got.bytesLost == UInt64(cut - TraceFormat.fileHeaderSize - kept), "cut at \(cut)")
        }
    }

    @Test("the reasons say what happened", arguments: [40, 20])
    func truncationReasons(cutAfter: Int) throws {
        let b = smallRecording().builder
        let second = b.chunks[1]
        let got = try readAll(Array(b.bytes[..<(second.offset + cutAfter)]))
        let reason = try #require(got.damage.first?.reason)
        #expect(reason.contains("truncated"), "\(reason)")
    }

    @Test("a length running past the end of the file, with an intact chunk after it, is not called truncation")
    func damagedLengthIsNotTruncation() throws {
        let b = smallRecording().builder
        var file = b.bytes
        file[b.chunks[2].offset + 6] = 0x7F  // length += ~8 MB: past the end of this small file
        let got = try readAll(file)
        #expect(spans(got.damage) == [[UInt64(b.chunks[2].offset), UInt64(b.chunks[2].size)]])
        let reason = try #require(got.damage.first?.reason)
        #expect(!reason.contains("truncated") && reason.contains("resumed at the next intact chunk"), "\(reason)")
    }

    @Test("a flipped byte anywhere loses exactly the chunk holding it")
    func flipEverywhere() throws {
        let b = smallRecording().builder
        let file = b.bytes
        var r = SeededRandom(seed: 0xF11B)
        for position in 0..<file.count {
            // All bits, the low bit, and one random pattern.
            for mask in [UInt8(0xFF), 0x01, UInt8(1 + r.below(255))] {
                var damaged = file
                damaged[position] ^= mask
                if position < 10 {
                    // Magic and major version: not readable at all, with a reason.
                    do {
                        _ = try readAll(damaged)
                        Issue.record("flip at \(position) was accepted")
                    } catch {
                        #expect(error.message.contains(position < 8 ? "magic" : "unsupported trace format version"))
                    }
                    continue
                }
                let got = try readAll(damaged)
                guard let hit = b.chunks.first(where: { $0.offset <= position && position < $0.end }) else {
                    // Minor version and reserved header bytes are ignored.
                    #expect(got.damage.isEmpty && got.chunks.count == b.chunks.count, "flip at \(position)")
                    continue
                }
                let others = b.chunks.filter { $0.offset != hit.offset }
                let kept = got.chunks.count == others.count && zip(got.chunks, others).allSatisfy { same($0, $1) }
                #expect(kept, "flip at \(position) (chunk at \(hit.offset)): \(got.chunks.count) chunks")
                #expect(spans(got.damage) == [[UInt64(hit.offset), UInt64(hit.size)]], "flip at \(position) mask \(mask)")
            }
        }
    }

    @Test("garbage in the middle: resynchronise at the next intact chunk and report the offsets")
    func corruptionInTheMiddle() throws {
        let b = smallRecording().builder
        let c = b.chunks
        try #require(c.count >= 6)

        // Overwrite from inside chunk 2 to inside chunk 3: both lost, one stretch of damage.
        var file = b.bytes
        for i in (c[2].offset + 40)..<(c[3].offset + 10) { file[i] = 0xEE }
        var got = try readAll(file)
        #expect(spans(got.damage) == [[UInt64(c[2].offset), UInt64(c[2].size + c[3].size)]])
        #expect(
            got.chunks.map(\.offset)
                == c.filter { $0.offset != c[2].offset && $0.offset != c[3].offset }.map { UInt64($0.offset) })
        let reason = try #require(got.damage.first?.reason)
        #expect(
            reason.contains("checksum mismatch") && reason.contains("resumed at the next intact chunk at byte \(c[4].offset)"),
            "\(reason)")

        // Garbage inserted between chunks, including false syncs: one with a length past the
        // end of the file, one with a plausible length but a wrong CRC, one with a 2 GiB length.
        var garbage: [UInt8] = Array(repeating: 0x42, count: 17)
        garbage += TraceFormat.chunkSync + [0xFF, 0xFF, 0x00, 0x00] + Array(repeating: 0, count: 30)
        garbage += TraceFormat.chunkSync + [0x04, 0x00, 0x00, 0x00] + Array(repeating: 7, count: 40)
        garbage += TraceFormat.chunkSync + [0x00, 0x00, 0x00, 0x80] + Array(repeating: 9, count: 24)
        garbage += [0xFF, 0x55, 0x43]  // a sync cut short just before a real one
        file = Array(b.bytes[..<c[3].offset]) + garbage + Array(b.bytes[c[3].offset...])
        got = try readAll(file)
        #expect(spans(got.damage) == [[UInt64(c[3].offset), UInt64(garbage.count)]])
        #expect(got.chunks.count == c.count)
        #expect(got.chunks.map(\.offset) == c.map { UInt64($0.offset + ($0.offset >= c[3].offset ? garbage.count : 0)) })

        // Two separate stretches are reported separately, in file order.
        file = b.bytes
        file[c[1].offset + 35] ^= 0x10
        file[c[4].offset] = 0
        got = try readAll(file)
        #expect(spans(got.damage) == [[UInt64(c[1].offset), UInt64(c[1].size)], [UInt64(c[4].offset), UInt64(c[4].size)]])
        #expect(got.bytesLost == UInt64(c[1].size + c[4].size))
    }

    @Test("resynchronising over 1 MB of false syncs claiming long lengths takes linear time")
    func adversarialSyncs() throws {
        // Every 8 bytes a sync claiming 500 000 payload bytes that the file holds: checked one
        // by one, that was 125 000 CRCs of 500 KB (25 s in release); prefix CRCs make it linear.
        var b = TraceAssembler()
        var unit = TraceFormat.chunkSync
        unit.appendLE(UInt32(500_000))
        for _ in 0..<125_000 { b.raw(unit) }
        let garbage = b.bytes.count - 16
        b.events(thread: 1, baseTime: 0, [TraceEvent(time: 3, .switchToHub)])
        let clock = ContinuousClock()
        let started = clock.now
        let got = try readAll(b.bytes)
        let elapsed = clock.now - started
        #expect(spans(got.damage) == [[16, UInt64(garbage)]])
        #expect(got.events.last == [TraceEvent(time: 3, .switchToHub)])
        #expect(elapsed < .seconds(10), "\(elapsed)")  // generous: debug build on a busy machine
    }

    @Test("trailing bytes that are not a chunk are reported", arguments: [1, 5, 31, 32, 33, 500])
    func trailingGarbage(count: Int) throws {
        let b = smallRecording().builder
        let got = try readAll(b.bytes + Array(repeating: 0x20, count: count))
        #expect(got.chunks.count == b.chunks.count)
        #expect(spans(got.damage) == [[UInt64(b.bytes.count), UInt64(count)]])
    }

    @Test("the first chunk damaged: later chunks still read, metadata unknown")
    func firstChunkDamaged() throws {
        let b = smallRecording().builder
        var file = b.bytes
        file[b.chunks[0].payloadOffset + 3] ^= 0x55
        let got = try readAll(file)
        #expect(got.chunks.count == b.chunks.count - 1)
        #expect(got.chunks.first?.kind == ChunkKind.events.rawValue)
        #expect(spans(got.damage) == [[16, UInt64(b.chunks[0].size)]])
    }

    // MARK: Malformed events inside intact chunks

    /// Valid events, then `bad` bytes, then more valid events, in one chunk with a good CRC,
    /// followed by a normal chunk. Decoding must keep the first events, report the damage at
    /// the bad event's absolute offset with the rest of the payload lost, and read on.
    func checkMalformed(_ bad: [UInt8], _ reasonPart: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = [
            TraceEvent(time: 100, .running(gt: 2, hub: 1)),
            TraceEvent(time: 150, .switchTo(to: 3, reason: .io, readyDelta: 20)),
            TraceEvent(time: 190, .switchToHub),
        ]
        var enc = ChunkEncoder(baseTime: 90)
        for e in before { enc.append(e) }
        var after = ChunkEncoder(baseTime: 0)
        after.append(TraceEvent(time: 5, .greenthreadExit(gt: 3)))
        let payload = enc.bytes + bad + after.bytes
        var b = TraceAssembler()
        let chunk = b.append(kind: ChunkKind.events.rawValue, thread: 7, baseTime: 90, payload: payload)
        b.events(thread: 7, baseTime: 1000, [TraceEvent(time: 1000, .greenthreadExit(gt: 9))])

        let got = try readAll(b.bytes)
        try #require(got.chunks.count == 2, sourceLocation: sourceLocation)
        #expect(got.events[0] == before, sourceLocation: sourceLocation)
        #expect(got.events[1] == [TraceEvent(time: 1000, .greenthreadExit(gt: 9))], sourceLocation: sourceLocation)
        #expect(
            spans(got.damage) == [[UInt64(chunk.payloadOffset + enc.bytes.count), UInt64(payload.count - enc.bytes.count)]],
            sourceLocation: sourceLocation)
        let reason = got.damage.first?.reason ?? ""
        #expect(
            reason.contains(reasonPart) && reason.contains("chunk at byte \(chunk.offset)"), "\(reason)",
            sourceLocation: sourceLocation)
    }

    static func varint(_ v: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.appendUvarint(v)
        return out
    }

    @Test("unknown event code below 0x80 is damage")
    func unknownCode() throws {
        try checkMalformed([0x0A, 0x00, 0x01], "event type 0xa unknown event type")
        try checkMalformed([0x00, 0x00], "unknown event type")
        try checkMalformed([0x16, 0x00, 0x01, 0x01], "unknown event type")
        try checkMalformed([0x7E, 0x00], "unknown event type")
    }

    @Test("truncated and overlong varints are damage")
    func badVarints() throws {
        try checkMalformed([0x08] + Array(repeating: 0x80, count: 10) + [0x00], "malformed varint")  // 11-byte dt
        try checkMalformed([0x21, 0x00] + Array(repeating: 0xFF, count: 9) + [0x02], "malformed varint")  // 10th byte 2
        try checkMalformed([0x10] + Self.varint(.max), "time overflows")
    }

    @Test("a varint running off the end of the payload is damage, not a read past it")
    func varintAtPayloadEnd() throws {
        var enc = ChunkEncoder(baseTime: 0)
        enc.append(TraceEvent(time: 1, .switchToHub))
        var b = TraceAssembler()
        let chunk = b.append(kind: 2, thread: 1, baseTime: 0, payload: enc.bytes + [0x12, 0x05, 0x83])
        let got = try readAll(b.bytes)
        #expect(got.events[0] == [TraceEvent(time: 1, .switchToHub)])
        #expect(spans(got.damage) == [[UInt64(chunk.payloadOffset + enc.bytes.count), 3]])
        #expect(got.damage.first?.reason.contains("runs past the end of its chunk") == true)
    }

    @Test("ids above 2^32-1 are damage")
    func idOutOfRange() throws {
        try checkMalformed([0x08, 0x00] + Self.varint(1 << 32), "id 4294967296 out of range")
        try checkMalformed([0x12, 0x00] + Self.varint(UInt64.max) + [0x00], "out of range")
        try checkMalformed([0x04, 0x00, 0x01, 0x02, 0x05] + Self.varint(1 << 40), "out of range")  // a frame id
    }

    @Test("strings over 65 536 bytes, stacks over 1024 frames, build-ids over 64 bytes are damage")
    func limits() throws {
        try checkMalformed(
            [0x01, 0x00, 0x01] + Self.varint(65_537) + Array(repeating: 0x61, count: 65_537),
            "string of 65537 bytes, over the 65536-byte limit")
        try checkMalformed(
            [0x04, 0x00, 0x01] + Self.varint(1025) + Array(repeating: 0x01, count: 1025),
            "stack of 1025 frames, over the 1024-frame limit")
        try checkMalformed(
            [0x05, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00] + Self.varint(65) + Array(repeating: 0xAB, count: 65),
            "build-id of 65 bytes")
        // Field past the end of the payload: a string claiming more bytes than remain.
        try checkMalformed([0x01, 0x00, 0x01, 0x7F, 0x61], "runs past the end")
    }

    @Test("a skippable event whose length runs past the payload is damage")
    func skippableTooLong() throws {
        try checkMalformed([0x90, 0x00] + Self.varint(10_000), "runs past the end")
        try checkMalformed([0xFF, 0x00] + Self.varint(.max), "runs past the end")
    }

    @Test("skippable events (0x80–0xFF) are skipped and decoding goes on")
    func skippable() throws {
        var enc = ChunkEncoder(baseTime: 1000)
        enc.append(TraceEvent(time: 1001, .switchToHub))
        var payload = enc.bytes
        payload += [0x80, 0x02, 0x03, 0x01, 0x10, 0x7F]  // a body that looks like events: not parsed
        payload += [0xFF, 0x00, 0x00]  // empty body
        payload += [0xC3, 0x00, 0x81, 0x01] + Array(repeating: 0xFF, count: 129)  // 2-byte length
        payload += [0x08, 0x04, 0x09]  // GreenthreadExit(9) after them, dt 4
        var b = TraceAssembler()
        b.append(kind: 2, thread: 1, baseTime: 1000, payload: payload)
        let got = try readAll(b.bytes)
        #expect(got.damage.isEmpty)
        #expect(
            got.events[0] == [
                TraceEvent(time: 1001, .switchToHub),
                TraceEvent(time: 1003, .skipped(code: 0x80, length: 3)),
                TraceEvent(time: 1003, .skipped(code: 0xFF, length: 0)),
                TraceEvent(time: 1003, .skipped(code: 0xC3, length: 129)),
                TraceEvent(time: 1007, .greenthreadExit(gt: 9)),
            ])
    }

    @Test("an unknown chunk kind is returned intact for the caller to skip")
    func unknownChunkKind() throws {
        var b = TraceAssembler()
        b.metadata([MetadataEntry("pid", .uint(1))], anchor: 5)
        b.append(kind: 9, thread: 3, baseTime: 77, payload: [0xDE, 0xAD, 0xBE, 0xEF])
        b.append(kind: 0, thread: 3, baseTime: 77, payload: [])
        b.events(thread: 3, baseTime: 80, [TraceEvent(time: 81, .greenthreadExit(gt: 4))])
        let got = try readAll(b.bytes)
        #expect(got.damage.isEmpty)
        #expect(got.chunks.map(\.kind) == [1, 9, 0, 2])
        #expect(got.chunks[1].payload == [0xDE, 0xAD, 0xBE, 0xEF] && got.chunks[1].seq == 0 && got.chunks[2].seq == 1)
        #expect(got.events[3] == [TraceEvent(time: 81, .greenthreadExit(gt: 4))])
    }

    @Test("chunk flags and reserved bytes are ignored, in place and when resynchronising")
    func reservedBytesIgnored() throws {
        var b = TraceAssembler()
        b.metadata([], anchor: 0)
        var odd = TraceEncoding.chunk(kind: 2, baseTime: 0, thread: 1, seq: 0, payload: [0x10, 0x01], flags: 0xFF)
        odd[14] = 0xAB; odd[15] = 0xCD  // reserved, non-zero: recompute the CRC that covers them
        let crc = CRC32.checksum(Array(odd[12...]))
        for i in 0..<4 { odd[8 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        let file = b.bytes + odd + [0x00, 0x01, 0x02] + odd  // the second one is found by resync
        let got = try readAll(file)
        #expect(got.chunks.count == 3)
        #expect(got.events[1] == [TraceEvent(time: 1, .switchToHub)] && got.events[2] == got.events[1])
        #expect(spans(got.damage) == [[UInt64(b.bytes.count + odd.count), 3]])
    }

    @Test("malformed metadata: earlier entries kept, damage at the bad entry")
    func malformedMetadata() throws {
        var good = TraceEncoding.metadataPayload([MetadataEntry("pid", .uint(12)), MetadataEntry("host", .string("h"))])
        good[0] = 3  // claims a third entry…
        let third: [UInt8] = [0x01, 0x6B, 0x07, 0x00]  // key "k", value type 7: unknown
        var b = TraceAssembler()
        let c = b.append(kind: 1, thread: 0, baseTime: 0, payload: good + third)
        b.events(thread: 1, baseTime: 0, [TraceEvent(time: 0, .switchToHub)])
        var got = try readAll(b.bytes)
        #expect(got.metadata[0] == [MetadataEntry("pid", .uint(12)), MetadataEntry("host", .string("h"))])
        #expect(spans(got.damage) == [[UInt64(c.payloadOffset + good.count), UInt64(third.count)]])
        #expect(got.damage.first?.reason.contains("unknown metadata value type 7") == true)
        #expect(got.chunks.count == 2)

        // A count one too high, with the payload ending right after the last entry: no byte
        // is lost, but the chunk is malformed and reported (found by the fuzzer).
        var b1 = TraceAssembler()
        let c1 = b1.append(kind: 1, thread: 0, baseTime: 0, payload: [0x02, 0x01, 0x61, 0x00, 0x05])
        got = try readAll(b1.bytes)
        #expect(got.metadata[0] == [MetadataEntry("a", .uint(5))])
        #expect(spans(got.damage) == [[UInt64(c1.end), 0]])
        #expect(got.damage.first?.reason.contains("announces more entries than the 1 it holds") == true)

        // Too many entries, and entries that run out of payload.
        let cases: [([UInt8], String)] = [
            (Self.varint(4097), "over the limit of 4096"), ([0x02, 0x01, 0x61, 0x00], "runs past the end"),
            ([0x01, 0x01, 0x61, 0x02] + Self.varint(1000) + [0x00], "runs past the end"),
        ]
        for (payload, part) in cases {
            var b2 = TraceAssembler()
            b2.append(kind: 1, thread: 0, baseTime: 0, payload: payload)
            got = try readAll(b2.bytes)
            #expect(got.chunks.count == 1)
            #expect(got.damage.first?.reason.contains(part) == true, "\(got.damage)")
            #expect(got.bytesLost > 0)
        }
    }

    // MARK: Files that are not traces

    @Test("not a trace: a clear error, never a crash")
    func unreadableFiles() {
        func message(_ bytes: [UInt8]) -> String? {
            do { _ = try TraceReader(bytes: bytes, name: "x.bin"); return nil } catch { return error.description }
        }
        #expect(message([]) == "x.bin: byte 0: empty file, not a unclog trace")
        #expect(
            message(Array("PK\u{3}\u{4} a zip file, not a trace".utf8)) == "x.bin: byte 0: not a unclog trace (bad magic number)")
        #expect(message([0x89, 0x55, 0x4E]) == "x.bin: byte 3: file truncated inside its 16-byte header")
        #expect(
            message(Array(TraceEncoding.fileHeader().prefix(15))) == "x.bin: byte 15: file truncated inside its 16-byte header")
        #expect(
            message(TraceEncoding.fileHeader(versionMajor: 2, versionMinor: 5))
                == "x.bin: byte 8: unsupported trace format version 2.5 (this unclog reads version 1)")
        #expect(message(TraceEncoding.fileHeader(versionMajor: 0)) != nil)
        // A header alone is an empty but valid trace; any minor version is accepted.
        #expect(message(TraceEncoding.fileHeader(versionMinor: 999)) == nil)
    }

    @Test("file paths: missing file and directory are clear errors")
    func unreadablePaths() {
        #expect(throws: TraceReadError.self) { _ = try TraceReader(path: "/nonexistent/unclog/trace.bin") }
        do {
            _ = try TraceReader(path: "/tmp")
            Issue.record("a directory was accepted")
        } catch {
            #expect(error.message.contains("directory"))
        }
    }
}
