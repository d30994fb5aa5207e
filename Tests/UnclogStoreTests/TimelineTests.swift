// Timeline queries (slices in a window, found through checkpoints rather than an index)
// and the terminal drawing.

import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport
import UnclogTrace

/// Two threads, each alternating two greenthreads 1200 times (so every greenthread and
/// thread has several checkpoints, one per 256 slices). Thread 10 runs gt 2 and 3, thread 20
/// runs gt 4 and 5; chunks are small so the two threads' chunks interleave in the file and a
/// thread's slice ids are not contiguous.
struct ManySlices {
    static let rounds = 1200
    let trace = ScriptedTrace(chunkBytes: 200)
    /// Expected slices per greenthread: (start, end, ready).
    var slices: [Int64: [(start: Int64, end: Int64, ready: Int64)]] = [:]
    var end: Int64 = 0

    init() {
        let threads: [(tid: UInt32, hub: UInt32, a: UInt32, b: UInt32, offset: Int64)] = [(10, 1, 2, 3, 0), (20, 100, 4, 5, 250)]
        for th in threads { trace.at(0, th.tid, .running(gt: th.hub, hub: th.hub)) }
        for i in 0..<ManySlices.rounds {
            for th in threads {
                let base = Int64(i) * 1000 + th.offset
                // a: [base, base+400] ready since base−30; b: [base+500, base+900] ready since base+450.
                trace.at(base, th.tid, .switchTo(to: th.a, reason: .timer, readyDelta: 30))
                trace.at(base + 400, th.tid, .switchToHub)
                trace.at(base + 500, th.tid, .switchTo(to: th.b, reason: .io, readyDelta: 50))
                trace.at(base + 900, th.tid, .switchToHub)
                slices[Int64(th.a), default: []].append((base, base + 400, base - 30))
                slices[Int64(th.b), default: []].append((base + 500, base + 900, base + 450))
                end = base + 900
            }
        }
        trace.finish(at: end + 100)
    }

    /// The expected slices of `gt` overlapping [from, to] (both ends inclusive).
    func expected(_ gt: Int64, _ from: Int64, _ to: Int64) -> [Slice] {
        let tk: Int64 = gt <= 3 ? key(10) : key(20)
        return slices[gt]!.filter { $0.end >= from && $0.start <= to }.map {
            Slice(
                gtKey: key(gt), threadKey: tk, readyNs: $0.ready, startNs: $0.start, endNs: $0.end,
                reason: gt % 2 == 0 ? 1 : 2)
        }
    }
}

@Suite struct TimelineTests {
    nonisolated(unsafe) static let data = ManySlices()

    static let imported = Fixture { TimelineTests.data.trace }

    func store() throws -> (TraceStore, TempDir) {
        #expect(try TimelineTests.imported.summary.slices == 4 * ManySlices.rounds)
        return (try TimelineTests.imported.store(), TimelineTests.imported.dir)
    }

    static let windows: [(Int64, Int64)] = [
        (0, 5_000),  // the start
        (-1_000, 0),  // before and touching the first slice
        (600_000, 612_345),  // the middle
        (255_400, 256_500),  // across a checkpoint (the 256th round)
        (511_999, 512_001),  // a tiny window inside one slice
        (700_401, 700_499),  // between two slices of gt 2: nothing
        (700_400, 700_400),  // exactly a slice's end: it overlaps
        (1_195_000, 1_250_000),  // the end, and past it
        (0, 2_000_000),  // everything
    ]

    @Test func greenthreadSlicesInWindows() throws {
        let (store, _) = try store()
        #expect(try store.int("SELECT COUNT(*) FROM slice_checkpoints WHERE kind = 0 AND key = ?", [.int(key(2))]) == 5)
        #expect(try store.int("SELECT COUNT(*) FROM slice_checkpoints WHERE kind = 3") == 0)  // every chain in time order
        for (from, to) in TimelineTests.windows {
            for gt: Int64 in [2, 3, 4, 5] {
                let got = try store.greenthreadSlices(gtKey: key(gt), from: from, to: to).plain
                let want = TimelineTests.data.expected(gt, from, to)
                #expect(got == want, "gt \(gt) window [\(from), \(to)]: \(got.count) slices, expected \(want.count)")
            }
        }
        #expect(try store.greenthreadSlices(gtKey: key(2), from: 0, to: 2_000_000).count == ManySlices.rounds)
        #expect(try store.greenthreadSlices(gtKey: key(77), from: 0, to: 2_000_000).isEmpty)
    }

