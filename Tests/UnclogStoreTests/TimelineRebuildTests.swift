// The timeline rebuild on its own: events in, records out, no SQLite. Traces are built with
// the same helpers as the import tests (ScriptedTrace), decoded, and fed chunk by chunk.

import Testing
import UnclogQuery
import UnclogStore
import UnclogTestSupport
import UnclogTrace

@testable import UnclogImport

/// Collects every record of a rebuild.
final class RecordingSink: TimelineSink {
    typealias Failure = Never
    var slices: [SliceRecord] = []
    var ioWaits: [IOWaitRecord] = []
    var stalls: [StallRecord] = []
    var samples: [SampleRecord] = []
    var victims: [VictimRecord] = []
    var greenthreads: [GreenthreadRecord] = []
    var threads: [ThreadRecord] = []
    var victimTotals: [VictimTotalsRecord] = []
    var strings: [StringRecord] = []
    var frames: [FrameRecord] = []
    var stacks: [StackRecord] = []
    var images: [ImageRecord] = []

    func slice(_ r: SliceRecord) { slices.append(r) }
    func ioWait(_ r: IOWaitRecord) { ioWaits.append(r) }
    func stall(_ r: StallRecord) { stalls.append(r) }
    func sample(_ r: SampleRecord) { samples.append(r) }
    func victim(_ r: VictimRecord) { victims.append(r) }
    func greenthread(_ r: GreenthreadRecord) { greenthreads.append(r) }
    func thread(_ r: ThreadRecord) { threads.append(r) }
    func victimTotals(_ r: VictimTotalsRecord) { victimTotals.append(r) }
    func string(_ r: StringRecord) { strings.append(r) }
    func frame(_ r: FrameRecord) { frames.append(r) }
    func stack(_ r: StackRecord) { stacks.append(r) }
    func image(_ r: ImageRecord) { images.append(r) }

    func greenthread(_ gt: UInt32) -> GreenthreadRecord? { greenthreads.first { $0.gt == gt } }
}

/// Rebuilds the timeline of `trace` (metadata read as the importer reads it) into a sink.
func rebuild(_ trace: ScriptedTrace) throws -> (RecordingSink, RebuildCounts) {
    let reader = try TraceReader(bytes: trace.bytes)
    var metadata: [String: MetadataValue] = [:]
    var chunks: [Chunk] = []
    while let c = reader.nextChunk() { chunks.append(c) }
    for c in chunks where c.kind == ChunkKind.metadata.rawValue {
        for e in EventDecoder.decodeMetadata(c).entries { metadata[e.key] = e.value }
    }
    let setup = TraceSetup(metadata: metadata, firstBase: chunks.first?.baseTime)
    let sink = RecordingSink()
    let r = TimelineRebuild(start: setup.start, pool: setup.pool, sink: sink)
    for c in chunks where c.kind == ChunkKind.events.rawValue {
        var events = EventIterator(c)
        r.consume(&events, thread: c.thread)
    }
    r.finish()
    return (sink, r.counts)
}

