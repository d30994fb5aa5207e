// Stalls, their samples, call sites and victims, on a hand-built trace with known answers.

import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport
import UnclogTrace

/// Thread 10 (hub 1) runs greenthreads 2…5; the watchdog (thread 99) samples stalled stacks.
///
/// Stall 1: gt 2 runs [10 ms, 70 ms] — 60 ms. The watchdog's StallBegin (at 25 ms) and samples
///   at 30 ms (A), 40 ms (A) reach the file BEFORE thread 10's chunk holding the StallEnd;
///   samples at 50 ms (B) and 60 ms (A) come AFTER it. Representative stack A (3 of 4
///   samples): call site `fetch app.py:42` (its innermost frame, `recv`, is internal).
///   Victims: gt 3, ready since 20 ms, resumed at 70 ms → 50 ms; gt 4, ready since 5 ms,
///   resumed at 72 ms → 60 ms (the overlap with the stall only). gt 5, ready at 71 ms (after
///   the stall), is no victim; gt 2 itself, ready again at 40 ms (during its own stall), is
///   not its own victim.
/// Stall 2: gt 3 [100 ms, 125 ms], no samples: stack = end stack C → `handler app.py:10`.
/// Stall 3: gt 4 [130 ms, 145 ms], end stack D is all runtime code → innermost frame `switch`.
/// Stall 4: gt 5 starts at 200 ms; the watchdog sees it (StallBegin since 20 ms at 220 ms,
///   samples B at 230 and 240 ms), then the program is killed: an incomplete stall
///   [200 ms, 240 ms] with call site `parse app.py:77`.
/// Also: a sample of thread 10 at 90 ms (no stall then) and one of thread 11 (never stalled)
///   belong to no stall.
struct StallScenario {
    let trace = ScriptedTrace()
    var stackA: UInt32 = 0, stackB: UInt32 = 0, stackC: UInt32 = 0, stackD: UInt32 = 0

    init(killed: Bool = true) {
        let tr = trace
        let th: UInt32 = 10, wd: UInt32 = 99
        let sym = Symbols(tr, thread: th)
        let recv = sym.frame("recv", "eventlet/greenio/base.py", 120, isInternal: true)
        let sw = sym.frame("switch", "eventlet/hubs/hub.py", 300, isInternal: true)
        let fetch = sym.frame("fetch", "app.py", 42)
        let handler = sym.frame("handler", "app.py", 10)
        let main = sym.frame("main", "app.py", 3)
        let parse = sym.frame("parse", "app.py", 77)
        stackA = sym.stack([recv, fetch, handler, main])
        stackB = sym.stack([parse, handler, main])
        stackC = sym.stack([sw, handler, main])
        stackD = sym.stack([sw, recv])
        for (gt, name) in [(2, "worker-2"), (3, "worker-3"), (4, "worker-4"), (5, "worker-5")] as [(UInt32, String)] {
            tr.at(0, th, .greenthreadCreate(gt: gt, name: sym.string(name), spawnStack: 0, parent: 0))
        }
        tr.at(0, wd, .thread(tid: wd, name: sym.string("unclog-watchdog")))

        tr.at(0, th, .running(gt: 1, hub: 1))
        tr.at(ms(10), th, .switchTo(to: 2, reason: .io, readyDelta: UInt64(ms(1))))
        // The watchdog's first chunk is written while gt 2 still stalls.
        tr.at(ms(25), wd, .stallBegin(tid: th, gt: 2, sinceDelta: UInt64(ms(15))))
        tr.at(ms(30), wd, .stallSample(tid: th, stack: stackA, state: 1))
        tr.at(ms(40), wd, .stallSample(tid: th, stack: stackA, state: 2 + 45))
        tr.flush()
        tr.at(ms(70), th, .stallEnd(gt: 2, duration: UInt64(ms(60)), stack: stackC))
        tr.at(ms(70), th, .switchToHub)
        tr.at(ms(70), th, .switchTo(to: 3, reason: .timer, readyDelta: UInt64(ms(50))))
        tr.at(ms(72), th, .switchToHub)
        tr.at(ms(72), th, .switchTo(to: 4, reason: .io, readyDelta: UInt64(ms(67))))
        tr.at(ms(75), th, .switchToHub)
        tr.at(ms(75), th, .switchTo(to: 5, reason: .io, readyDelta: UInt64(ms(4))))
        tr.at(ms(76), th, .switchToHub)
        tr.at(ms(80), th, .switchTo(to: 2, reason: .timer, readyDelta: UInt64(ms(40))))
        tr.at(ms(81), th, .switchToHub)
        tr.flush()
        // The rest of stall 1's samples, written after its StallEnd.
        tr.at(ms(50), wd, .stallSample(tid: th, stack: stackB, state: 1))
        tr.at(ms(60), wd, .stallSample(tid: th, stack: stackA, state: 1))
        tr.at(ms(90), wd, .stallSample(tid: th, stack: stackB, state: 1))  // no stall at 90 ms
        tr.at(ms(91), wd, .stallSample(tid: 11, stack: stackB, state: 1))  // thread 11 never stalled
        tr.flush()

        tr.at(ms(100), th, .switchTo(to: 3, reason: .timer, readyDelta: 0))
        tr.at(ms(125), th, .stallEnd(gt: 3, duration: UInt64(ms(25)), stack: stackC))
        tr.at(ms(125), th, .switchToHub)
        tr.at(ms(130), th, .switchTo(to: 4, reason: .timer, readyDelta: 0))
        tr.at(ms(145), th, .stallEnd(gt: 4, duration: UInt64(ms(15)), stack: stackD))
        tr.at(ms(145), th, .switchToHub)
        tr.at(ms(200), th, .switchTo(to: 5, reason: .io, readyDelta: UInt64(ms(1))))
        tr.flush()
        tr.at(ms(220), wd, .stallBegin(tid: th, gt: 5, sinceDelta: UInt64(ms(20))))
        tr.at(ms(230), wd, .stallSample(tid: th, stack: stackB, state: 1))
        tr.at(ms(240), wd, .stallSample(tid: th, stack: stackB, state: 1))
        if killed { tr.flush() } else { tr.finish(at: ms(250)) }
    }
}