    @Test func threadSlicesInWindows() throws {
        let (store, _) = try store()
        #expect(try store.int("SELECT COUNT(*) FROM slice_checkpoints WHERE kind = 1 AND key = ?", [.int(key(10))]) == 10)
        for (from, to) in TimelineTests.windows {
            for (tid, gts) in [(Int64(10), [Int64(2), 3]), (20, [4, 5])] {
                let got = try store.threadSlices(threadKey: key(tid), from: from, to: to).plain
                let want = gts.flatMap { TimelineTests.data.expected($0, from, to) }.sorted { $0.startNs < $1.startNs }
                #expect(got == want, "thread \(tid) window [\(from), \(to)]: \(got.count) slices, expected \(want.count)")
            }
        }
        #expect(try store.threadSlices(threadKey: key(30), from: 0, to: 2_000_000).isEmpty)
    }

    /// A greenthread that ran on two threads: its chain crosses threads.
    @Test func greenthreadMovingBetweenThreads() throws {
        let tr = ScriptedTrace(chunkBytes: 64)
        tr.at(0, 10, .running(gt: 1, hub: 1))
        tr.at(0, 20, .running(gt: 100, hub: 100))
        var want: [Slice] = []
        for i in 0..<600 {
            let t = Int64(i) * 100
            let tid: UInt32 = i % 3 == 0 ? 20 : 10
            tr.at(t, tid, .switchTo(to: 7, reason: .explicit, readyDelta: 0))
            tr.at(t + 60, tid, .switchToHub)
            tr.flush()  // keep the file in time order across threads
            want.append(Slice(gtKey: key(7), threadKey: key(Int64(tid)), readyNs: t, startNs: t, endNs: t + 60, reason: 4))
        }
        tr.finish(at: 60_000)
        let dir = TempDir()
        try importTrace(tr, in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        for (from, to) in [(Int64(0), Int64(1_000)), (25_550, 30_000), (59_000, 70_000)] {
            #expect(
                try store.greenthreadSlices(gtKey: key(7), from: from, to: to).plain
                    == want.filter { $0.endNs >= from && $0.startNs <= to })
        }
    }

    /// A trace small enough to draw by hand: window 0…1000 ns, 10 columns of 100 ns.
    ///   thread 10: I/O wait [0, 100], hub [100, 200], gt 2 runs [200, 500] (ready since 100),
    ///              I/O wait [500, 800], gt 2 runs [800, 1000] and stalls the whole time.
    func drawnTrace() -> ScriptedTrace {
        let tr = ScriptedTrace()
        tr.string(1, "worker", thread: 10)
        tr.at(0, 10, .greenthreadCreate(gt: 2, name: 1, spawnStack: 0, parent: 0))
        tr.at(0, 10, .running(gt: 1, hub: 1))
        tr.at(0, 10, .ioWaitBegin(timeout: nil))
        tr.at(100, 10, .ioWaitEnd(ready: 1))
        tr.at(200, 10, .switchTo(to: 2, reason: .io, readyDelta: 100))
        tr.at(500, 10, .switchToHub)
        tr.at(500, 10, .ioWaitBegin(timeout: nil))
        tr.at(800, 10, .ioWaitEnd(ready: 1))
        tr.at(800, 10, .switchTo(to: 2, reason: .io, readyDelta: 0))
        tr.at(1000, 10, .stallEnd(gt: 2, duration: 200, stack: 0))
        tr.at(1000, 10, .switchToHub)
        tr.finish(at: 1000)
        return tr
    }

    /// The cells of the row labelled `label` (between its two `|`).
    func cells(_ text: String, _ label: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix(label) {
            let parts = line.split(separator: "|", omittingEmptySubsequences: false)
            if parts.count >= 3 { return String(parts[1]) }
        }
        return nil
    }

