// The timeline rebuild: a pure state machine from decoded events to records (slices, I/O
// waits, stalls and their victims, samples, greenthreads, threads, definitions), handed to a
// `TimelineSink` one at a time. No SQLite here, and the tests drive it with events alone.
// Memory is bounded by live greenthreads, plus 16 bytes per stall (each thread's stall spans,
// to tell at the end which stalls the watchdog saw begin never ended).

import UnclogTrace

/// Per OS thread: who runs now, since when, and what recently stalled it.
final class ThreadState {
    let tid: UInt32
    var hub: UInt32 = 0
    var name: UInt32?
    /// The greenthread running now (0: the hub or unknown) and its slice so far.
    var current: UInt32 = 0
    var sliceStart: Int64 = 0
    var sliceReady: Int64?
    var sliceReason: SwitchReason?
    var ioStart: Int64?
    var ioTimeout: Int64?
    var lastTime: Int64 = 0
    var slices = 0
    var ios = 0
    var busyNs: Int64 = 0
    var ioWaitNs: Int64 = 0
    /// Stalls whose victims may still start running: (id, start, end, greenthread).
    var recentStalls: [(id: Int64, start: Int64, end: Int64, gt: UInt32)] = []
    /// The latest end among `recentStalls`: a greenthread ready after it is nobody's victim.
    var recentStallsEnd = Int64.min
    /// Every stall of this thread, to tell at the end which `StallBegin`s never got theirs.
    var stallSpans: [(start: Int64, end: Int64)] = []

    init(tid: UInt32) { self.tid = tid }
}

/// Per greenthread: totals and the tail of its slice chain.
final class GreenthreadState {
    var lastSlice: Int64?
    /// When its last slice ended (it was not ready to run before that).
    var lastEnd = Int64.min
    var slices = 0
    var runNs: Int64 = 0
    var readyWaitNs: Int64 = 0
    var created: Int64?
    var exited: Int64?
    var name: UInt32?
    var spawnStack: UInt32?
    var parent: UInt32?
    var isHub = false
}

/// What the rebuild counted, for the import summary.
struct RebuildCounts: Equatable, Sendable {
    var events = 0
    var slices = 0
    var ioWaits = 0
    var stalls = 0
    var samples = 0
    var eventsDropped: UInt64 = 0
    var recorderErrors: UInt64 = 0
    var cleanEnd = false
    var skippedEvents = 0
    /// OS threads with a row (known at the end).
    var threads = 0
}

/// Turns the events of one trace, chunk by chunk in file order, into records.
final class TimelineRebuild<Sink: TimelineSink> {
    let sink: Sink
    /// CLOCK_MONOTONIC time 0 of the trace.
    let start: UInt64
    /// A thread pool runtime (Swift Concurrency): a stall on one worker also keeps waiting the
    /// jobs queued for the others (see `PoolVictims`).
    var pool: PoolVictims?
    private(set) var counts = RebuildCounts()
    /// The latest event time of any thread (the trace's duration).
    private(set) var lastTime: Int64 = 0

    private var threads: [UInt32: ThreadState] = [:]
    private var greenthreads: [UInt32: GreenthreadState] = [:]
    private var exitedCount = 0
    private var nextSlice: Int64 = 0
    private var nextIO: Int64 = 0
    private var nextStall: Int64 = 0
    private var nextSample: Int64 = 0
    private var victimTotals: [Int64: (count: Int64, wait: Int64)] = [:]
    /// Stalls the watchdog saw begin, checked at the end for a missing `StallEnd`.
    private var stallBegins: [(tid: UInt32, gt: UInt32, start: Int64)] = []
    /// The latest stack sample of each thread.
    private var lastSample: [UInt32: Int64] = [:]

    /// Exited greenthreads are handed to the sink and forgotten in batches of this many.
    static var exitedBatch: Int { 10_000 }

    init(start: UInt64, pool: PoolVictims?, sink: Sink) {
        self.start = start
        self.pool = pool
        self.sink = sink
    }

    @inline(__always) private func rel(_ t: UInt64) -> Int64 { Int64(bitPattern: t &- start) }

