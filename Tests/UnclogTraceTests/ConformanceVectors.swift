// The conformance vectors of schema/vectors/ (spec §9): their deterministic generator and the
// test that guards them. `UNCLOG_REGEN_VECTORS=1 swift test --filter ConformanceVectorTests`
// rewrites NAME.bin and NAME.json; otherwise the test checks that the checked-in .bin files
// are exactly what the generator writes and that they decode to the checked-in .json.

import Foundation
import Testing
import UnclogTestSupport

@testable import UnclogTrace

/// One vector: its name (file stem), what it exercises (for the README), and its bytes.
struct ConformanceVector: Sendable, CustomTestStringConvertible {
    var name: String
    var purpose: String
    var make: @Sendable () -> [UInt8]
    var testDescription: String { name }
}

enum Vectors {
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schema/vectors")

    static let basicMetadata: [MetadataEntry] = [
        MetadataEntry("clock", .string("CLOCK_MONOTONIC")),
        MetadataEntry("anchor_mono_ns", .uint(5_000_000_000)),
        MetadataEntry("anchor_wall_ns", .uint(1_795_000_000_000_000_000)),
        MetadataEntry("pid", .uint(4242)),
        MetadataEntry("argv", .list(["python3", "app.py"])),
        MetadataEntry("hostname", .string("vector-host")),
        MetadataEntry("runtime", .string("eventlet")),
        MetadataEntry("runtime_version", .string("0.36.1")),
        MetadataEntry("language_version", .string("CPython 3.11.7")),
        MetadataEntry("recorder", .string("unclog-vectors 1")),
        MetadataEntry("threshold_ns", .uint(50_000_000)),
        MetadataEntry("sample_interval_ns", .uint(10_000_000)),
    ]
    static let t0: UInt64 = 5_000_000_000

    static func ev(_ dt: UInt64, _ k: TraceEvent.Kind) -> TraceEvent { TraceEvent(time: t0 + dt, k) }

    static let all: [ConformanceVector] = [
        ConformanceVector(
            name: "minimal", purpose: "header, a metadata chunk with every defined key, one events chunk holding only `End`",
            make: minimal),
        ConformanceVector(
            name: "all-events",
            purpose:
                "every event type of §4.2 (all five switch reasons, all frame flags, timeouts none/0/n, a skippable 0x80+ event), ids and 64-bit fields at their maxima, JSON-hostile and non-ASCII strings, invalid UTF-8 decoded as U+FFFD",
            make: allEvents),
        ConformanceVector(
            name: "two-threads",
            purpose:
                "two OS threads' chunks interleaved with per-thread `seq`, `Running` at each chunk start, references to strings defined later in the file by the other thread (§4.3)",
            make: twoThreads),
        ConformanceVector(
            name: "forward-compat",
            purpose:
                "minor version 7, non-zero reserved/flags bytes, an unknown chunk kind (returned, no events), skippable events with bodies, a later metadata chunk with unknown keys",
            make: forwardCompat),
        ConformanceVector(
            name: "truncated",
            purpose: "a file cut in the middle of its last chunk: earlier chunks kept, one damage entry at that chunk's offset",
            make: truncated),
        ConformanceVector(
            name: "corrupt-middle",
            purpose:
                "a bad CRC in a middle chunk, and garbage between two chunks containing a false sync: resynchronisation, two damage entries",
            make: corruptMiddle),
        ConformanceVector(
            name: "malformed-event",
            purpose:
                "intact chunks holding an unknown event code < 0x80, an id over 2^32-1, a truncated varint, and a metadata value of unknown type: events before each kept, damage at the event's absolute offset",
            make: malformedEvent),
        ConformanceVector(
            name: "realistic",
            purpose:
                "a simulated Eventlet recording: 1 hub thread, 50 greenthreads, switches with reasons and ready times, I/O waits, 2 stalls sampled by a watchdog thread, native and internal frames, `Dropped`, `End`",
            make: realistic),
    ]

    // MARK: Generators

