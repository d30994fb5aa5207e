// The rebuilt timeline: run slices from switch events, hub time, I/O waits, per-greenthread
// and per-thread totals, on a hand-built trace whose every row is known.

import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport
import UnclogTrace

/// One OS thread (tid 10) with hub greenthread 1 and greenthreads 2, 3, 4. Times in ns.
///
///     0      Running(hub)                 — hub time, no slice
///     0–100  hub waits for I/O (forever)  → nready 1
///     200    SwitchSpawn 2  ready 150     → slice 0: gt 2 [200, 500]
///     500    SwitchToHub
///     520–580 I/O wait, timeout 1000      → nready 2
///     600    SwitchIO 3     ready 500     → slice 1: gt 3 [600, 900]
///     900    SwitchTimer 4  ready 600     → slice 2: gt 4 [900, 1000] (3 → 4, no hub in between)
///     1000   SwitchExplicit 1 (the hub)   — back to the hub: no slice
///     1100   SwitchExplicit 2 ready 1050  → slice 3: gt 2 [1100, 1400], prev = slice 0
///     1400   SwitchToHub
///     1500–2000 I/O wait, no timeout      → nready 0
///     2000   SwitchOther 3  ready 1300    → slice 4: gt 3 [2000, 2300], prev = slice 1
///     2300   SwitchToHub, gt 3 exits
///     2400–2450 I/O wait, timeout 0       → nready 1
///     2500   SwitchIO 4     ready 2500    → slice 5: gt 4 [2500, 2800], prev = slice 2
///     2800   SwitchToHub; End at 3000
func slicesTrace(chunkBytes: Int = 64 << 10) -> ScriptedTrace {
    let tr = ScriptedTrace(chunkBytes: chunkBytes)
    let th: UInt32 = 10
    tr.string(1, "MainThread", thread: th)
    tr.string(2, "hub", thread: th)
    tr.string(3, "serve", thread: th)
    tr.string(4, "fetch", thread: th)
    tr.string(5, "parse", thread: th)
    tr.at(0, th, .thread(tid: th, name: 1))
    tr.at(0, th, .greenthreadCreate(gt: 1, name: 2, spawnStack: 0, parent: 0))
    tr.at(0, th, .running(gt: 1, hub: 1))
    tr.at(0, th, .ioWaitBegin(timeout: nil))
    tr.at(10, th, .greenthreadCreate(gt: 2, name: 3, spawnStack: 0, parent: 1))
    tr.at(10, th, .greenthreadCreate(gt: 3, name: 4, spawnStack: 0, parent: 1))
    tr.at(10, th, .greenthreadCreate(gt: 4, name: 5, spawnStack: 0, parent: 1))
    tr.at(100, th, .ioWaitEnd(ready: 1))
    tr.at(200, th, .switchTo(to: 2, reason: .spawn, readyDelta: 50))
    tr.at(500, th, .switchToHub)
    tr.at(520, th, .ioWaitBegin(timeout: 1000))
    tr.at(580, th, .ioWaitEnd(ready: 2))
    tr.at(600, th, .switchTo(to: 3, reason: .io, readyDelta: 100))
    tr.at(900, th, .switchTo(to: 4, reason: .timer, readyDelta: 300))
    tr.at(1000, th, .switchTo(to: 1, reason: .explicit, readyDelta: 0))
    tr.at(1100, th, .switchTo(to: 2, reason: .explicit, readyDelta: 50))
    tr.at(1400, th, .switchToHub)
    tr.at(1500, th, .ioWaitBegin(timeout: nil))
    tr.at(2000, th, .ioWaitEnd(ready: 0))
    tr.at(2000, th, .switchTo(to: 3, reason: .other, readyDelta: 700))
    tr.at(2300, th, .switchToHub)
    tr.at(2300, th, .greenthreadExit(gt: 3))
    tr.at(2400, th, .ioWaitBegin(timeout: 0))
    tr.at(2450, th, .ioWaitEnd(ready: 1))
    tr.at(2500, th, .switchTo(to: 4, reason: .io, readyDelta: 0))
    tr.at(2800, th, .switchToHub)
    tr.finish(at: 3000)
    return tr
}

/// The slices of `slicesTrace` as (gt, ready, start, end, reason, prev slice number).
let expectedSlices: [(gt: Int64, ready: Int64, start: Int64, end: Int64, reason: Int64, prev: Int64?)] = [
    (2, 150, 200, 500, 3, nil),
    (3, 500, 600, 900, 2, nil),
    (4, 600, 900, 1000, 1, nil),
    (2, 1050, 1100, 1400, 4, 0),
    (3, 1300, 2000, 2300, 5, 1),
    (4, 2500, 2500, 2800, 2, 2),
]