    private func thread(_ tid: UInt32) -> ThreadState {
        if let t = threads[tid] { return t }
        let t = ThreadState(tid: tid)
        threads[tid] = t
        return t
    }

    @inline(__always)
    private func greenthread(_ gt: UInt32) -> GreenthreadState {
        if let g = greenthreads[gt] { return g }
        let g = GreenthreadState()
        greenthreads[gt] = g
        return g
    }

    /// Consumes the events of one chunk written by thread `tid`.
    func consume(_ events: inout some IteratorProtocol<TraceEvent>, thread tid: UInt32) throws(Sink.Failure) {
        let th = thread(tid)
        while let e = events.next() {
            try event(e, on: th)
        }
        if th.lastTime > lastTime { lastTime = th.lastTime }
    }

    @inline(__always)
    private func event(_ e: TraceEvent, on th: ThreadState) throws(Sink.Failure) {
        counts.events += 1
        let t = rel(e.time)
        th.lastTime = t
        switch e.kind {
        case .switchToHub:
            try closeSlice(th, at: t)
            th.current = 0
        case let .switchTo(to, reason, readyDelta):
            try closeSlice(th, at: t)
            let ready = readyDelta <= e.time ? rel(e.time - readyDelta) : t
            try openSlice(th, gt: to, at: t, ready: ready, reason: reason)
        case let .ioWaitBegin(timeout):
            if let s = th.ioStart { try closeIO(th, start: s, end: t, nready: nil) }
            th.ioStart = t
            th.ioTimeout = timeout.map { Int64(clamping: $0) }
        case let .ioWaitEnd(ready):
            if let s = th.ioStart { try closeIO(th, start: s, end: t, nready: Int64(clamping: ready)) }
        case let .running(gt, hub):
            if hub != 0 {
                th.hub = hub
                greenthread(hub).isHub = true
            }
            let now = gt == th.hub ? 0 : gt
            if now != th.current {
                try closeSlice(th, at: t)
                try openSlice(th, gt: now, at: t, ready: nil, reason: nil)
            }
        case let .stallEnd(gt, duration, stack):
            try addStall(th, gt: gt, start: t - Int64(clamping: duration), end: t, endStack: nonzero(stack), complete: true)
        case let .stallSample(tid, stack, state):
            try sink.sample(
                SampleRecord(id: nextSample, thread: tid, time: t, stack: nonzero(stack), state: Int64(clamping: state)))
            nextSample += 1
            counts.samples += 1
            if t > lastSample[tid] ?? Int64.min { lastSample[tid] = t }
        case let .stallBegin(tid, gt, since):
            if stallBegins.count < 1_000_000 { stallBegins.append((tid, gt, t - Int64(clamping: since))) }
        case let .string(id, value):
            try sink.string(StringRecord(id: id, value: value))
        case let .frame(id, flags, function, file, line):
            try sink.frame(
                FrameRecord(
                    id: id, flags: flags, function: nonzero(function), file: nonzero(file),
                    line: line == 0 ? nil : line, image: nil, address: nil))
        case let .nativeFrame(id, flags, image, address):
            try sink.frame(
                FrameRecord(
                    id: id, flags: flags, function: nil, file: nil, line: nil, image: nonzero(image),
                    address: address))
        case let .stack(id, frames):
            try sink.stack(StackRecord(id: id, frames: frames))
        case let .image(id, path, loadBias, start, end, buildID):
            try sink.image(ImageRecord(id: id, path: nonzero(path), loadBias: loadBias, start: start, end: end, buildID: buildID))
        case let .thread(tid, name):
            thread(tid).name = nonzero(name)
        case let .greenthreadCreate(gt, name, spawnStack, parent):
            let g = greenthread(gt)
            g.created = t
            g.name = nonzero(name)
            g.spawnStack = nonzero(spawnStack)
            g.parent = nonzero(parent)
        case let .greenthreadExit(gt):
            greenthread(gt).exited = t
            exitedCount += 1
            if exitedCount >= Self.exitedBatch { try flushExitedGreenthreads() }
        case let .dropped(reason, count):
            counts.eventsDropped += count
            if reason == 2 { counts.recorderErrors += count }
        case .end:
            counts.cleanEnd = true
        case .skipped:
            counts.skippedEvents += 1
        }
    }