    static func minimal() -> [UInt8] {
        var a = TraceAssembler()
        a.metadata(basicMetadata, anchor: t0)
        a.events(thread: 100, baseTime: t0 + 1_000, [ev(1_500, .end(chunks: 1, events: 0))])
        return a.bytes
    }

    static func allEvents() -> [UInt8] {
        var a = TraceAssembler()
        a.metadata(basicMetadata, anchor: t0)
        let events: [TraceEvent] = [
            ev(0, .thread(tid: 100, name: 1)),
            ev(0, .string(id: 1, value: "MainThread")),
            ev(10, .string(id: 2, value: "quote \" backslash \\ newline \n tab \t nul \u{0} unit-sep \u{1F}")),
            ev(10, .string(id: 3, value: "café / Ж / 日本語 / 🚀 / \u{FEFF}")),
            ev(10, .string(id: 4, value: "")),
            ev(20, .string(id: UInt32.max, value: "largest id")),
            ev(30, .frame(id: 10, flags: [], function: 2, file: 3, line: 42)),
            ev(30, .frame(id: 11, flags: .internal, function: 1, file: 3, line: 0)),
            ev(30, .frame(id: 12, flags: [], function: 2, file: 0, line: UInt64.max)),
            ev(
                40,
                .image(
                    id: 20, path: 3, loadBias: 0x7F00_0000_0000, start: 0x7F00_0000_1000, end: 0x7F00_0010_0000,
                    buildID: [0x00, 0x01, 0xAB, 0xCD, 0xEF, 0xFF])),
            ev(40, .image(id: 21, path: 4, loadBias: 0, start: 0, end: UInt64.max, buildID: [])),
            ev(50, .nativeFrame(id: 13, flags: [.returnAddress], image: 20, address: 0x7F00_0000_1234)),
            ev(50, .nativeFrame(id: 14, flags: [.internal, .returnAddress, .asyncResume], image: 0, address: UInt64.max)),
            ev(60, .stack(id: 30, frames: [13, 10, 11])),
            ev(60, .stack(id: 31, frames: [])),
            ev(70, .greenthreadCreate(gt: 1, name: 1, spawnStack: 0, parent: 0)),
            ev(70, .greenthreadCreate(gt: 2, name: 2, spawnStack: 30, parent: 1)),
            ev(80, .running(gt: 1, hub: 1)),
            ev(200, .switchTo(to: 2, reason: .spawn, readyDelta: 130)),
            ev(300, .switchToHub),
            ev(310, .ioWaitBegin(timeout: nil)),
            ev(320, .ioWaitEnd(ready: 0)),
            ev(330, .ioWaitBegin(timeout: 0)),
            ev(340, .ioWaitEnd(ready: 2)),
            ev(350, .ioWaitBegin(timeout: 1_500_000)),
            ev(1_000, .ioWaitEnd(ready: 1)),
            ev(1_100, .switchTo(to: 2, reason: .io, readyDelta: 100)),
            ev(1_200, .switchToHub),
            ev(1_300, .switchTo(to: 2, reason: .timer, readyDelta: 0)),
            ev(1_400, .switchTo(to: 1, reason: .explicit, readyDelta: 16_384)),
            ev(1_500, .switchTo(to: UInt32.max, reason: .other, readyDelta: UInt64.max)),
            ev(60_000_000, .stallBegin(tid: 100, gt: 2, sinceDelta: 55_000_000)),
            ev(60_000_000, .stallSample(tid: 100, stack: 30, state: 1)),
            ev(70_000_000, .stallSample(tid: 100, stack: 30, state: 2 + 42)),
            ev(80_000_000, .skipped(code: 0x80, length: 5)),
            ev(80_000_000, .stallEnd(gt: 2, duration: 75_000_000, stack: 31)),
            ev(80_000_000, .greenthreadExit(gt: 2)),
            ev(80_000_100, .dropped(reason: 1, count: 17)),
            ev(80_000_100, .dropped(reason: 2, count: UInt64.max)),
            ev(80_000_200, .end(chunks: 2, events: 2)),
        ]
        // Invalid UTF-8 cannot come from a Swift String: hand-encode `String` events whose bytes
        // are "a", 0xFF, "b", a lone lead byte 0xC3, and a lone continuation byte 0x80 (each
        // decodes to one U+FFFD).
        a.append(
            kind: ChunkKind.events.rawValue, thread: 100, baseTime: t0,
            payload: [
                0x01, 0x00, 0x05, 0x04, 0x61, 0xFF, 0x62, 0xC3,
                0x01, 0x00, 0x06, 0x01, 0x80,
            ])
        a.events(thread: 100, baseTime: t0, events)
        return a.bytes
    }