@Suite struct SlicesTests {
    func sliceRows(_ store: TraceStore) throws -> [[SQLValue]] {
        try store.rows("SELECT id, gt_key, thread_key, ready_ns, start_ns, end_ns, reason, prev_id FROM slices ORDER BY id")
    }

    func expectedRows() -> [[SQLValue]] {
        expectedSlices.enumerated().map { n, s in
            [
                .int(rowID(Int64(n))), .int(key(s.gt)), .int(key(10)), .int(s.ready), .int(s.start), .int(s.end), .int(s.reason),
                s.prev.map { .int(rowID($0)) } ?? .null,
            ]
        }
    }

    @Test func exactSliceRows() throws {
        let summary = try Fixture.slices.summary
        #expect(summary.traceID == 1)
        #expect(summary.slices == 6)
        #expect(summary.greenthreads == 3)  // the hub is not counted
        #expect(summary.cleanEnd)
        #expect(summary.damage.isEmpty && summary.bytesLost == 0)
        let store = try Fixture.slices.store()
        #expect(try sliceRows(store) == expectedRows())
    }

    @Test func hubTimeIsNotASlice() throws {
        let store = try Fixture.slices.store()
        #expect(try store.int("SELECT COUNT(*) FROM slices WHERE gt_key = ?", [.int(key(1))]) == 0)
        let hub = try store.rows(
            "SELECT is_hub, slices, run_ns, ready_wait_ns, last_slice_id, name FROM greenthreads WHERE key = ?",
            [.int(key(1))])
        #expect(hub == [[.int(1), .int(0), .int(0), .int(0), .null, .text("hub")]])
        // Thread time = slices + I/O waits + the hub's remaining time.
        let t = try store.rows("SELECT tid, name, hub_key, slices, busy_ns, io_wait_ns FROM threads WHERE tid = 10")
        #expect(t == [[.int(10), .text("MainThread"), .int(key(1)), .int(6), .int(1600), .int(100 + 60 + 500 + 50)]])
    }

    @Test func greenthreadTotals() throws {
        let store = try Fixture.slices.store()
        let rows = try store.rows(
            """
            SELECT gt, name, is_hub, created_ns, exited_ns, slices, run_ns, ready_wait_ns, last_slice_id, parent_key
            FROM greenthreads WHERE is_hub = 0 ORDER BY gt
            """)
        let want: [[SQLValue]] = [
            [
                .int(2), .text("serve"), .int(0), .int(10), .null, .int(2), .int(300 + 300), .int(50 + 50), .int(rowID(3)),
                .int(key(1)),
            ],
            [
                .int(3), .text("fetch"), .int(0), .int(10), .int(2300), .int(2), .int(300 + 300), .int(100 + 700), .int(rowID(4)),
                .int(key(1)),
            ],
            [
                .int(4), .text("parse"), .int(0), .int(10), .null, .int(2), .int(100 + 300), .int(300 + 0), .int(rowID(5)),
                .int(key(1)),
            ],
        ]
        #expect(rows == want)
        // The per-greenthread view agrees with the table.
        let summaryRows = try store.rows(
            "SELECT gt, slices, run_ns, ready_wait_ns, stalls_caused FROM greenthread_summary WHERE is_hub = 0 ORDER BY gt")
        let wantSummary: [[SQLValue]] = [
            [.int(2), .int(2), .int(600), .int(100), .int(0)],
            [.int(3), .int(2), .int(600), .int(800), .int(0)],
            [.int(4), .int(2), .int(400), .int(300), .int(0)],
        ]
        #expect(summaryRows == wantSummary)
    }

    /// With tiny chunks every chunk starts with a `Running` event restating who runs; the
    /// importer must neither split the running slice there nor start a duplicate.
    @Test func runningAtChunkBoundariesChangesNothing() throws {
        let small = slicesTrace(chunkBytes: 4)
        let big = slicesTrace()
        #expect(chunkOffsets(small.bytes).count > 15)
        // The small-chunk trace really restates state mid-slice: count its Running events.
        let reader = try TraceReader(bytes: small.bytes)
        var running = 0
        while let c = reader.nextChunk() {
            var it = EventIterator(c)
            while let e = it.next() { if case .running = e.kind { running += 1 } }
        }
        #expect(running > 10)

        let dir = TempDir()
        try importTrace(small, in: dir, name: "small")
        try importTrace(big, in: dir, name: "big")
        let a = try TraceStore(path: dir.file("small.db"))
        let b = try TraceStore(path: dir.file("big.db"))
        #expect(try sliceRows(a) == expectedRows())
        #expect(try sliceRows(b) == expectedRows())
        let totals = "SELECT gt, slices, run_ns, ready_wait_ns FROM greenthreads ORDER BY gt"
        #expect(try a.rows(totals) == b.rows(totals))
        let io = "SELECT start_ns, end_ns, timeout_ns, nready FROM io_waits ORDER BY id"
        #expect(try a.rows(io) == b.rows(io))
    }

