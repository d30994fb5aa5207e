// A Swift Concurrency program for unclog's recorder tests: hundreds of well-behaved tasks and,
// with `block`, four tasks that block their worker thread in the ways issue 4 names (with
// `mainactor`, one main-actor function that blocks; with `customexecutor`, a custom executor's
// `enqueue` that blocks). Each
// blocking call is on a line marked `// BLOCK:<name>`; the program prints, at the end, how long
// each blocking call took (CLOCK_MONOTONIC), so a test can compare the recorded stall with it.
// Built by the tests with `swiftc -g -parse-as-library` (add -DUNCLOG_LIBRARY to record through the
// UnclogRecorder library instead of LD_PRELOAD, and -DUNCLOG_EXECUTORS to have it install its
// timing executors too).

import Dispatch
import Foundation

#if UNCLOG_LIBRARY
    import UnclogRecorder
#endif

func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

final class Log: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ name: String, _ start: UInt64, _ end: UInt64) {
        lock.lock(); lines.append("BLOCK \(name) \(start) \(end)"); lock.unlock()
    }
    func dump() { lock.lock(); for l in lines { print(l) }; lock.unlock() }
}
let log = Log()
let blockMs: UInt32 = 200

func sleepWithUsleep() async {
    let t0 = monotonicNs()
    usleep(blockMs * 1000)  // BLOCK:usleep
    log.add("usleep", t0, monotonicNs())
}

func sleepWithThreadSleep() async {
    let t0 = monotonicNs()
    Thread.sleep(forTimeInterval: Double(blockMs) / 1000)  // BLOCK:thread_sleep
    log.add("thread_sleep", t0, monotonicNs())
}

func waitOnSemaphore() async {
    let semaphore = DispatchSemaphore(value: 0)
    let t0 = monotonicNs()
    _ = semaphore.wait(timeout: .now() + .milliseconds(Int(blockMs)))  // BLOCK:semaphore
    log.add("semaphore", t0, monotonicNs())
}

@MainActor func blockOnMainActor() {
    let t0 = monotonicNs()
    usleep(blockMs * 1000)  // BLOCK:main_usleep
    log.add("main_usleep", t0, monotonicNs())
}

/// A serial executor whose `enqueue` blocks once when armed (mode `customexecutor`): program code
/// that the runtime runs on a worker inside another job, here the task's own job as it hops back
/// onto its actor after a sleep.
final class SlowEnqueueExecutor: SerialExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "slow-enqueue")
    private let lock = NSLock()
    private var armed = false
    func arm() { lock.lock(); armed = true; lock.unlock() }
    func enqueue(_ job: UnownedJob) {
        lock.lock(); let block = armed; armed = false; lock.unlock()
        if block {
            let t0 = monotonicNs()
            usleep(blockMs * 1000)  // BLOCK:enqueue
            log.add("enqueue", t0, monotonicNs())
        }
        queue.async { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }
    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}

actor SlowEnqueueActor {
    let executor = SlowEnqueueExecutor()
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    var wakeups = 0
    func sleepAndComeBack() async {
        executor.arm()
        try? await Task.sleep(nanoseconds: 10_000_000)
        wakeups += 1  // isolated work after the sleep: the task is enqueued back onto this actor
    }
}

actor Spinner {
    var rounds = 0
    func spin() -> UInt64 {
        let t0 = monotonicNs()
        let end = t0 + UInt64(blockMs) * 1_000_000
        var x: UInt64 = 0
        while x & 0xFFFF != 0 || monotonicNs() < end { x &+= 1 }  // BLOCK:actor_spin
        log.add("actor_spin", t0, monotonicNs())
        rounds += 1
        return x
    }
}

/// A well-behaved task: a few short awaits.
func wellBehaved(_ i: Int) async -> Int {
    var total = 0
    for k in 0..<5 {
        await Task.yield()
        try? await Task.sleep(nanoseconds: UInt64(1_000_000 + (i % 7) * 100_000))
        total += k
    }
    return total
}

@main struct Blocking {
    static func main() async {
        #if UNCLOG_LIBRARY
            #if UNCLOG_EXECUTORS
                let recording = (try? UnclogRecorder.start(executors: true)) ?? false
            #else
                let recording = (try? UnclogRecorder.start()) ?? false
            #endif
            defer { if recording { UnclogRecorder.stop() } }
        #endif
        let mode = CommandLine.arguments.dropFirst().first ?? "calm"
        let block = mode == "block"
        let tasks = 400
        let spinner = Spinner()
        let sum = await withTaskGroup(of: Int.self) { group in
            // 100 tickers keep the pool busy with short jobs for the whole run.
            for i in 0..<100 {
                group.addTask {
                    var n = 0
                    let end = monotonicNs() + 1_200_000_000
                    while monotonicNs() < end {
                        try? await Task.sleep(nanoseconds: UInt64(4_000_000 + i * 10_000))
                        n += 1
                    }
                    return 0 * n
                }
            }
            for i in 0..<tasks {
                group.addTask {
                    if block {
                        // Start the blockers one after another, each on a quiet pool.
                        switch i {
                        case 50: try? await Task.sleep(nanoseconds: 20_000_000); await sleepWithUsleep()
                        case 150: try? await Task.sleep(nanoseconds: 300_000_000); await sleepWithThreadSleep()
                        case 250: try? await Task.sleep(nanoseconds: 580_000_000); await waitOnSemaphore()
                        case 350: try? await Task.sleep(nanoseconds: 860_000_000); _ = await spinner.spin()
                        default: break
                        }
                    }
                    if mode == "customexecutor" && i == 100 {
                        try? await Task.sleep(nanoseconds: 20_000_000)
                        await SlowEnqueueActor().sleepAndComeBack()
                    }
                    if mode == "mainactor" && i == 100 {
                        try? await Task.sleep(nanoseconds: 20_000_000)
                        await blockOnMainActor()
                    }
                    return await wellBehaved(i)
                }
            }
            var s = 0
            for await v in group { s += v }
            return s
        }
        log.dump()
        print("OK \(sum)")
        if mode == "exit3" { exit(3) }
    }
}