    static func twoThreads() -> [UInt8] {
        var a = TraceAssembler()
        a.metadata(basicMetadata, anchor: t0)
        // Thread 201 names itself and its greenthread with strings 50 and 51 that thread 202
        // defines only in its second chunk, later in the file.
        a.events(
            thread: 201, baseTime: t0 + 100,
            [
                ev(100, .thread(tid: 201, name: 50)),
                ev(100, .greenthreadCreate(gt: 1, name: 0, spawnStack: 0, parent: 0)),
                ev(110, .greenthreadCreate(gt: 3, name: 51, spawnStack: 0, parent: 1)),
                ev(120, .running(gt: 1, hub: 1)),
                ev(150, .switchTo(to: 3, reason: .spawn, readyDelta: 40)),
                ev(900, .switchToHub),
            ])
        a.events(
            thread: 202, baseTime: t0 + 120,
            [
                ev(130, .greenthreadCreate(gt: 2, name: 0, spawnStack: 0, parent: 0)),
                ev(130, .greenthreadCreate(gt: 4, name: 0, spawnStack: 0, parent: 2)),
                ev(140, .running(gt: 2, hub: 2)),
                ev(160, .switchTo(to: 4, reason: .spawn, readyDelta: 30)),
                ev(2_000, .switchToHub),
            ])
        a.events(
            thread: 201, baseTime: t0 + 1_000,
            [
                ev(1_000, .running(gt: 1, hub: 1)),
                ev(1_010, .ioWaitBegin(timeout: 10_000)),
                ev(3_000, .ioWaitEnd(ready: 1)),
                ev(3_050, .switchTo(to: 3, reason: .io, readyDelta: 50)),
                ev(3_400, .greenthreadExit(gt: 3)),
                ev(3_400, .switchToHub),
            ])
        a.events(
            thread: 202, baseTime: t0 + 2_500,
            [
                ev(2_500, .string(id: 50, value: "worker-A")),
                ev(2_500, .string(id: 51, value: "GreenThread-A1")),
                ev(2_500, .running(gt: 2, hub: 2)),
                ev(2_600, .switchTo(to: 4, reason: .timer, readyDelta: 100)),
                ev(2_700, .switchToHub),
            ])
        return a.bytes
    }

