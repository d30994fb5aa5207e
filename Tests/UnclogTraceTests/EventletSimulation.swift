// A deterministic simulated Eventlet recording, written with the reference encoder the way
// the Python recorder writes: one hub OS thread switching between greenthreads, I/O waits,
// a watchdog thread whose chunks carry stall begin/samples, per-thread chunk flushing,
// definitions interned globally and written by the thread that first needs them.
// Used by the damage tests (a small one) and the `realistic` conformance vector.

@testable import UnclogTrace

struct EventletSimulation {
    struct Config {
        var seed: UInt64
        var greenthreads: Int
        /// Switches to greenthreads (each is followed by a switch back to the hub).
        var runs: Int
        /// Flush a thread's chunk once its payload reaches this many bytes.
        var chunkBytes: Int
        /// Run indices (0 ..< runs) at which the running greenthread stalls.
        var stallsAt: [Int]
    }

    static let hubTid: UInt32 = 31_337
    static let watchdogTid: UInt32 = 31_338
    static let hubGt: UInt32 = 1
    static let mainGt: UInt32 = 2
    static let thresholdNs: UInt64 = 50_000_000
    static let sampleIntervalNs: UInt64 = 10_000_000
    static let anchorMonoNs: UInt64 = 1_000_000_000_000  // 1000 s of uptime
    static let anchorWallNs: UInt64 = 1_795_000_000_000_000_000  // 2026-11-18, fixed

    static let metadata: [MetadataEntry] = [
        MetadataEntry("clock", .string("CLOCK_MONOTONIC")),
        MetadataEntry("anchor_mono_ns", .uint(anchorMonoNs)),
        MetadataEntry("anchor_wall_ns", .uint(anchorWallNs)),
        MetadataEntry("pid", .uint(4242)),
        MetadataEntry("argv", .list(["python3", "app/main.py", "--port", "8080"])),
        MetadataEntry("hostname", .string("vector-host")),
        MetadataEntry("runtime", .string("eventlet")),
        MetadataEntry("runtime_version", .string("0.36.1")),
        MetadataEntry("language_version", .string("CPython 3.11.7")),
        MetadataEntry("recorder", .string("unclog-vectors 1")),
        MetadataEntry("threshold_ns", .uint(thresholdNs)),
        MetadataEntry("sample_interval_ns", .uint(sampleIntervalNs)),
    ]

    /// A symbolic frame of the simulated program.
    struct FrameSpec: Hashable {
        var function: String
        var file: String
        var line: UInt64
        var isInternal: Bool
    }

    static let gtMain = FrameSpec(function: "main", file: "eventlet/greenthread.py", line: 265, isInternal: true)
    static let spawnN = FrameSpec(function: "spawn_n", file: "eventlet/greenpool.py", line: 102, isInternal: true)
    static let serve = FrameSpec(function: "serve", file: "app/server.py", line: 20, isInternal: false)
    static let handle = FrameSpec(function: "handle", file: "app/server.py", line: 41, isInternal: false)
    static let fetchRemote = FrameSpec(function: "fetch_remote", file: "app/client.py", line: 33, isInternal: false)
    static let createConnection = FrameSpec(function: "create_connection", file: "socket.py", line: 845, isInternal: false)
    static let computeReport = FrameSpec(function: "compute_report", file: "app/reports.py", line: 57, isInternal: false)
    static let aggregate = FrameSpec(function: "aggregate — Σ totals", file: "app/reports.py", line: 88, isInternal: false)

    /// What the watchdog sees in each stall: the stack (innermost first) and the thread state.
    static let stallStacks: [(frames: [FrameSpec], native: Bool, state: UInt64)] = [
        // Blocked in connect(2) (syscall 42 → state 2 + 42) under a non-green socket.
        ([createConnection, fetchRemote, handle, gtMain], true, 44),
        // CPU-bound report generation.
        ([aggregate, computeReport, handle, gtMain], false, 1),
    ]

    let config: Config
    private(set) var builder = TraceAssembler()
    /// Bytes taken by switch events (all five switch codes and `SwitchToHub`) and their count.
    private(set) var switchBytes = 0
    private(set) var switchCount = 0
    private(set) var eventCount = 0