    /// Ends the running greenthread's slice at `t` (hubs have no slices).
    @inline(__always)
    private func closeSlice(_ th: ThreadState, at t: Int64) throws(Sink.Failure) {
        let gt = th.current
        guard gt != 0 else { return }
        let g = greenthread(gt)
        let id = nextSlice
        nextSlice += 1
        try sink.slice(
            SliceRecord(
                id: id, gt: gt, thread: th.tid, ready: th.sliceReady, start: th.sliceStart, end: t,
                reason: th.sliceReason, previous: g.lastSlice, indexInGreenthread: g.slices,
                indexInThread: th.slices, outOfOrder: th.sliceStart < g.lastEnd))
        let run = t - th.sliceStart
        g.runNs += run
        th.busyNs += run
        g.lastSlice = id
        g.lastEnd = t
        g.slices += 1
        th.slices += 1
        counts.slices += 1
    }

    /// Starts a slice of `gt` (0 or the hub: none) and charges recent stalls for its wait.
    @inline(__always)
    private func openSlice(_ th: ThreadState, gt: UInt32, at t: Int64, ready: Int64?, reason: SwitchReason?) throws(Sink.Failure)
    {
        guard gt != 0, gt != th.hub else {
            th.current = 0
            return
        }
        th.current = gt
        th.sliceStart = t
        th.sliceReady = ready
        th.sliceReason = reason
        guard let ready else { return }
        let g = greenthread(gt)
        // A greenthread does not wait while it runs: a ready time before the end of its previous
        // slice (a recorder repeating a stale wake-up time) counts from that end. (Not when that
        // slice is later in time: slices of other threads' chunks can come out of order.)
        let r = g.lastEnd <= t ? max(ready, g.lastEnd) : ready
        th.sliceReady = r
        g.readyWaitNs += t - r
        // Most greenthreads became ready after the last stall ended: one comparison skips the loop.
        if r < th.recentStallsEnd { try chargeVictim(th, gt: gt, ready: r, resumed: t) }
        if pool != nil, th.hub == 0, r < t, pool!.isWorker(th.tid) {
            for (s, wait) in pool!.jobStarted(gt: gt, thread: th.tid, ready: r, start: t) {
                try addVictim(stall: s, gt: gt, ready: r, resumed: t, wait: wait)
            }
        }
    }

    private func addVictim(stall: Int64, gt: UInt32, ready: Int64, resumed: Int64, wait: Int64) throws(Sink.Failure) {
        try sink.victim(VictimRecord(stall: stall, gt: gt, ready: ready, resumed: resumed, wait: wait))
        let old = victimTotals[stall] ?? (0, 0)
        victimTotals[stall] = (old.count + 1, old.wait + wait)
    }

    private func chargeVictim(_ th: ThreadState, gt: UInt32, ready: Int64, resumed: Int64) throws(Sink.Failure) {
        for s in th.recentStalls where s.gt != gt {
            let wait = victimWait(ready: ready, resumed: resumed, stallStart: s.start, stallEnd: s.end)
            if wait > 0 { try addVictim(stall: s.id, gt: gt, ready: ready, resumed: resumed, wait: wait) }
        }
        // Forget stalls whose victims would have waited more than `victimHorizon` after them
        // (their wait is no longer this stall's doing alone), and keep at most 64.
        th.recentStalls.removeAll { resumed - $0.end > victimHorizon }
        if th.recentStalls.count > 64 { th.recentStalls.removeFirst(th.recentStalls.count - 64) }
        th.recentStallsEnd = th.recentStalls.map(\.end).max() ?? Int64.min
    }

