// `make bench`: the Swift recorder's per-job cost. 100 tasks each call Task.yield() 10 000 times:
// 1M jobs through the global executor. Prints the wall time in ns, the jobs run, and the
// process's CPU time in ns (user + system, all threads, including the recorder's).
// Run unrecorded and recorded (LD_PRELOAD) by Benchmarks/swift/bench.sh.

import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

@main struct YieldBench {
    static func main() async {
        let tasks = 100
        let yields = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 10_000 : 10_000
        let t0 = nowNs()
        await withTaskGroup(of: Void.self) { g in
            for _ in 0..<tasks {
                g.addTask { for _ in 0..<yields { await Task.yield() } }
            }
        }
        let t1 = nowNs()
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu =
            (UInt64(usage.ru_utime.tv_sec) + UInt64(usage.ru_stime.tv_sec)) * 1_000_000_000
            + (UInt64(usage.ru_utime.tv_usec) + UInt64(usage.ru_stime.tv_usec)) * 1000
        print("\(t1 - t0) \(tasks * yields) \(cpu)")
    }
}