    @Test func drawsTheRightGlyphsInTheRightColumns() throws {
        let dir = TempDir()
        try importTrace(drawnTrace(), in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        // Column c covers [100c, 100c + 100): a slice ending at 500 does not reach column 5.
        let one = try store.timeline(TimelineOptions(greenthread: 2, from: 0, to: 1000, width: 10))
        #expect(one.hasPrefix("trace 1: 0ns … 1us, one column = 100ns\n"), "\(one)")
        #expect(cells(one, "gt 2 worker") == " -###...!!", "\(one)")

        let all = try store.timeline(TimelineOptions(from: 0, to: 1000, width: 10))
        #expect(cells(all, "thread 10") == ". ###...!!", "\(all)")
        #expect(cells(all, "gt 2 worker") == " -###...!!", "\(all)")
        // The default window is the whole trace.
        let whole = try store.timeline(TimelineOptions(width: 10))
        #expect(cells(whole, "thread 10") == ". ###...!!", "\(whole)")
    }

    @Test func timelineErrors() throws {
        let dir = TempDir()
        try importTrace(drawnTrace(), in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(throws: StoreError.self) { try store.timeline(TimelineOptions(greenthread: 99)) }
        #expect(throws: StoreError.self) { try store.timeline(TimelineOptions(traceID: 5)) }
        // A window after the end of the trace (it ends at 1 µs) holds nothing: an error.
        do {
            _ = try store.timeline(TimelineOptions(from: 5_000))
            Issue.record("no error for an empty window")
        } catch {
            #expect(error.message.hasSuffix("empty window 5us … 1us (trace 1 runs from 0ns to 1us)"), "\(error.message)")
        }
        #expect(throws: StoreError.self) { try store.timeline(TimelineOptions(greenthread: 2, from: 5_000)) }
        #expect(throws: StoreError.self) { try store.timeline(TimelineOptions(to: -5)) }
        // Windows that overlap the trace are fine, even partly outside it.
        #expect(try store.timeline(TimelineOptions(from: 900, to: 5_000, width: 10)).contains("thread 10"))
    }
}

@Suite struct MigratingGreenthreadTests {
    /// A task that moves between OS threads (Swift Concurrency's pool), whose threads' chunks
    /// reach the file out of time order: thread 10's chunk (slices at 100 and 200 ns) is written
    /// before thread 20's (the earlier slice at 0 ns), so its slice chain is not in time order.
    @Test func slicesOutOfFileOrder() throws {
        let tr = ScriptedTrace()
        tr.at(0, 20, .running(gt: 9, hub: 0))  // a pool thread without a hub
        tr.at(10, 20, .switchTo(to: 2, reason: .explicit, readyDelta: 5))
        tr.at(60, 20, .switchTo(to: 9, reason: .other, readyDelta: 0))
        tr.at(90, 10, .running(gt: 9, hub: 0))
        tr.at(100, 10, .switchTo(to: 2, reason: .explicit, readyDelta: 10))
        tr.at(160, 10, .switchTo(to: 9, reason: .other, readyDelta: 0))
        tr.at(200, 10, .switchTo(to: 2, reason: .explicit, readyDelta: 5))
        tr.at(260, 10, .switchTo(to: 9, reason: .other, readyDelta: 0))
        tr.finish(at: 300)  // flushes thread 10 first, then 20
        let dir = TempDir()
        try importTrace(tr, in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(
            try store.rows("SELECT start_ns FROM slice_checkpoints WHERE kind = 3 AND key = ?", [.int(key(2))]) == [[.int(10)]])
        // Its ready waits are what the switches said, whatever the file order.
        #expect(
            try store.rows("SELECT slices, run_ns, ready_wait_ns FROM greenthreads WHERE gt = 2") == [
                [.int(3), .int(170), .int(20)]
            ])
        let all = [
            Slice(gtKey: key(2), threadKey: key(20), readyNs: 5, startNs: 10, endNs: 60, reason: 4),
            Slice(gtKey: key(2), threadKey: key(10), readyNs: 90, startNs: 100, endNs: 160, reason: 4),
            Slice(gtKey: key(2), threadKey: key(10), readyNs: 195, startNs: 200, endNs: 260, reason: 4),
        ]
        for (from, to) in [(Int64(0), Int64(300)), (90, 300), (150, 210), (0, 50), (61, 99), (250, 1000), (0, 5)] {
            #expect(
                try store.greenthreadSlices(gtKey: key(2), from: from, to: to).plain
                    == all.filter { $0.endNs >= from && $0.startNs <= to },
                "[\(from), \(to)]")
        }
        // The drawing's default window is the task's whole life.
        let text = try store.timeline(TimelineOptions(greenthread: 2, width: 26))
        #expect(text.hasPrefix("trace 1: 10ns … 260ns, one column = 9ns\n"), "\(text)")
    }
}
