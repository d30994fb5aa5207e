// Property tests: seeded random events of every kind, encoded by ChunkEncoder into chunks and
// read back by TraceReader + EventDecoder, must come back equal; likewise metadata.

import Testing

@testable import UnclogTrace

/// Every `TraceEvent.Kind` case; `randomKind(_:case:)` builds one of each index.
let kindCaseCount = 20

/// A random event of kind number `k` (0 ..< kindCaseCount) with edge-biased fields.
func randomKind(_ r: inout SeededRandom, case k: Int) -> TraceEvent.Kind {
    switch k {
    case 0: return .string(id: r.id(), value: r.string())
    case 1:
        return .frame(
            id: r.id(), flags: FrameFlags(rawValue: r.edgy(max: .max)), function: r.id(), file: r.id(),
            line: r.edgy(max: .max))
    case 2:
        return .nativeFrame(
            id: r.id(), flags: FrameFlags(rawValue: r.edgy(max: 7)), image: r.id(),
            address: r.edgy(max: .max))
    case 3:
        let n = r.chance(3) ? TraceFormat.maxStackDepth : r.int(0...40)
        return .stack(id: r.id(), frames: (0..<n).map { _ in r.id() })
    case 4:
        let n = r.chance(10) ? TraceFormat.maxBuildIDBytes : r.int(0...24)
        return .image(
            id: r.id(), path: r.id(), loadBias: r.edgy(max: .max), start: r.edgy(max: .max),
            end: r.edgy(max: .max), buildID: (0..<n).map { _ in UInt8(truncatingIfNeeded: r.next()) })
    case 5: return .thread(tid: r.id(), name: r.id())
    case 6: return .greenthreadCreate(gt: r.id(), name: r.id(), spawnStack: r.id(), parent: r.id())
    case 7: return .greenthreadExit(gt: r.id())
    case 8: return .running(gt: r.id(), hub: r.id())
    case 9: return .switchToHub
    case 10: return .switchTo(to: r.id(), reason: r.pick(SwitchReason.allCases), readyDelta: r.edgy(max: .max))
    // UInt64.max cannot be encoded as "timeout + 1": see `ioWaitBeginMaxTimeout`.
    case 11: return .ioWaitBegin(timeout: r.chance(30) ? nil : r.edgy(max: .max - 1))
    case 12: return .ioWaitEnd(ready: r.edgy(max: .max))
    case 13: return .stallBegin(tid: r.id(), gt: r.id(), sinceDelta: r.edgy(max: .max))
    case 14: return .stallSample(tid: r.id(), stack: r.id(), state: r.edgy(max: .max))
    case 15: return .stallEnd(gt: r.id(), duration: r.edgy(max: .max), stack: r.id())
    case 16: return .dropped(reason: r.edgy(max: .max), count: r.edgy(max: .max))
    case 17: return .end(chunks: r.edgy(max: .max), events: r.edgy(max: .max))
    case 18: return .skipped(code: UInt8(0x80 + r.below(0x80)), length: r.chance(5) ? 300 : r.int(0...20))
    default: return .switchTo(to: r.id(), reason: .io, readyDelta: r.below(20_000))
    }
}

/// The case of a kind, by an exhaustive switch: a new `TraceEvent.Kind` case stops this file
/// compiling until the generator above (and the coverage test below) know about it.
func caseNumber(_ k: TraceEvent.Kind) -> Int {
    switch k {
    case .string: 0
    case .frame: 1
    case .nativeFrame: 2
    case .stack: 3
    case .image: 4
    case .thread: 5
    case .greenthreadCreate: 6
    case .greenthreadExit: 7
    case .running: 8
    case .switchToHub: 9
    case .switchTo: 10
    case .ioWaitBegin: 11
    case .ioWaitEnd: 12
    case .stallBegin: 13
    case .stallSample: 14
    case .stallEnd: 15
    case .dropped: 16
    case .end: 17
    case .skipped: 18
    }
}

/// A random sequence of `count` events with non-decreasing times from `base`, covering every kind.
func randomEvents(_ r: inout SeededRandom, count: Int, base: UInt64) -> [TraceEvent] {
    var t = base
    var out: [TraceEvent] = []
    for i in 0..<count {
        // Deltas of 0, small, and large (but never overflowing: bases stay below 2^62).
        switch r.below(4) {
        case 0: break
        case 1: t += r.below(128)
        case 2: t += r.below(1 << 21)
        default: t += r.below(1 << 40)
        }
        // The first kindCaseCount events walk every case so each run covers them all.
        let k = i < kindCaseCount ? i : Int(r.below(UInt64(kindCaseCount)))
        out.append(TraceEvent(time: t, randomKind(&r, case: k)))
    }
    return out
}

@Suite("Round trip")
struct RoundTripTests {
    @Test("random events of every kind survive ChunkEncoder → TraceReader → EventDecoder", arguments: 0..<40)
    func events(seed: Int) throws {
        var r = SeededRandom(seed: 0x5EED_0000 + UInt64(seed))
        var b = TraceAssembler()
        var expected: [[TraceEvent]] = []
        let threads: [UInt32] = [1, UInt32.max, r.id() | 1]
        for _ in 0..<r.int(1...8) {
            let base = r.below(1 << 62)
            let events = randomEvents(&r, count: r.int(0...250), base: base + r.below(1000))
            b.events(thread: r.pick(threads), baseTime: base, events)
            expected.append(events)
        }
        let got = try readAll(b.bytes)
        #expect(got.damage.isEmpty, "\(got.damage)")
        #expect(got.bytesLost == 0)
        try #require(got.chunks.count == b.chunks.count)
        for (i, chunk) in got.chunks.enumerated() {
            #expect(same(chunk, b.chunks[i]))
            #expect(got.events[i].count == expected[i].count)
            for (j, (a, e)) in zip(got.events[i], expected[i]).enumerated() where a != e {
                Issue.record("seed \(seed) chunk \(i) event \(j): got \(a), expected \(e)")
                break
            }
        }
    }