    private var r: SeededRandom
    private var nextId: UInt32 = 1
    private var strings: [String: UInt32] = [:]
    private var frames: [FrameSpec: UInt32] = [:]
    private var stacks: [[UInt32]: UInt32] = [:]
    private var libcImage: UInt32 = 0
    private var connectFrame: UInt32 = 0

    private var hub: ChunkEncoder
    private var watchdog: ChunkEncoder
    private var running: UInt32 = mainGt

    init(_ config: Config) {
        self.config = config
        r = SeededRandom(seed: config.seed)
        builder.metadata(Self.metadata, anchor: Self.anchorMonoNs)
        hub = ChunkEncoder(baseTime: Self.anchorMonoNs)
        watchdog = ChunkEncoder(baseTime: Self.anchorMonoNs)
        run()
    }

    // MARK: Interning: ids are global; the thread that first needs one writes its definition.

    private mutating func string(_ s: String, on side: Side, _ t: UInt64) -> UInt32 {
        if let id = strings[s] { return id }
        let id = take()
        strings[s] = id
        emit(side, TraceEvent(time: t, .string(id: id, value: s)))
        return id
    }

    private mutating func frame(_ f: FrameSpec, on side: Side, _ t: UInt64) -> UInt32 {
        if let id = frames[f] { return id }
        let fn = string(f.function, on: side, t), file = string(f.file, on: side, t)
        let id = take()
        frames[f] = id
        emit(
            side,
            TraceEvent(time: t, .frame(id: id, flags: f.isInternal ? .internal : [], function: fn, file: file, line: f.line)))
        return id
    }

    private mutating func stack(_ ids: [UInt32], on side: Side, _ t: UInt64) -> UInt32 {
        if let id = stacks[ids] { return id }
        let id = take()
        stacks[ids] = id
        emit(side, TraceEvent(time: t, .stack(id: id, frames: ids)))
        return id
    }

    private mutating func take() -> UInt32 {
        defer { nextId += 1 }
        return nextId
    }

    // MARK: Writing

    /// Which OS thread's buffer an event goes to.
    enum Side { case hub, watchdog }

    private mutating func emit(_ side: Side, _ e: TraceEvent) {
        let before: Int
        let after: Int
        switch side {
        case .hub: before = hub.bytes.count; hub.append(e); after = hub.bytes.count
        case .watchdog: before = watchdog.bytes.count; watchdog.append(e); after = watchdog.bytes.count
        }
        eventCount += 1
        switch e.kind {
        case .switchTo, .switchToHub:
            switchBytes += after - before
            switchCount += 1
        default: break
        }
    }

    /// Appends to the hub thread's chunk, flushing first when it is full.
    private mutating func onHub(_ e: TraceEvent) {
        if hub.bytes.count >= config.chunkBytes { flushHub(at: e.time) }
        emit(.hub, e)
        if case let .switchTo(to, _, _) = e.kind { running = to }
        if case .switchToHub = e.kind { running = Self.hubGt }
    }

    /// Writes the hub's chunk; the next one starts with `Running` so that it decodes alone
    /// (spec §4.1), before any definition the next event may need.
    private mutating func flushHub(at t: UInt64, reopen: Bool = true) {
        builder.append(kind: ChunkKind.events.rawValue, thread: Self.hubTid, baseTime: hub.baseTime, payload: hub.bytes)
        hub = ChunkEncoder(baseTime: t)
        if reopen { emit(.hub, TraceEvent(time: t, .running(gt: running, hub: Self.hubGt))) }
    }

    private mutating func flushWatchdog(at t: UInt64) {
        guard watchdog.eventCount > 0 else { return }
        builder.append(
            kind: ChunkKind.events.rawValue, thread: Self.watchdogTid, baseTime: watchdog.baseTime,
            payload: watchdog.bytes)
        watchdog = ChunkEncoder(baseTime: t)
    }

    // MARK: The simulated program

    /// Why a waiting greenthread will become runnable.
    private enum Wake { case io, timer, spawn }

