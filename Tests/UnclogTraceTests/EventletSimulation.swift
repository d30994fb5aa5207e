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

    static let hubSwitch = FrameSpec(function: "switch", file: "eventlet/hubs/hub.py", line: 310, isInternal: true)
    static let gtMain = FrameSpec(function: "main", file: "eventlet/greenthread.py", line: 265, isInternal: true)
    static let spawnN = FrameSpec(function: "spawn_n", file: "eventlet/greenpool.py", line: 102, isInternal: true)
    static let trampoline = FrameSpec(function: "trampoline", file: "eventlet/hubs/__init__.py", line: 159, isInternal: true)
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
    private(set) var builder = TraceBuilder()
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
    private var hubEvents = 0
    private var watchdogEvents = 0
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
        emit(side, TraceEvent(time: t, .frame(id: id, flags: f.isInternal ? .internal : [], function: fn, file: file, line: f.line)))
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
        builder.append(kind: ChunkKind.events.rawValue, thread: Self.watchdogTid, baseTime: watchdog.baseTime,
                       payload: watchdog.bytes)
        watchdog = ChunkEncoder(baseTime: t)
    }

    // MARK: The simulated program

    private enum Wake { case io, timer }

    private mutating func run() {
        var t = Self.anchorMonoNs + 1_000
        // Start-up on the hub thread: names, images, the hub and main greenthreads.
        emit(.hub, TraceEvent(time: t, .running(gt: Self.mainGt, hub: Self.hubGt)))
        let mainName = string("MainThread", on: .hub, t)
        emit(.hub, TraceEvent(time: t, .thread(tid: Self.hubTid, name: mainName)))
        let libcPath = string("/usr/lib/x86_64-linux-gnu/libc.so.6", on: .hub, t)
        libcImage = take()
        emit(.hub, TraceEvent(time: t, .image(id: libcImage, path: libcPath, loadBias: 0x7F3A_5C00_0000,
                                              start: 0x7F3A_5C02_8000, end: 0x7F3A_5C1B_D000,
                                              buildID: [0xC0, 0x47, 0x73, 0x2E, 0x9C, 0x1B, 0x55, 0x0A, 0x31, 0x8E,
                                                        0x07, 0x11, 0xC2, 0x93, 0x6D, 0x4F, 0xAA, 0x12, 0x00, 0xFE])))
        connectFrame = take()
        emit(.hub, TraceEvent(time: t, .nativeFrame(id: connectFrame, flags: .returnAddress, image: libcImage,
                                                    address: 0x7F3A_5C12_F5D7)))
        emit(.hub, TraceEvent(time: t, .greenthreadCreate(gt: Self.hubGt, name: string("hub", on: .hub, t),
                                                          spawnStack: 0, parent: 0)))
        emit(.hub, TraceEvent(time: t, .greenthreadCreate(gt: Self.mainGt, name: mainName, spawnStack: 0, parent: 0)))
        t += 20_000

        // Main spawns the pool, then waits in the hub forever.
        let spawnStack = stack([frame(Self.spawnN, on: .hub, t), frame(Self.serve, on: .hub, t)], on: .hub, t)
        var nextGt: UInt32 = 3
        var ready: [(gt: UInt32, since: UInt64, reason: SwitchReason)] = []
        var pending: [(gt: UInt32, at: UInt64, wake: Wake)] = []
        var live = 0
        func spawn(_ sim: inout EventletSimulation, at time: UInt64) {
            let gt = nextGt
            nextGt += 1
            let name = sim.string("GreenThread-\(gt - 2)", on: .hub, time)
            sim.onHub(TraceEvent(time: time, .greenthreadCreate(gt: gt, name: name, spawnStack: spawnStack, parent: sim.running)))
            ready.append((gt, time, .spawn))
            live += 1
        }
        for _ in 0..<config.greenthreads {
            t += 2_000 + r.below(3_000)
            spawn(&self, at: t)
        }
        t += 5_000
        onHub(TraceEvent(time: t, .switchToHub))

        var watchdogNamed = false
        for runIndex in 0..<config.runs {
            if ready.isEmpty {
                // Nothing runnable: the hub waits for the earliest timer or I/O.
                pending.sort { $0.at < $1.at }
                guard let first = pending.first else { break }
                let timeout: UInt64? = first.wake == .timer ? first.at - min(first.at, t) : (r.chance(50) ? nil : 60_000_000_000)
                t += 1_000 + r.below(2_000)
                onHub(TraceEvent(time: t, .ioWaitBegin(timeout: timeout)))
                t = max(t, first.at) + 3_000 + r.below(20_000)
                let due = pending.filter { $0.at <= t }
                pending.removeAll { $0.at <= t }
                onHub(TraceEvent(time: t, .ioWaitEnd(ready: UInt64(due.filter { $0.wake == .io }.count))))
                for d in due {
                    // I/O readiness is seen when the wait returns; a timer fires at its deadline.
                    ready.append((d.gt, d.wake == .io ? t : d.at, d.wake == .io ? .io : .timer))
                }
            }
            let next = ready.removeFirst()
            t += 1_000 + r.below(4_000)  // hub bookkeeping before the switch
            onHub(TraceEvent(time: t, .switchTo(to: next.gt, reason: next.reason, readyDelta: t - next.since)))
            let sliceStart = t

            if let stallIndex = config.stallsAt.firstIndex(of: runIndex) {
                // The greenthread blocks the hub: the watchdog notices after the threshold and
                // samples its stack until the slice ends.
                let duration: UInt64 = stallIndex == 0 ? 183_400_000 : 72_250_000
                let spec = Self.stallStacks[stallIndex % Self.stallStacks.count]
                var st = sliceStart + Self.thresholdNs + r.below(Self.sampleIntervalNs)
                if !watchdogNamed {
                    watchdogNamed = true
                    emit(.watchdog, TraceEvent(time: st, .thread(tid: Self.watchdogTid, name: string("unclog-watchdog", on: .watchdog, st))))
                }
                emit(.watchdog, TraceEvent(time: st, .stallBegin(tid: Self.hubTid, gt: next.gt, sinceDelta: st - sliceStart)))
                var ids = spec.frames.map { frame($0, on: .watchdog, st) }
                if spec.native { ids.insert(connectFrame, at: 0) }
                let sampled = stack(ids, on: .watchdog, st)
                while st < sliceStart + duration {
                    emit(.watchdog, TraceEvent(time: st, .stallSample(tid: Self.hubTid, stack: sampled, state: spec.state)))
                    st += Self.sampleIntervalNs
                }
                t = sliceStart + duration
                // The stalled thread records where the slice ended: the sampled stack minus the
                // syscall frame (it returned), interned by the hub thread.
                let endStack = stack(spec.native ? Array(ids.dropFirst()) : ids, on: .hub, t)
                onHub(TraceEvent(time: t, .stallEnd(gt: next.gt, duration: duration, stack: endStack)))
                // The watchdog flushes on its timer, shortly after the stall: its chunk lands
                // before the hub chunk holding the StallEnd.
                flushWatchdog(at: t)
            } else {
                t += 5_000 + r.below(r.chance(90) ? 60_000 : 1_500_000)
            }

            // What the greenthread does next: wait for I/O, sleep, spawn, or finish.
            let roll = r.below(100)
            if roll < 4 && live > 1 {
                onHub(TraceEvent(time: t, .greenthreadExit(gt: next.gt)))
                live -= 1
                t += 500
                if live < config.greenthreads { spawn(&self, at: t) }
            } else if roll < 70 {
                pending.append((next.gt, t + 20_000 + r.below(r.chance(80) ? 400_000 : 8_000_000), .io))
            } else {
                pending.append((next.gt, t + 100_000 + r.below(5_000_000), .timer))
            }
            t += 200 + r.below(800)
            onHub(TraceEvent(time: t, .switchToHub))
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
}