@Suite struct StallTests {
    /// The shared import of the default scenario, or a fresh import of `s`.
    func imported(_ s: StallScenario? = nil) throws -> (TraceStore, ImportSummary, TempDir) {
        guard let s else { return (try Fixture.stalls.store(), try Fixture.stalls.summary, Fixture.stalls.dir) }
        let dir = TempDir()
        let summary = try importTrace(s.trace, in: dir)
        return (try TraceStore(path: dir.file("t.db")), summary, dir)
    }

    @Test func exactStallRows() throws {
        let (store, summary, _) = try imported()
        #expect(summary.stalls == 4)
        #expect(summary.samples == 8)
        #expect(!summary.cleanEnd)
        let rows = try store.rows(
            """
            SELECT thread_key, gt_key, start_ns, end_ns, duration_ns, samples, complete FROM stalls ORDER BY start_ns
            """)
        #expect(
            rows == [
                [.int(key(10)), .int(key(2)), .int(ms(10)), .int(ms(70)), .int(ms(60)), .int(4), .int(1)],
                [.int(key(10)), .int(key(3)), .int(ms(100)), .int(ms(125)), .int(ms(25)), .int(0), .int(1)],
                [.int(key(10)), .int(key(4)), .int(ms(130)), .int(ms(145)), .int(ms(15)), .int(0), .int(1)],
                [.int(key(10)), .int(key(5)), .int(ms(200)), .int(ms(240)), .int(ms(40)), .int(2), .int(0)],
            ])
    }

    /// Samples written before and after the StallEnd in the file are all attached; samples
    /// outside every stall stay unattached.
    @Test func samplesMatchedByTime() throws {
        let s = StallScenario()  // the same ids as the shared import
        let (store, _, _) = try imported()
        let rows = try store.rows(
            """
            SELECT m.ts_ns, m.thread_key, m.stack_key, m.state, st.start_ns FROM stall_samples m
            LEFT JOIN stalls st ON st.id = m.stall_id ORDER BY m.ts_ns
            """)
        let a = Int64(s.stackA), b = Int64(s.stackB)
        #expect(
            rows == [
                [.int(ms(30)), .int(key(10)), .int(key(a)), .int(1), .int(ms(10))],
                [.int(ms(40)), .int(key(10)), .int(key(a)), .int(47), .int(ms(10))],
                [.int(ms(50)), .int(key(10)), .int(key(b)), .int(1), .int(ms(10))],
                [.int(ms(60)), .int(key(10)), .int(key(a)), .int(1), .int(ms(10))],
                [.int(ms(90)), .int(key(10)), .int(key(b)), .int(1), .null],
                [.int(ms(91)), .int(key(11)), .int(key(b)), .int(1), .null],
                [.int(ms(230)), .int(key(10)), .int(key(b)), .int(1), .int(ms(200))],
                [.int(ms(240)), .int(key(10)), .int(key(b)), .int(1), .int(ms(200))],
            ])
    }

    @Test func representativeStackAndCallSite() throws {
        let s = StallScenario()  // the same ids as the shared import
        let (store, _, _) = try imported()
        let rows = try store.rows(
            """
            SELECT s.start_ns, s.stack_key, st.end_stack_key, s.function, s.file, s.line
            FROM stall_sites s JOIN stalls st ON st.id = s.stall_id ORDER BY s.start_ns
            """)
        #expect(
            rows == [
                // Most-sampled stack A (3 of 4); its internal innermost frame is skipped.
                [
                    .int(ms(10)), .int(key(Int64(s.stackA))), .int(key(Int64(s.stackC))), .text("fetch"), .text("app.py"),
                    .int(42),
                ],
                // No samples: the end stack, internal `switch` skipped.
                [
                    .int(ms(100)), .int(key(Int64(s.stackC))), .int(key(Int64(s.stackC))), .text("handler"), .text("app.py"),
                    .int(10),
                ],
                // Only runtime frames: the innermost one.
                [
                    .int(ms(130)), .int(key(Int64(s.stackD))), .int(key(Int64(s.stackD))), .text("switch"),
                    .text("eventlet/hubs/hub.py"), .int(300),
                ],
                // Killed inside the stall: no end stack, the samples decide.
                [.int(ms(200)), .int(key(Int64(s.stackB))), .null, .text("parse"), .text("app.py"), .int(77)],
            ])
    }

    @Test func stallInfoThroughTheLibrary() throws {
        let (store, _, _) = try imported()
        let stalls = try store.stalls()
        #expect(stalls.map(\.durationNs) == [ms(60), ms(40), ms(25), ms(15)])  // longest first
        let first = try #require(stalls.first)
        #expect(first.traceID == 1)
        #expect(first.greenthreadID == 2)
        #expect(first.greenthreadName == "worker-2")
        #expect(first.threadID == 10)
        #expect(first.startNs == ms(10))
        #expect(first.function == "fetch" && first.file == "app.py" && first.line == 42)
        #expect(first.samples == 4)
        #expect(first.victims == 2)
        #expect(first.victimWaitNs == ms(50) + ms(60))
        #expect(first.complete)
        #expect(first.stack.map(\.function) == ["recv", "fetch", "handler", "main"])
        #expect(first.stack.map(\.isInternal) == [true, false, false, false])
        #expect(first.stack.map(\.line) == [120, 42, 10, 3])
        let killed = stalls[1]
        #expect(!killed.complete && killed.greenthreadID == 5 && killed.function == "parse")

        #expect(try store.stalls(minDuration: ms(25)).map(\.durationNs) == [ms(60), ms(40), ms(25)])
        #expect(try store.stalls(minDuration: ms(25) + 1).count == 2)
        #expect(try store.stalls(limit: 1).map(\.durationNs) == [ms(60)])
        #expect(try store.stalls(traceID: 2).isEmpty)
    }

    @Test func victims() throws {
        let (store, _, _) = try imported()
        let rows = try store.rows(
            """
            SELECT st.start_ns, v.gt, v.name, v.ready_ns, v.resumed_ns, v.wait_ns FROM victims v
            JOIN stalls st ON st.id = v.stall_id ORDER BY st.start_ns, v.gt
            """)
        #expect(
            rows == [
                [.int(ms(10)), .int(3), .text("worker-3"), .int(ms(20)), .int(ms(70)), .int(ms(50))],
                [.int(ms(10)), .int(4), .text("worker-4"), .int(ms(5)), .int(ms(72)), .int(ms(60))],
            ])
        let totals = try store.rows("SELECT start_ns, victims, victim_wait_ns FROM stalls ORDER BY start_ns")
        #expect(
            totals == [
                [.int(ms(10)), .int(2), .int(ms(110))],
                [.int(ms(100)), .int(0), .int(0)],
                [.int(ms(130)), .int(0), .int(0)],
                [.int(ms(200)), .int(0), .int(0)],
            ])
        let suffered = try store.rows(
            "SELECT gt, stall_wait_ns_suffered, stalls_caused, stall_ns_caused FROM greenthread_summary WHERE is_hub = 0 ORDER BY gt"
        )
        #expect(
            suffered == [
                [.int(2), .int(0), .int(1), .int(ms(60))],
                [.int(3), .int(ms(50)), .int(1), .int(ms(25))],
                [.int(4), .int(ms(60)), .int(1), .int(ms(15))],
                [.int(5), .int(0), .int(1), .int(ms(40))],
            ])
    }

    /// With a clean end (no kill) the watchdog-only stall still has no StallEnd: incomplete too.
    @Test func stallBeginWithoutEndAfterCleanFinish() throws {
        let (store, summary, _) = try imported(StallScenario(killed: false))
        #expect(summary.cleanEnd)
        let rows = try store.rows("SELECT start_ns, end_ns, complete, samples FROM stalls WHERE gt_key = ?", [.int(key(5))])
        // The thread's last event was the switch at 200 ms; the last sample at 240 ms closes it.
        #expect(rows == [[.int(ms(200)), .int(ms(240)), .int(0), .int(2)]])
    }

    /// A StallBegin for a stall that did end (StallEnd present) adds no second stall, whether
    /// the watchdog's chunk comes before or after the StallEnd in the file.
    @Test func stallBeginOfAFinishedStallIsNotDuplicated() throws {
        for watchdogFirst in [true, false] {
            let tr = ScriptedTrace()
            tr.at(0, 10, .running(gt: 1, hub: 1))
            tr.at(ms(1), 10, .switchTo(to: 2, reason: .timer, readyDelta: 0))
            if watchdogFirst {
                tr.at(ms(12), 99, .stallBegin(tid: 10, gt: 2, sinceDelta: UInt64(ms(11))))
                tr.flush()
            }
            tr.at(ms(30), 10, .stallEnd(gt: 2, duration: UInt64(ms(29)), stack: 0))
            tr.at(ms(30), 10, .switchToHub)
            tr.flush()
            if !watchdogFirst {
                tr.at(ms(12), 99, .stallBegin(tid: 10, gt: 2, sinceDelta: UInt64(ms(11))))
            }
            tr.finish(at: ms(40))
            let dir = TempDir()
            let summary = try importTrace(tr, in: dir)
            let store = try TraceStore(path: dir.file("t.db"))
            #expect(
                try store.rows("SELECT start_ns, duration_ns, complete, stack_key FROM stalls") == [
                    [.int(ms(1)), .int(ms(29)), .int(1), .null]
                ], "watchdog first: \(watchdogFirst)")
            #expect(summary.stalls == 1)
            // No stack at all: the call site is unknown, not an error.
            let s = try #require(try store.stalls().first)
            #expect(s.function == nil && s.stack.isEmpty)
        }
    }

    /// Victims on one thread are not charged to a stall of another thread.
    @Test func victimsOnlyOnTheStalledThread() throws {
        let tr = ScriptedTrace()
        tr.at(0, 10, .running(gt: 1, hub: 1))
        tr.at(0, 20, .running(gt: 101, hub: 101))
        tr.at(ms(1), 10, .switchTo(to: 2, reason: .timer, readyDelta: 0))
        tr.at(ms(31), 10, .stallEnd(gt: 2, duration: UInt64(ms(30)), stack: 0))
        tr.at(ms(31), 10, .switchToHub)
        tr.at(ms(32), 10, .switchTo(to: 3, reason: .timer, readyDelta: UInt64(ms(22))))  // ready at 10 ms: victim
        tr.at(ms(40), 20, .switchTo(to: 102, reason: .timer, readyDelta: UInt64(ms(30))))  // other thread: not a victim
        tr.finish(at: ms(50))
        let dir = TempDir()
        try importTrace(tr, in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(
            try store.rows("SELECT gt_key, ready_ns, resumed_ns, wait_ns FROM stall_victims") == [
                [.int(key(3)), .int(ms(10)), .int(ms(32)), .int(ms(21))]
            ])
    }

    /// Swift Concurrency's workers are one pool: a stall on one worker also charges the jobs
    /// that waited through it on the others (schema.sql, stall_victims), whichever of the two
    /// threads' chunks the file holds first. Event-loop threads (with a hub) and the main thread
    /// are not in the pool.
    @Test(arguments: [false, true])
    func poolVictimsAcrossWorkers(stallThreadFirst: Bool) throws {
        let tr = ScriptedTrace(runtime: "swift-concurrency")
        // chunks are flushed in thread id order: the stalled worker's id decides which is first
        let a: UInt32 = stallThreadFirst ? 10 : 40
        tr.at(0, a, .running(gt: 0, hub: 0))
        tr.at(0, 20, .running(gt: 0, hub: 0))
        tr.at(0, 30, .running(gt: 0, hub: 900))  // an event loop's thread
        tr.at(0, 4242, .running(gt: 0, hub: 0))  // the main thread (tid = pid): main-queue jobs
        func job(_ thread: UInt32, _ gt: UInt32, ready: Int64, start: Int64, end: Int64) {
            tr.at(start, thread, .switchTo(to: gt, reason: .other, readyDelta: UInt64(start - ready)))
            if end - start > ms(10) { tr.at(end, thread, .stallEnd(gt: gt, duration: UInt64(end - start), stack: 0)) }
            tr.at(end, thread, .switchToHub)
        }
        job(a, 2, ready: ms(1), start: ms(1), end: ms(31))  // the stall: 1-31 ms
        job(20, 3, ready: ms(10), start: ms(20), end: ms(21))  // waited 10-20: all of it in the stall
        job(20, 4, ready: ms(25), start: ms(40), end: ms(41))  // waited 25-40: 6 ms in the stall
        job(20, 5, ready: ms(35), start: ms(36), end: ms(37))  // ready after the stall: no victim
        job(20, 2, ready: ms(31), start: ms(42), end: ms(43))  // the staller itself: no victim
        job(30, 6, ready: ms(5), start: ms(30), end: ms(30) + 1)  // on the loop thread: not the pool's
        job(4242, 8, ready: ms(5), start: ms(25), end: ms(26))  // on the main thread: not the pool's
        job(a, 7, ready: ms(20), start: ms(32), end: ms(33))  // same thread, after it: victim
        tr.finish(at: ms(50))
        let dir = TempDir()
        try importTrace(tr, in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(
            try store.rows("SELECT gt_key, ready_ns, resumed_ns, wait_ns FROM stall_victims ORDER BY gt_key") == [
                [.int(key(3)), .int(ms(10)), .int(ms(20)), .int(ms(10))],
                [.int(key(4)), .int(ms(25)), .int(ms(40)), .int(ms(6))],
                [.int(key(7)), .int(ms(20)), .int(ms(32)), .int(ms(11))],
            ])
        #expect(try store.rows("SELECT victims, victim_wait_ns FROM stalls") == [[.int(3), .int(ms(27))]])
    }

    /// A greenthread resumed more than the 10 s horizon after a stall ended is not its victim
    /// (schema.sql, stall_victims).
    @Test func victimHorizon() throws {
        let tr = ScriptedTrace()
        tr.at(0, 10, .running(gt: 1, hub: 1))
        tr.at(ms(10), 10, .switchTo(to: 2, reason: .timer, readyDelta: 0))
        tr.at(ms(70), 10, .stallEnd(gt: 2, duration: UInt64(ms(60)), stack: 0))
        tr.at(ms(70), 10, .switchToHub)
        // Ready since 20 ms (inside the stall) but resumed 11 s after it ended.
        let resumed = ms(70) + 11_000_000_000
        tr.at(resumed, 10, .switchTo(to: 3, reason: .timer, readyDelta: UInt64(resumed - ms(20))))
        tr.at(resumed + ms(1), 10, .switchToHub)
        tr.finish(at: resumed + ms(2))
        let dir = TempDir()
        try importTrace(tr, in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(try store.int("SELECT COUNT(*) FROM stall_victims") == 0)
        #expect(try store.rows("SELECT victims, victim_wait_ns FROM stalls") == [[.int(0), .int(0)]])
    }
}

@Suite struct OddButValidTraces {
    /// A greenthread reported ready since the same instant on two switches (a recorder that
    /// repeats the original wake-up time): the import must not fail on the repeated
    /// (stall, greenthread, ready) victim and counts the stall's wait on it once.
    @Test func sameReadyTimeTwice() throws {
        let tr = ScriptedTrace()
        tr.at(0, 10, .running(gt: 1, hub: 1))
        tr.at(ms(10), 10, .switchTo(to: 2, reason: .timer, readyDelta: 0))
        tr.at(ms(70), 10, .stallEnd(gt: 2, duration: UInt64(ms(60)), stack: 0))
        tr.at(ms(70), 10, .switchToHub)
        tr.at(ms(70), 10, .switchTo(to: 3, reason: .timer, readyDelta: UInt64(ms(50))))  // ready since 20 ms
        tr.at(ms(71), 10, .switchToHub)
        tr.at(ms(72), 10, .switchTo(to: 3, reason: .timer, readyDelta: UInt64(ms(52))))  // "ready since 20 ms" again
        tr.at(ms(73), 10, .switchToHub)
        tr.finish(at: ms(80))
        let dir = TempDir()
        let summary = try importTrace(tr, in: dir)
        #expect(summary.stalls == 1)
        let store = try TraceStore(path: dir.file("t.db"))
        #expect(
            try store.rows("SELECT gt_key, ready_ns, resumed_ns, wait_ns FROM stall_victims") == [
                [.int(key(3)), .int(ms(20)), .int(ms(70)), .int(ms(50))]
            ])
        #expect(try store.rows("SELECT victims, victim_wait_ns FROM stalls") == [[.int(1), .int(ms(50))]])
    }
}

/// A stall inside the standard library is charged to the program's line that called it.
@Suite struct LibraryFrameAttribution {
    @Test func programFrameWinsOverLibraryFrames() throws {
        let dir = TempDir()
        let t0: UInt64 = 1_000_000_000
        var bytes: [UInt8] = []
        let b = TraceBuilder(metadata: [MetadataEntry("anchor_mono_ns", .uint(t0))], anchorTime: t0) { bytes += $0 }
        let th: UInt32 = 7
        func s(_ id: UInt32, _ v: String) { b.append(TraceEvent(time: t0, .string(id: id, value: v)), thread: th) }
        s(1, "Popen._try_wait"); s(2, "/usr/lib/python3.11/subprocess.py"); s(3, "crawl"); s(4, "/srv/app.py")
        s(5, "hub.switch"); s(6, "/venv/eventlet/hubs/hub.py")
        b.append(TraceEvent(time: t0, .frame(id: 1, flags: .library, function: 1, file: 2, line: 2004)), thread: th)
        b.append(TraceEvent(time: t0, .frame(id: 2, flags: [], function: 3, file: 4, line: 42)), thread: th)
        b.append(TraceEvent(time: t0, .frame(id: 3, flags: .internal, function: 5, file: 6, line: 9)), thread: th)
        // Stack 1: library frame innermost, then the program's line. Stack 2: library and runtime only.
        b.append(TraceEvent(time: t0, .stack(id: 1, frames: [1, 2, 3])), thread: th)
        b.append(TraceEvent(time: t0, .stack(id: 2, frames: [3, 1, 3])), thread: th)
        b.append(TraceEvent(time: t0, .running(gt: 1, hub: 1)), thread: th)
        b.append(TraceEvent(time: t0 + 1_000, .switchTo(to: 2, reason: .io, readyDelta: 0)), thread: th)
        b.append(TraceEvent(time: t0 + 101_000_000, .stallEnd(gt: 2, duration: 101_000_000 - 1_000, stack: 1)), thread: th)
        b.append(TraceEvent(time: t0 + 101_000_000, .switchToHub), thread: th)
        b.append(TraceEvent(time: t0 + 102_000_000, .switchTo(to: 3, reason: .io, readyDelta: 0)), thread: th)
        b.append(TraceEvent(time: t0 + 202_000_000, .stallEnd(gt: 3, duration: 100_000_000, stack: 2)), thread: th)
        b.append(TraceEvent(time: t0 + 202_000_000, .switchToHub), thread: th)
        b.finish(at: t0 + 203_000_000)
        let trace = dir.file("lib.trace"), db = dir.file("lib.db")
        #expect(FileManager.default.createFile(atPath: trace, contents: Data(bytes)))
        _ = try TraceImporter.run(ImportOptions(tracePath: trace, databasePath: db))
        let stalls = try TraceStore(path: db).stalls()
        let byGreenthread = Dictionary(uniqueKeysWithValues: stalls.map { ($0.greenthreadID, $0) })
        #expect(byGreenthread[2]?.function == "crawl")
        #expect(byGreenthread[2]?.line == 42)
        #expect(byGreenthread[3]?.function == "Popen._try_wait")
        #expect(byGreenthread[3]?.file == "/usr/lib/python3.11/subprocess.py")
    }
}