    private var t: UInt64 = 0
    private var pending: [(gt: UInt32, at: UInt64, wake: Wake)] = []
    private var nextGt: UInt32 = 3
    private var live = 0
    private var runIndex = 0
    private var spawnStack: UInt32 = 0
    private var watchdogNamed = false

    private mutating func run() {
        t = Self.anchorMonoNs + 1_000
        // Start-up on the hub thread: names, images, the hub and main greenthreads.
        emit(.hub, TraceEvent(time: t, .running(gt: Self.mainGt, hub: Self.hubGt)))
        let mainName = string("MainThread", on: .hub, t)
        emit(.hub, TraceEvent(time: t, .thread(tid: Self.hubTid, name: mainName)))
        let libcPath = string("/usr/lib/x86_64-linux-gnu/libc.so.6", on: .hub, t)
        libcImage = take()
        emit(
            .hub,
            TraceEvent(
                time: t,
                .image(
                    id: libcImage, path: libcPath, loadBias: 0x7F3A_5C00_0000,
                    start: 0x7F3A_5C02_8000, end: 0x7F3A_5C1B_D000,
                    buildID: [
                        0xC0, 0x47, 0x73, 0x2E, 0x9C, 0x1B, 0x55, 0x0A, 0x31, 0x8E,
                        0x07, 0x11, 0xC2, 0x93, 0x6D, 0x4F, 0xAA, 0x12, 0x00, 0xFE,
                    ])))
        connectFrame = take()
        emit(
            .hub,
            TraceEvent(
                time: t,
                .nativeFrame(
                    id: connectFrame, flags: .returnAddress, image: libcImage,
                    address: 0x7F3A_5C12_F5D7)))
        emit(
            .hub,
            TraceEvent(
                time: t,
                .greenthreadCreate(
                    gt: Self.hubGt, name: string("hub", on: .hub, t),
                    spawnStack: 0, parent: 0)))
        emit(.hub, TraceEvent(time: t, .greenthreadCreate(gt: Self.mainGt, name: mainName, spawnStack: 0, parent: 0)))
        t += 20_000

        // Main spawns the pool, then blocks (accept loop) in the hub for the rest of the run.
        spawnStack = stack([frame(Self.spawnN, on: .hub, t), frame(Self.serve, on: .hub, t)], on: .hub, t)
        for _ in 0..<config.greenthreads {
            t += 2_000 + r.below(3_000)
            spawn()
        }
        t += 5_000
        onHub(TraceEvent(time: t, .switchToHub))

        // Eventlet's hub loop: fire due timers (spawns are 0-delay timers), then one poll that
        // blocks until the next timer at most; each ready fd's greenthread runs in turn.
        while runIndex < config.runs {
            pending.sort { $0.at < $1.at }
            let timers = pending.filter { $0.wake != .io && $0.at <= t }
            pending.removeAll { $0.wake != .io && $0.at <= t }
            for d in timers where runIndex < config.runs {
                runGreenthread(d.gt, d.wake == .spawn ? .spawn : .timer, readySince: d.at)
            }
            let nextTimer = pending.filter { $0.wake != .io }.map(\.at).min()
            let nextIO = pending.filter { $0.wake == .io }.map(\.at).min()
            guard nextTimer != nil || nextIO != nil else { break }
            t += 1_000 + r.below(2_000)
            // No timers: an unbounded wait (null in JSON); otherwise until the next one.
            onHub(TraceEvent(time: t, .ioWaitBegin(timeout: nextTimer.map { $0 > t ? $0 - t : 0 })))
            t = max(t, min(nextTimer ?? .max, nextIO ?? .max)) + 2_000 + r.below(10_000)
            let ready = pending.filter { $0.wake == .io && $0.at <= t }
            pending.removeAll { $0.wake == .io && $0.at <= t }
            onHub(TraceEvent(time: t, .ioWaitEnd(ready: UInt64(ready.count))))
            let seen = t  // readiness is known when the wait returns
            for d in ready where runIndex < config.runs {
                runGreenthread(d.gt, .io, readySince: seen)
            }
        }

        // Shut down: a dropped-events counter, the last chunks, then the End marker alone.
        t += 10_000
        onHub(TraceEvent(time: t, .dropped(reason: 1, count: 3)))
        flushHub(at: t, reopen: false)
        flushWatchdog(at: t)
        t += 1_000
        var end = ChunkEncoder(baseTime: t)
        end.append(TraceEvent(time: t, .end(chunks: UInt64(builder.chunks.count), events: UInt64(eventCount))))
        eventCount += 1
        builder.append(kind: ChunkKind.events.rawValue, thread: Self.hubTid, baseTime: t, payload: end.bytes)
    }