    @Test("the generator covers every kind and every switch reason")
    func generatorCoverage() {
        var r = SeededRandom(seed: 1)
        let events = randomEvents(&r, count: 400, base: 0)
        #expect(Set(events.map { caseNumber($0.kind) }) == Set(0..<19))
        let reasons = Set(
            events.compactMap { e -> SwitchReason? in
                if case let .switchTo(_, reason, _) = e.kind { reason } else { nil }
            })
        #expect(reasons == Set(SwitchReason.allCases))
    }

    @Test("metadata of every value type round-trips, unknown keys included", arguments: 0..<10)
    func metadata(seed: Int) throws {
        var r = SeededRandom(seed: 0x3E7A + UInt64(seed))
        var entries: [MetadataEntry] = [
            MetadataEntry("clock", .string("CLOCK_MONOTONIC")),
            MetadataEntry("argv", .list(["python3", "-m", "app", "--naïve=☃"])),
            MetadataEntry("pid", .uint(.max)),
        ]
        for _ in 0..<r.int(0...30) {
            let key = r.string(maxScalars: 12)
            switch r.below(3) {
            case 0: entries.append(MetadataEntry(key, .uint(r.edgy(max: .max))))
            case 1: entries.append(MetadataEntry(key, .string(r.string())))
            default: entries.append(MetadataEntry(key, .list((0..<r.int(0...5)).map { _ in r.string() })))
            }
        }
        var b = TraceAssembler()
        b.metadata(entries, anchor: r.next())
        b.metadata([], anchor: 0)
        let got = try readAll(b.bytes)
        #expect(got.damage.isEmpty)
        try #require(got.chunks.count == 2)
        #expect(got.metadata[0] == entries)
        #expect(got.metadata[1].isEmpty)
        #expect(got.chunks[0].kind == ChunkKind.metadata.rawValue && got.chunks[0].thread == 0)
    }

    @Test("a string of exactly 65 536 bytes round-trips; a longer one is truncated on a scalar boundary")
    func stringLimit() throws {
        let exact = String(repeating: "x", count: TraceFormat.maxStringBytes)
        // 21 845 three-byte scalars = 65 535 bytes, then a 4-byte scalar that does not fit.
        let over = String(repeating: "日", count: 21_845) + "🚀"
        var b = TraceAssembler()
        b.events(
            thread: 1, baseTime: 0,
            [
                TraceEvent(time: 0, .string(id: 1, value: exact)),
                TraceEvent(time: 0, .string(id: 2, value: over)),
            ])
        let got = try readAll(b.bytes)
        #expect(got.damage.isEmpty)
        #expect(got.events[0].first == TraceEvent(time: 0, .string(id: 1, value: exact)))
        // Writers truncate (spec §6); cutting inside the emoji would decode as U+FFFD.
        #expect(got.events[0].last == TraceEvent(time: 0, .string(id: 2, value: String(repeating: "日", count: 21_845))))
    }

    @Test("a stack deeper than 1024 frames keeps the innermost 1024")
    func stackLimit() throws {
        let frames = (1...1500).map { UInt32($0) }
        var b = TraceAssembler()
        b.events(thread: 1, baseTime: 0, [TraceEvent(time: 5, .stack(id: 9, frames: frames))])
        let got = try readAll(b.bytes)
        #expect(got.damage.isEmpty)
        #expect(got.events[0] == [TraceEvent(time: 5, .stack(id: 9, frames: Array(frames.prefix(1024))))])
    }

    @Test("a requested timeout of UInt64.max ns is written as an unbounded wait")
    func ioWaitBeginMaxTimeout() throws {
        // The field is timeout + 1, so the one value it cannot carry becomes "no timeout":
        // the nearest meaning, documented here so a change is deliberate.
        var b = TraceAssembler()
        b.events(
            thread: 1, baseTime: 0,
            [
                TraceEvent(time: 0, .ioWaitBegin(timeout: .max)),
                TraceEvent(time: 0, .ioWaitBegin(timeout: 0)),
                TraceEvent(time: 0, .ioWaitBegin(timeout: nil)),
            ])
        let got = try readAll(b.bytes)
        #expect(got.events[0].map(\.kind) == [.ioWaitBegin(timeout: nil), .ioWaitBegin(timeout: 0), .ioWaitBegin(timeout: nil)])
    }

    @Test("times earlier than the previous event are clamped, never wrapped")
    func nonMonotonicInput() throws {
        var enc = ChunkEncoder(baseTime: 100)
        enc.append(TraceEvent(time: 50, .switchToHub))  // before base: dt 0
        enc.append(TraceEvent(time: 200, .switchToHub))
        enc.append(TraceEvent(time: 150, .switchToHub))  // before previous: dt 0
        var b = TraceAssembler()
        b.append(kind: 2, thread: 1, baseTime: 100, payload: enc.bytes)
        let got = try readAll(b.bytes)
        #expect(got.events[0].map(\.time) == [100, 200, 200])
    }
}