    @Test func ioWaitsWithTimeouts() throws {
        #expect(try Fixture.slices.summary.ioWaits == 4)
        let store = try Fixture.slices.store()
        let rows = try store.rows("SELECT id, thread_key, start_ns, end_ns, timeout_ns, nready FROM io_waits ORDER BY id")
        #expect(
            rows == [
                [.int(rowID(0)), .int(key(10)), .int(0), .int(100), .null, .int(1)],  // wait forever
                [.int(rowID(1)), .int(key(10)), .int(520), .int(580), .int(1000), .int(2)],
                [.int(rowID(2)), .int(key(10)), .int(1500), .int(2000), .null, .int(0)],
                [.int(rowID(3)), .int(key(10)), .int(2400), .int(2450), .int(0), .int(1)],  // a poll: timeout 0, not NULL
            ])
    }

    /// An I/O wait still open when the recording stops ends at the thread's last event,
    /// with nready NULL (it never returned).
    @Test func unfinishedIOWait() throws {
        let tr = ScriptedTrace()
        tr.at(0, 7, .running(gt: 1, hub: 1))
        tr.at(100, 7, .switchTo(to: 2, reason: .spawn, readyDelta: 0))
        tr.at(200, 7, .switchToHub)
        tr.at(300, 7, .ioWaitBegin(timeout: 5_000))
        tr.at(900, 7, .greenthreadExit(gt: 2))
        tr.flush()  // killed: no End
        let dir = TempDir()
        let summary = try importTrace(tr, in: dir)
        #expect(!summary.cleanEnd)
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(
            try store.rows("SELECT start_ns, end_ns, timeout_ns, nready FROM io_waits") == [
                [.int(300), .int(900), .int(5_000), .null]
            ])
        #expect(try store.rows("SELECT clean_end, duration_ns FROM traces") == [[.int(0), .int(900)]])
    }

    @Test func traceRowAndMetadata() throws {
        let summary = try Fixture.slices.summary
        let store = try Fixture.slices.store()
        let dir = Fixture.slices.dir
        let rows = try store.rows(
            """
            SELECT id, runtime, runtime_version, pid, argv, threshold_ns, sample_interval_ns, start_mono_ns, anchor_wall_ns,
                   duration_ns, events, chunks, file_bytes, bytes_lost, clean_end FROM traces
            """)
        #expect(
            rows == [
                [
                    .int(1), .text("eventlet"), .text("0.36.1"), .int(4242), .text("[\"python3\",\"app.py\"]"),
                    .int(10_000_000), .int(1_000_000), .int(Int64(anchor)), .int(1_700_000_000_000_000_000),
                    .int(3000), .int(Int64(summary.events)), .int(Int64(summary.chunks)),
                    .int(Int64(contents(dir.file("t.trace")).count)), .int(0), .int(1),
                ]
            ])
        #expect(summary.events == 32)  // 31 scripted events and End
        #expect(try store.rows("SELECT value FROM trace_metadata WHERE key = 'clock'") == [[.text("CLOCK_MONOTONIC")]])
        #expect(try store.int("SELECT COUNT(*) FROM trace_metadata") == 9)
    }
}

@Suite struct EdgeCaseTests {
    /// Recording began inside a greenthread: its first slice has no ready time and reason 0
    /// (unknown); the hub was learnt from the same `Running` event.
    @Test func recordingStartsInsideAGreenthread() throws {
        let tr = ScriptedTrace()
        tr.at(50, 10, .running(gt: 2, hub: 1))
        tr.at(300, 10, .switchToHub)
        tr.at(400, 10, .switchTo(to: 2, reason: .timer, readyDelta: 20))
        tr.at(450, 10, .switchTo(to: 1, reason: .other, readyDelta: 0))
        tr.finish(at: 500)
        let dir = TempDir()
        try importTrace(tr, in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(
            try store.rows("SELECT gt_key, ready_ns, start_ns, end_ns, reason, prev_id FROM slices ORDER BY id") == [
                [.int(key(2)), .null, .int(50), .int(300), .int(0), .null],
                [.int(key(2)), .int(380), .int(400), .int(450), .int(1), .int(rowID(0))],
            ])
        #expect(
            try store.rows("SELECT gt, is_hub, created_ns, run_ns, ready_wait_ns FROM greenthreads ORDER BY gt") == [
                [.int(1), .int(1), .null, .int(0), .int(0)],
                [.int(2), .int(0), .null, .int(300), .int(20)],
            ])
    }

