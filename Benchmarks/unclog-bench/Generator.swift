// A synthetic trace shaped like a busy Eventlet recording: one hub thread serving 1000
// greenthreads woken by I/O and timers, a watchdog thread sampling 20-frame stacks during
// rare stalls. Deterministic (seeded) so runs compare.

import UnclogTrace

struct XorShift {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}

/// Writes `events` events (±20) through `builder`; returns the number of stalls written.
func generateEventletLikeTrace(events target: UInt64, builder: TraceBuilder, start: UInt64) -> Int {
    var rng = XorShift(state: 0x9E37_79B9_7F4A_7C15)
    let hubThread: UInt32 = 4242, watchdog: UInt32 = 4243
    let hub: UInt32 = 1
    let greenthreads: UInt32 = 1000
    var t = start
    var stalls = 0

    // Definitions: 60 functions in 12 files, 10 of them internal (hub/eventlet), 100 stacks of 20 frames.
    var sid: UInt32 = 0
    func string(_ s: String) -> UInt32 {
        sid += 1
        builder.append(TraceEvent(time: t, .string(id: sid, value: s)), thread: hubThread)
        return sid
    }
    var files: [UInt32] = []
    for f in 0..<12 { files.append(string(f < 2 ? "/venv/lib/eventlet/hubs/hub\(f).py" : "/srv/app/module\(f).py")) }
    var frames: [UInt32] = []
    for i in 0..<60 {
        let name = string(i < 10 ? "eventlet_internal_\(i)" : "app_function_\(i)")
        let id = UInt32(i + 1)
        builder.append(
            TraceEvent(
                time: t,
                .frame(
                    id: id, flags: i < 10 ? .internal : [], function: name,
                    file: files[i < 10 ? i % 2 : 2 + i % 10], line: UInt64(10 + i * 7))),
            thread: hubThread)
        frames.append(id)
    }
    for s in 0..<100 {
        var stack: [UInt32] = []
        for d in 0..<20 { stack.append(frames[(s * 7 + d * 13) % 60]) }
        builder.append(TraceEvent(time: t, .stack(id: UInt32(s + 1), frames: stack)), thread: hubThread)
    }
    builder.append(TraceEvent(time: t, .thread(tid: hubThread, name: string("MainThread"))), thread: hubThread)
    builder.append(
        TraceEvent(time: t, .greenthreadCreate(gt: hub, name: string("hub"), spawnStack: 0, parent: 0)),
        thread: hubThread)
    builder.append(TraceEvent(time: t, .running(gt: hub, hub: hub)), thread: hubThread)
    let workerName = string("fetch_page")
    for g in 2...(greenthreads + 1) {
        builder.append(
            TraceEvent(time: t, .greenthreadCreate(gt: g, name: workerName, spawnStack: 1 + g % 100, parent: hub)),
            thread: hubThread)
    }

    var slicesUntilStall = 20_000 + rng.below(5_000)
    var lastStall: (UInt64, UInt64)?, nextStall: (UInt64, UInt64)?
    while builder.events < target {
        // The hub polls: most polls return quickly with a few ready sockets.
        let timeout: UInt64? = rng.below(10) == 0 ? nil : 1_000_000 + rng.below(9_000_000)
        builder.append(TraceEvent(time: t, .ioWaitBegin(timeout: timeout)), thread: hubThread)
        t += 5_000 + rng.below(60_000)
        // After a stall, the timers that expired during it all fire: a larger batch, ready inside the stall.
        let ready = lastStall == nil ? 1 + rng.below(8) : 10 + rng.below(30)
        builder.append(TraceEvent(time: t, .ioWaitEnd(ready: ready)), thread: hubThread)
        let pollEnd = t
        for _ in 0..<ready {
            t += 2_000 + rng.below(6_000)
            let gt = 2 + UInt32(rng.below(UInt64(greenthreads)))
            let byTimer = lastStall != nil || rng.below(4) == 0
            var readyAt = byTimer ? t - 1_000 - rng.below(20_000) : pollEnd
            if let (s0, s1) = lastStall { readyAt = s0 + rng.below(s1 - s0) }
            builder.append(
                TraceEvent(time: t, .switchTo(to: gt, reason: byTimer ? .timer : .io, readyDelta: t - readyAt)),
                thread: hubThread)
            slicesUntilStall -= 1
            if slicesUntilStall == 0 {
                // A stall: the greenthread holds the thread for 60–560 ms; the watchdog samples it.
                slicesUntilStall = 20_000 + rng.below(5_000)
                let sliceStart = t
                let duration = 60_000_000 + rng.below(500_000_000)
                let stack = 1 + UInt32(rng.below(100))
                var w = sliceStart + 50_000_000
                builder.append(
                    TraceEvent(time: w, .stallBegin(tid: hubThread, gt: gt, sinceDelta: w - sliceStart)),
                    thread: watchdog)
                while w + 10_000_000 < sliceStart + duration {
                    w += 10_000_000
                    builder.append(TraceEvent(time: w, .stallSample(tid: hubThread, stack: stack, state: 1)), thread: watchdog)
                }
                t = sliceStart + duration
                builder.append(TraceEvent(time: t, .stallEnd(gt: gt, duration: duration, stack: stack)), thread: hubThread)
                nextStall = (sliceStart, t)
                stalls += 1
            } else {
                t += 10_000 + rng.below(80_000)
            }
            builder.append(TraceEvent(time: t, .switchToHub), thread: hubThread)
        }
        lastStall = nextStall
        nextStall = nil
    }
    builder.finish(at: t)
    return stalls
}