    static func forwardCompat() -> [UInt8] {
        var a = TraceAssembler(header: TraceEncoding.fileHeader(versionMinor: 7).enumerated().map { i, b in i >= 12 ? 0x5A : b })
        a.metadata(basicMetadata, anchor: t0)
        var c = TraceEncoding.chunk(kind: 2, baseTime: t0, thread: 100, seq: 0, payload: [0x10, 0x01], flags: 0x81)
        c[14] = 0x12; c[15] = 0x34  // reserved bytes: ignored (they are under the CRC, so recompute it)
        let crc = CRC32.checksum(Array(c[12...]))
        for i in 0..<4 { c[8 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        a.raw(c)
        a.append(kind: 0x42, thread: 100, baseTime: t0, payload: Array("a chunk kind from the future".utf8), seq: 1)
        a.append(
            kind: 2, thread: 100, baseTime: t0 + 10,
            payload: [
                0x80, 0x00, 0x03, 0x01, 0x02, 0x03,  // skippable, 3-byte body that looks like events
                0xFE, 0x05, 0x00,  // skippable, empty body, dt 5
                0xC0, 0x00, 0x80, 0x01,
            ] + Array(repeating: 0xFF, count: 128) + [  // 2-byte length
                0x08, 0x01, 0x07,  // GreenthreadExit(7) at t0 + 16
            ], seq: 2)
        a.metadata(
            [
                MetadataEntry("hostname", .string("renamed-host")),
                MetadataEntry("x-future-key", .list(["a", "b"])),
                MetadataEntry("x-future-number", .uint(UInt64.max)),
            ], anchor: t0 + 20)
        return a.bytes
    }

    /// Thread 300: three chunks; the last is cut after 20 of its payload bytes.
    static func threeChunks() -> TraceAssembler {
        var a = TraceAssembler()
        a.metadata(basicMetadata, anchor: t0)
        for k in 0..<UInt64(3) {
            let base = t0 + k * 100_000
            a.events(
                thread: 300, baseTime: base,
                [
                    TraceEvent(time: base, .running(gt: 1, hub: 1)),
                    TraceEvent(time: base + 1_000, .switchTo(to: 2, reason: .io, readyDelta: 500)),
                    TraceEvent(time: base + 40_000, .switchToHub),
                    TraceEvent(time: base + 41_000, .ioWaitBegin(timeout: 50_000)),
                    TraceEvent(time: base + 90_000, .ioWaitEnd(ready: 1)),
                    TraceEvent(time: base + 91_000, .switchTo(to: 2, reason: .io, readyDelta: 1_000)),
                    TraceEvent(time: base + 99_000, .switchToHub),
                ])
        }
        return a
    }

    static func truncated() -> [UInt8] {
        let a = threeChunks()
        return Array(a.bytes[..<(a.chunks[3].payloadOffset + 9)])
    }

    static func corruptMiddle() -> [UInt8] {
        let a = threeChunks()
        var bytes = a.bytes
        bytes[a.chunks[1].payloadOffset + 5] ^= 0x04  // one bit: the CRC no longer matches
        // 40 bytes of garbage before the last chunk, with a false sync claiming a 4-byte payload.
        let garbage: [UInt8] = [0xDE, 0xAD] + TraceFormat.chunkSync + [0x04, 0, 0, 0] + Array(repeating: 0, count: 30)
        bytes.insert(contentsOf: garbage, at: a.chunks[3].offset)
        return bytes
    }

    static func malformedEvent() -> [UInt8] {
        var a = TraceAssembler()
        a.metadata(basicMetadata, anchor: t0)
        func chunk(_ a: inout TraceAssembler, _ base: UInt64, _ bad: [UInt8]) {
            var enc = ChunkEncoder(baseTime: base)
            enc.append(TraceEvent(time: base, .running(gt: 1, hub: 1)))
            enc.append(TraceEvent(time: base + 100, .switchTo(to: 2, reason: .explicit, readyDelta: 10)))
            a.append(kind: 2, thread: 400, baseTime: base, payload: enc.bytes + bad + [0x10, 0x05])
        }
        chunk(&a, t0, [0x0C, 0x01, 0x02])  // unknown code 0x0C
        chunk(&a, t0 + 1_000, [0x08, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10])  // gt = 2^32
        a.events(thread: 400, baseTime: t0 + 2_000, [ev(2_000, .running(gt: 1, hub: 1)), ev(2_050, .switchToHub)])
        var enc = ChunkEncoder(baseTime: t0 + 3_000)
        enc.append(ev(3_000, .switchToHub))
        // A varint cut by the payload's end.
        a.append(kind: 2, thread: 400, baseTime: t0 + 3_000, payload: enc.bytes + [0x12, 0x01, 0x02, 0xFF])
        // A metadata chunk whose second entry has value type 9.
        a.append(
            kind: 1, thread: 0, baseTime: t0, payload: [0x02, 0x03] + Array("pid".utf8) + [0x00, 0x07, 0x01, 0x6B, 0x09, 0x00],
            seq: 1)
        return a.bytes
    }

    static func realisticSimulation() -> EventletSimulation {
        EventletSimulation(.init(seed: 2026, greenthreads: 50, runs: 1_400, chunkBytes: 4_096, stallsAt: [450, 1_050]))
    }

    static func realistic() -> [UInt8] { realisticSimulation().builder.bytes }
}

private func read(_ url: URL) -> [UInt8]? {
    (try? Data(contentsOf: url)).map { Array($0) }
}

@Suite("Conformance vectors")
struct ConformanceVectorTests {
    static let regenerate = ProcessInfo.processInfo.environment["UNCLOG_REGEN_VECTORS"] == "1"

    @Test("checked-in vectors match the generator and decode to their JSON", arguments: Vectors.all)
    func vector(_ v: ConformanceVector) throws {
        let bytes = v.make()
        let json = TraceJSON.render(try TraceReader(bytes: bytes, name: "\(v.name).bin"))
        let bin = Vectors.directory.appendingPathComponent("\(v.name).bin")
        let jsonURL = Vectors.directory.appendingPathComponent("\(v.name).json")
        if Self.regenerate {
            try FileManager.default.createDirectory(at: Vectors.directory, withIntermediateDirectories: true)
            try Data(bytes).write(to: bin)
            try Data(json.utf8).write(to: jsonURL)
            return
        }
        let stored = try #require(
            read(bin), "\(bin.path) missing: run UNCLOG_REGEN_VECTORS=1 swift test --filter ConformanceVectors")
        let storedJSON = try #require(read(jsonURL).map { String(decoding: $0, as: UTF8.self) })
        #expect(stored == bytes, "\(v.name).bin differs from what the generator writes now")
        // Decode the checked-in file itself (not the generator's bytes) against the checked-in JSON.
        let decoded = TraceJSON.render(try TraceReader(bytes: stored, name: "\(v.name).bin"))
        #expect(decoded == storedJSON, "\(v.name).bin no longer decodes to \(v.name).json")
    }

    @Test("the vectors directory holds exactly the generated vectors, and the README lists each")
    func noStrays() throws {
        guard !Self.regenerate else { return }  // the files are being rewritten concurrently
        let names = Set(Vectors.all.map(\.name))
        let files = try FileManager.default.contentsOfDirectory(atPath: Vectors.directory.path)
        let stems = Set(files.filter { $0.hasSuffix(".bin") || $0.hasSuffix(".json") }.map { String($0.prefix { $0 != "." }) })
        #expect(stems == names)
        let readme = try String(contentsOf: Vectors.directory.appendingPathComponent("README.md"), encoding: .utf8)
        for n in names { #expect(readme.contains("`\(n)`"), "README.md does not mention \(n)") }
    }

    @Test("an independent reader written from the spec (schema/vectors/check.py) agrees with every vector")
    func pythonReaderAgrees() throws {
        guard !Self.regenerate else { return }
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let python else {
            // Not a failure of the format: say so instead of passing silently.
            Issue.record("python3 not found: schema/vectors/check.py not run")
            return
        }
        let r = try runProgram(python, [Vectors.directory.appendingPathComponent("check.py").path])
        let text = r.stdout + r.stderr
        #expect(r.status == 0, "\(text)")
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count == Vectors.all.count, "\(text)")
    }

    // What each vector is meant to show, checked on the decoded content rather than the JSON
    // text, so a vector cannot silently stop exercising its case when regenerated.

    @Test("all-events holds every event type and every switch reason")
    func allEventsCoverage() throws {
        let got = try readAll(Vectors.allEvents())
        #expect(got.damage.isEmpty)
        let names = Set(got.events.joined().map { TraceJSON.eventObject($0).split(separator: "\"")[3] })
        #expect(
            names == [
                "string", "frame", "native_frame", "stack", "image", "thread", "greenthread_create",
                "greenthread_exit", "running", "switch_to_hub", "switch", "io_wait_begin", "io_wait_end",
                "stall_begin", "stall_sample", "stall_end", "dropped", "end", "skipped",
            ])
        let reasons = Set(
            got.events.joined().compactMap { e -> SwitchReason? in
                if case let .switchTo(_, reason, _) = e.kind { reason } else { nil }
            })
        #expect(reasons == Set(SwitchReason.allCases))
        #expect(
            got.events[1] == [
                TraceEvent(time: Vectors.t0, .string(id: 5, value: "a\u{FFFD}b\u{FFFD}")),
                TraceEvent(time: Vectors.t0, .string(id: 6, value: "\u{FFFD}")),
            ])
    }

    @Test("two-threads interleaves chunks of two threads and uses strings before their definition")
    func twoThreadsShape() throws {
        let got = try readAll(Vectors.twoThreads())
        #expect(got.damage.isEmpty)
        #expect(got.chunks.map(\.thread) == [0, 201, 202, 201, 202])
        #expect(got.chunks.map(\.seq) == [0, 0, 0, 1, 1])
        #expect(got.events[1].first == TraceEvent(time: Vectors.t0 + 100, .thread(tid: 201, name: 50)))
        #expect(got.events[4].first == TraceEvent(time: Vectors.t0 + 2_500, .string(id: 50, value: "worker-A")))
    }

    @Test("damage vectors report what they claim")
    func damageShapes() throws {
        let three = Vectors.threeChunks().chunks
        var got = try readAll(Vectors.truncated())
        #expect(spans(got.damage) == [[UInt64(three[3].offset), 32 + 9]])
        #expect(got.chunks.count == 3)

        got = try readAll(Vectors.corruptMiddle())
        #expect(spans(got.damage) == [[UInt64(three[1].offset), UInt64(three[1].size)], [UInt64(three[3].offset), 40]])
        #expect(got.chunks.map(\.offset) == [UInt64(three[0].offset), UInt64(three[2].offset), UInt64(three[3].offset + 40)])

        got = try readAll(Vectors.malformedEvent())
        #expect(got.chunks.count == 6)
        #expect(got.damage.count == 4)
        #expect(got.events[1].count == 2 && got.events[2].count == 2 && got.events[3].count == 2 && got.events[4].count == 1)
        #expect(got.metadata[5] == [MetadataEntry("pid", .uint(7))])

        got = try readAll(Vectors.forwardCompat())
        #expect(got.damage.isEmpty)
        #expect(got.chunks.map(\.kind) == [1, 2, 0x42, 2, 1])
    }

    @Test("realistic: a few thousand events, ≤ 6 bytes per switch on average (issue §2)")
    func realisticShape() throws {
        let sim = Vectors.realisticSimulation()
        let got = try readAll(sim.builder.bytes)
        #expect(got.damage.isEmpty)
        let events = got.events.joined()
        #expect((2_000...9_000).contains(events.count), "\(events.count) events")
        let gts = Set(
            events.compactMap { e -> UInt32? in if case let .greenthreadCreate(gt, _, _, _) = e.kind { gt } else { nil } })
        #expect(gts.count >= 52)  // hub, main, 50 workers (plus replacements for those that exit)
        let stalls = events.filter { if case .stallEnd = $0.kind { true } else { false } }
        #expect(stalls.count == 2)
        let samples = zip(got.chunks, got.events).filter { $0.0.thread == EventletSimulation.watchdogTid }
            .flatMap(\.1).filter { if case .stallSample = $0.kind { true } else { false } }
        #expect(samples.count >= 10)
        let perSwitch = Double(sim.switchBytes) / Double(sim.switchCount)
        #expect(perSwitch <= 6, "\(perSwitch) bytes per switch")
        #expect(
            got.events.last == [
                TraceEvent(
                    time: got.chunks.last!.baseTime,
                    .end(chunks: UInt64(got.chunks.count - 1), events: UInt64(events.count - 1)))
            ])
    }
}