    /// The `threads` table lists OS threads; thread 0 ("none", the End marker's chunk) is not one.
    @Test func noThreadZero() throws {
        let summary = try Fixture.slices.summary
        let store = try Fixture.slices.store()
        #expect(try store.rows("SELECT tid FROM threads") == [[.int(10)]])
        #expect(summary.threads == 1)
    }

    /// Without an `anchor_mono_ns` key, time 0 is the metadata chunk's base_ns, which the spec
    /// (§3) makes the anchor: times are still relative to the trace start.
    @Test func anchorFromTheMetadataChunkWhenTheKeyIsMissing() throws {
        final class Sink { var bytes: [UInt8] = [] }
        let sink = Sink()
        let b = TraceBuilder(
            metadata: [MetadataEntry("runtime", .string("gevent"))], anchorTime: anchor, sink: { sink.bytes += $0 })
        b.append(TraceEvent(time: anchor + 100, .running(gt: 1, hub: 1)), thread: 10)
        b.append(TraceEvent(time: anchor + 200, .switchTo(to: 2, reason: .spawn, readyDelta: 10)), thread: 10)
        b.append(TraceEvent(time: anchor + 700, .switchToHub), thread: 10)
        b.finish(at: anchor + 1000)
        let dir = TempDir()
        FileManager.default.createFile(atPath: dir.file("t.trace"), contents: Data(sink.bytes))
        try TraceImporter.run(ImportOptions(tracePath: dir.file("t.trace"), databasePath: dir.file("t.db")))
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(
            try store.rows("SELECT start_mono_ns, duration_ns, runtime FROM traces") == [
                [.int(Int64(anchor)), .int(1000), .text("gevent")]
            ])
        #expect(try store.rows("SELECT ready_ns, start_ns, end_ns FROM slices") == [[.int(190), .int(200), .int(700)]])
    }
}

@Suite struct ManyGreenthreadsTests {
    /// Over 10 000 greenthreads exit, so the importer writes and forgets exited ones during the
    /// import (bounded memory); their rows must be the same as if kept to the end. gt 1 000 000
    /// runs before and after every flush and keeps its whole slice chain.
    @Test func exitedGreenthreadsFlushedMidImport() throws {
        let n = 10_500
        let tr = ScriptedTrace()
        let th: UInt32 = 10
        tr.at(0, th, .running(gt: 1, hub: 1))
        var t: Int64 = 10
        for i in 0..<n {
            let gt = UInt32(100 + i)
            tr.at(t, th, .greenthreadCreate(gt: gt, name: 0, spawnStack: 0, parent: 1))
            tr.at(t + 5, th, .switchTo(to: gt, reason: .spawn, readyDelta: 5))
            tr.at(t + 25, th, .switchToHub)
            tr.at(t + 25, th, .greenthreadExit(gt: gt))
            if i % 100 == 0 {
                tr.at(t + 30, th, .switchTo(to: 1_000_000, reason: .timer, readyDelta: 2))
                tr.at(t + 40, th, .switchToHub)
            }
            t += 50
        }
        tr.finish(at: t)
        let dir = TempDir()
        let summary = try importTrace(tr, in: dir)
        #expect(summary.greenthreads == n + 1)
        let store = try TraceStore(path: dir.file("t.db"))
        let totals = try store.rows(
            """
            SELECT COUNT(*), SUM(slices), SUM(run_ns), SUM(ready_wait_ns), COUNT(exited_ns), MIN(created_ns), COUNT(last_slice_id)
            FROM greenthreads WHERE gt >= 100 AND gt < 1000000
            """)
        let count = Int64(n)
        let want: [SQLValue] = [.int(count), .int(count), .int(count * 20), .int(count * 5), .int(count), .int(10), .int(count)]
        #expect(totals == [want])
        let long = Int64((n + 99) / 100)  // i = 0, 100, …, 10 400
        #expect(
            try store.rows("SELECT slices, run_ns, ready_wait_ns, exited_ns FROM greenthreads WHERE gt = 1000000") == [
                [.int(long), .int(long * 10), .int(long * 2), .null]
            ])
        let all = try store.greenthreadSlices(gtKey: key(1_000_000), from: 0, to: t)
        #expect(all.count == Int(long))
        let starts: [Int64] = (0..<long).map { 10 + $0 * 100 * 50 + 30 }
        #expect(all.map(\.startNs) == starts)
        // A flushed greenthread's one slice is still found.
        let one: Int64 = 10 + 5_000 * 50 + 5
        #expect(try store.greenthreadSlices(gtKey: key(100 + 5_000), from: 0, to: t).map(\.startNs) == [one])
    }
}