    private func closeIO(_ th: ThreadState, start s: Int64, end t: Int64, nready: Int64?) throws(Sink.Failure) {
        try sink.ioWait(
            IOWaitRecord(
                id: nextIO, thread: th.tid, start: s, end: t, timeout: th.ioTimeout, nready: nready,
                indexInThread: th.ios))
        nextIO += 1
        th.ios += 1
        th.ioWaitNs += t - s
        th.ioStart = nil
        counts.ioWaits += 1
    }

    private func addStall(
        _ th: ThreadState, gt: UInt32, start s: Int64, end t: Int64, endStack: UInt32?,
        complete: Bool
    ) throws(Sink.Failure) {
        let id = nextStall
        nextStall += 1
        try sink.stall(StallRecord(id: id, thread: th.tid, gt: gt, start: s, end: t, endStack: endStack, complete: complete))
        th.recentStalls.append((id, s, t, gt))
        th.recentStallsEnd = max(th.recentStallsEnd, t)
        th.stallSpans.append((s, t))
        counts.stalls += 1
        if pool != nil, th.hub == 0, pool!.isWorker(th.tid) {
            for v in pool!.stallEnded(id: id, gt: gt, thread: th.tid, start: s, end: t) {
                try addVictim(stall: id, gt: v.gt, ready: v.ready, resumed: v.start, wait: v.wait)
            }
        }
    }

    private func record(_ gt: UInt32, _ g: GreenthreadState) -> GreenthreadRecord {
        GreenthreadRecord(
            gt: gt, name: g.name, spawnStack: g.spawnStack, parent: g.parent, isHub: g.isHub,
            created: g.created, exited: g.exited, slices: g.slices, runNs: g.runNs,
            readyWaitNs: g.readyWaitNs, lastSlice: g.lastSlice)
    }

    /// Hands over the greenthreads that exited and are not running, and forgets them.
    private func flushExitedGreenthreads() throws(Sink.Failure) {
        let running = Set(threads.values.map(\.current))
        let done = greenthreads.filter { $0.value.exited != nil && !running.contains($0.key) }
        for (gt, g) in done { try sink.greenthread(record(gt, g)) }
        for k in done.keys { greenthreads[k] = nil }
        exitedCount = 0
    }

    /// Closes what the recording left open and hands over the threads, the greenthreads still
    /// known and the victim totals.
    func finish() throws(Sink.Failure) {
        // Close what the recording left open at each thread's last event.
        for th in threads.values {
            try closeSlice(th, at: th.lastTime)
            th.current = 0
            if let s = th.ioStart { try closeIO(th, start: s, end: th.lastTime, nready: nil) }
        }

        // Stalls the watchdog saw begin but whose end was never written (the program died
        // inside them): closed at the last sample or event of that thread, marked incomplete.
        for b in stallBegins {
            let covered = threads[b.tid]?.stallSpans.contains { $0.start <= b.start + 1_000_000 && $0.end >= b.start } ?? false
            if covered { continue }
            let sampled = lastSample[b.tid].flatMap { $0 >= b.start ? $0 : nil } ?? b.start
            let th = thread(b.tid)
            let end = max(sampled, th.lastTime)
            try addStall(th, gt: b.gt, start: b.start, end: max(end, b.start), endStack: nil, complete: false)
        }

        // Thread 0 means "none" (the End marker's chunk): not an OS thread, unless a writer ran
        // greenthreads under it.
        threads = threads.filter { $0.key != 0 || $0.value.slices > 0 || $0.value.ios > 0 }
        for th in threads.values {
            try sink.thread(
                ThreadRecord(
                    tid: th.tid, name: th.name, hub: nonzero(th.hub), slices: th.slices,
                    busyNs: th.busyNs, ioWaitNs: th.ioWaitNs))
        }
        counts.threads = threads.count
        for (gt, g) in greenthreads { try sink.greenthread(record(gt, g)) }
        for (id, v) in victimTotals {
            try sink.victimTotals(VictimTotalsRecord(stall: id, victims: v.count, waitNs: v.wait))
        }
    }
}

/// A recorder id, nil for 0 (the trace format's "none").
@inline(__always)
func nonzero(_ id: UInt32) -> UInt32? { id == 0 ? nil : id }