    /// The running greenthread spawns another: created now, first run from a 0-delay timer.
    private mutating func spawn() {
        let gt = nextGt
        nextGt += 1
        let name = string("GreenThread-\(gt - 2)", on: .hub, t)
        onHub(TraceEvent(time: t, .greenthreadCreate(gt: gt, name: name, spawnStack: spawnStack, parent: running)))
        pending.append((gt, t, .spawn))
        live += 1
    }

    /// The hub switches to `gt`, which runs one slice (a stall at the configured indices) and
    /// then waits for I/O, sleeps, or exits, switching back to the hub.
    private mutating func runGreenthread(_ gt: UInt32, _ reason: SwitchReason, readySince: UInt64) {
        t += 500 + r.below(2_500)
        onHub(TraceEvent(time: t, .switchTo(to: gt, reason: reason, readyDelta: t - readySince)))
        let sliceStart = t

        if let stallIndex = config.stallsAt.firstIndex(of: runIndex) {
            // The greenthread blocks the hub: the watchdog notices after the threshold and
            // samples its stack until the slice ends.
            let duration: UInt64 = stallIndex == 0 ? 183_400_000 : 72_250_000
            let spec = Self.stallStacks[stallIndex % Self.stallStacks.count]
            var st = sliceStart + Self.thresholdNs + r.below(Self.sampleIntervalNs)
            if !watchdogNamed {
                watchdogNamed = true
                let name = string("unclog-watchdog", on: .watchdog, st)
                emit(.watchdog, TraceEvent(time: st, .thread(tid: Self.watchdogTid, name: name)))
            }
            emit(.watchdog, TraceEvent(time: st, .stallBegin(tid: Self.hubTid, gt: gt, sinceDelta: st - sliceStart)))
            var ids: [UInt32] = []
            for f in spec.frames { ids.append(frame(f, on: .watchdog, st)) }
            if spec.native { ids.insert(connectFrame, at: 0) }
            let sampled = stack(ids, on: .watchdog, st)
            while st < sliceStart + duration {
                emit(.watchdog, TraceEvent(time: st, .stallSample(tid: Self.hubTid, stack: sampled, state: spec.state)))
                st += Self.sampleIntervalNs
            }
            t = sliceStart + duration
            // The stalled thread records where its slice ended: the sampled stack without the
            // syscall frame (it has returned), interned by the hub thread.
            let endStack = stack(spec.native ? Array(ids.dropFirst()) : ids, on: .hub, t)
            onHub(TraceEvent(time: t, .stallEnd(gt: gt, duration: duration, stack: endStack)))
            // The watchdog flushes on its timer shortly after: its chunk lands before the hub
            // chunk holding the StallEnd.
            flushWatchdog(at: t)
        } else {
            t += 5_000 + r.below(r.chance(90) ? 60_000 : 1_500_000)
        }

        let roll = r.below(100)
        if roll < 4 && live > 1 {
            onHub(TraceEvent(time: t, .greenthreadExit(gt: gt)))
            live -= 1
            t += 500
            running = gt  // the replacement is spawned by the exiting request's handler
            if live < config.greenthreads { spawn() }
        } else if roll < 70 {
            // Network and database round trips: mostly a few ms, sometimes far longer.
            pending.append((gt, t + 200_000 + r.below(r.chance(80) ? 8_000_000 : 150_000_000), .io))
        } else {
            pending.append((gt, t + 1_000_000 + r.below(100_000_000), .timer))
        }
        t += 200 + r.below(800)
        onHub(TraceEvent(time: t, .switchToHub))
        runIndex += 1
    }
}