@Suite struct TimelineRebuildTests {
    /// A switch with a wake-up time gives a slice with its ready time and reason; a greenthread
    /// found running has neither (nil, not a sentinel); the hub has no slices.
    @Test func slicesAndTheirChain() throws {
        let tr = ScriptedTrace()
        tr.at(0, 10, .running(gt: 1, hub: 1))
        tr.at(ms(5), 10, .switchTo(to: 2, reason: .timer, readyDelta: UInt64(ms(3))))
        tr.at(ms(8), 10, .switchToHub)
        tr.at(ms(9), 10, .running(gt: 2, hub: 0))
        tr.at(ms(12), 10, .switchToHub)
        tr.finish(at: ms(20))
        let (sink, counts) = try rebuild(tr)
        #expect(
            sink.slices == [
                SliceRecord(
                    id: 0, gt: 2, thread: 10, ready: ms(2), start: ms(5), end: ms(8), reason: .timer, previous: nil,
                    indexInGreenthread: 0, indexInThread: 0, outOfOrder: false),
                SliceRecord(
                    id: 1, gt: 2, thread: 10, ready: nil, start: ms(9), end: ms(12), reason: nil, previous: 0,
                    indexInGreenthread: 1, indexInThread: 1, outOfOrder: false),
            ])
        #expect(counts.slices == 2)
        let g = try #require(sink.greenthread(2))
        #expect(g.slices == 2 && g.runNs == ms(6) && g.readyWaitNs == ms(3) && g.lastSlice == 1 && !g.isHub)
        #expect(g.created == nil && g.exited == nil && g.name == nil)
        #expect(sink.greenthread(1)?.isHub == true)
        #expect(sink.threads == [ThreadRecord(tid: 10, name: nil, hub: 1, slices: 2, busyNs: ms(6), ioWaitNs: 0)])
        #expect(counts.cleanEnd)
    }

    /// I/O waits: an unbounded wait has no timeout, one the recording ended inside no nready.
    @Test func ioWaits() throws {
        let tr = ScriptedTrace()
        tr.at(0, 10, .running(gt: 1, hub: 1))
        tr.at(ms(1), 10, .ioWaitBegin(timeout: UInt64(ms(50))))
        tr.at(ms(4), 10, .ioWaitEnd(ready: 2))
        tr.at(ms(6), 10, .ioWaitBegin(timeout: nil))
        tr.at(ms(9), 10, .running(gt: 1, hub: 1))
        tr.flush()
        let (sink, _) = try rebuild(tr)
        #expect(
            sink.ioWaits == [
                IOWaitRecord(id: 0, thread: 10, start: ms(1), end: ms(4), timeout: ms(50), nready: 2, indexInThread: 0),
                IOWaitRecord(id: 1, thread: 10, start: ms(6), end: ms(9), timeout: nil, nready: nil, indexInThread: 1),
            ])
        #expect(sink.threads.first?.ioWaitNs == ms(6))
    }

    /// The stall scenario of the import tests, without SQLite: the stalls (the last one
    /// incomplete, closed at its last sample), the samples, and the victims of stall 0.
    @Test func stallsSamplesAndVictims() throws {
        let s = StallScenario()
        let (sink, counts) = try rebuild(s.trace)
        #expect(
            sink.stalls == [
                StallRecord(id: 0, thread: 10, gt: 2, start: ms(10), end: ms(70), endStack: s.stackC, complete: true),
                StallRecord(id: 1, thread: 10, gt: 3, start: ms(100), end: ms(125), endStack: s.stackC, complete: true),
                StallRecord(id: 2, thread: 10, gt: 4, start: ms(130), end: ms(145), endStack: s.stackD, complete: true),
                StallRecord(id: 3, thread: 10, gt: 5, start: ms(200), end: ms(240), endStack: nil, complete: false),
            ])
        #expect(counts.stalls == 4 && counts.samples == 8 && !counts.cleanEnd)
        #expect(sink.samples.map(\.time).sorted() == [30, 40, 50, 60, 90, 91, 230, 240].map { ms($0) })
        #expect(sink.samples.first { $0.time == ms(40) }?.state == 47)
        #expect(
            Set(sink.victims.filter { $0.stall == 0 }.map { [Int64($0.gt), $0.ready, $0.resumed, $0.wait] }) == [
                [3, ms(20), ms(70), ms(50)],
                [4, ms(5), ms(72), ms(60)],
            ])
        #expect(sink.victimTotals.first { $0.stall == 0 } == VictimTotalsRecord(stall: 0, victims: 2, waitNs: ms(110)))
        // The watchdog wrote chunks but ran no greenthreads: it is a thread all the same.
        #expect(Set(sink.threads.map(\.tid)) == [10, 99])
        #expect(sink.threads.first { $0.tid == 99 }?.name != nil)
    }

    /// Definitions pass through with their optional references: 0 is "none".
    @Test func definitions() throws {
        let tr = ScriptedTrace()
        tr.at(0, 10, .string(id: 7, value: "main"))
        tr.at(0, 10, .frame(id: 1, flags: [], function: 7, file: 0, line: 0))
        tr.at(0, 10, .nativeFrame(id: 2, flags: .returnAddress, image: 0, address: 0x1234))
        tr.at(0, 10, .stack(id: 3, frames: [2, 1]))
        tr.at(0, 10, .greenthreadCreate(gt: 4, name: 7, spawnStack: 3, parent: 0))
        tr.at(ms(1), 10, .greenthreadExit(gt: 4))
        tr.flush()
        let (sink, _) = try rebuild(tr)
        #expect(sink.strings == [StringRecord(id: 7, value: "main")])
        #expect(
            sink.frames == [
                FrameRecord(id: 1, flags: [], function: 7, file: nil, line: nil, image: nil, address: nil),
                FrameRecord(id: 2, flags: .returnAddress, function: nil, file: nil, line: nil, image: nil, address: 0x1234),
            ])
        #expect(sink.stacks == [StackRecord(id: 3, frames: [2, 1])])
        let g = try #require(sink.greenthread(4))
        #expect(g.name == 7 && g.spawnStack == 3 && g.parent == nil && g.created == 0 && g.exited == ms(1))
    }

    /// A pool worker that died inside a stall (StallBegin, no StallEnd): the stall is closed at
    /// its last sample, and a job that waited through it on another worker is its victim, in
    /// the records and in the database (the row once stayed in the writer's unflushed batch).
    @Test func incompleteStallOfAPoolWorkerHasItsVictims() throws {
        let tr = ScriptedTrace(runtime: "swift-concurrency")
        tr.at(0, 10, .running(gt: 0, hub: 0))
        tr.at(ms(1), 10, .switchTo(to: 2, reason: .other, readyDelta: 0))  // never ends
        tr.at(0, 20, .running(gt: 0, hub: 0))
        tr.at(ms(20), 20, .switchTo(to: 3, reason: .other, readyDelta: UInt64(ms(10))))
        tr.at(ms(21), 20, .switchToHub)
        tr.at(ms(20), 99, .stallBegin(tid: 10, gt: 2, sinceDelta: UInt64(ms(19))))
        tr.at(ms(30), 99, .stallSample(tid: 10, stack: 0, state: 1))
        tr.flush()
        let (sink, _) = try rebuild(tr)
        #expect(sink.stalls == [StallRecord(id: 0, thread: 10, gt: 2, start: ms(1), end: ms(30), endStack: nil, complete: false)])
        #expect(sink.victims == [VictimRecord(stall: 0, gt: 3, ready: ms(10), resumed: ms(20), wait: ms(10))])
        #expect(sink.victimTotals == [VictimTotalsRecord(stall: 0, victims: 1, waitNs: ms(10))])

        let dir = TempDir()
        try importTrace(tr, in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(try store.rows("SELECT gt_key, wait_ns FROM stall_victims") == [[.int(key(3)), .int(ms(10))]])
        #expect(try store.rows("SELECT victims, victim_wait_ns, complete FROM stalls") == [[.int(1), .int(ms(10)), .int(0)]])
    }
}
