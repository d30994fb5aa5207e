// Who a stall kept waiting: the overlap of a greenthread's wait with a stall, and victims
// across the workers of a thread pool (Swift Concurrency's global executor), where a stall on
// one worker delays jobs that then run on another. Pure state, no SQLite.

/// A greenthread resumed more than this after a stall ended is not counted as its victim (its
/// wait is no longer that stall's doing alone).
let victimHorizon: Int64 = 10_000_000_000

/// How long a greenthread ready at `ready` and resumed at `resumed` was kept waiting by a stall
/// over [`stallStart`, `stallEnd`]: the overlap of the two, if it resumed within `victimHorizon`
/// of the stall's end; 0 when it was not a victim.
func victimWait(ready: Int64, resumed: Int64, stallStart: Int64, stallEnd: Int64) -> Int64 {
    guard resumed - stallEnd <= victimHorizon else { return 0 }
    return max(0, min(resumed, stallEnd) - max(ready, stallStart))
}

/// Victims across the workers of a thread pool (Swift Concurrency's global executor).
///
/// A stall on one worker leaves the pool a worker short: a job queued while it lasted waited
/// longer, whichever worker finally ran it. So a job that ran on pool thread B, ready at r and
/// started at s, is a victim of a stall [x0, x1] on another pool thread A when r < x1 and
/// s > x0, for the overlap of its wait with the stall. (A queued job means no worker was idle
/// in a work-conserving pool, up to wake-up latency.) Same-thread victims are found as for any
/// runtime, by `chargeVictim`.
///
/// Threads' chunks reach the file out of time order, so each (stall, job) pair is charged
/// when the second of the two is read: a job checks the stalls already read, a stall the jobs
/// already read. Jobs are remembered for `window` of trace time behind the latest job read, and
/// at most `capacity` of them (about 0.2 s of a pool running a million jobs a second): a stall
/// read later than that after its jobs misses them. A job that waited through stalls on several
/// workers at once is a victim of each (their victim waits overlap). The main thread (main-queue
/// jobs) is not a worker.
struct PoolVictims {
    struct Job { var gt: UInt32; var thread: UInt32; var ready: Int64; var start: Int64 }
    struct Stall { var id: Int64; var gt: UInt32; var thread: UInt32; var start: Int64; var end: Int64 }

    static let window: Int64 = 10_000_000_000
    static let capacity = 200_000
    let mainThread: UInt32?
    private(set) var jobs: [Job] = []
    private var jobsHead = 0
    private(set) var stalls: [Stall] = []
    /// The latest end among `stalls`: a job ready after it waited through none of them.
    private var stallsEnd = Int64.min
    private var latest = Int64.min

    init(mainThread: UInt32?) { self.mainThread = mainThread }

    /// Whether `thread` is one of the pool's workers (threads without a hub, but the main one).
    func isWorker(_ thread: UInt32) -> Bool { thread != mainThread }

    /// A job that waited (ready < start) started on `thread`: the known stalls of other pool
    /// threads it waited through, with the wait each caused.
    mutating func jobStarted(gt: UInt32, thread: UInt32, ready: Int64, start: Int64) -> [(Int64, Int64)] {
        var out: [(Int64, Int64)] = []
        if ready < stallsEnd {  // most jobs became ready after every stall read so far
            for x in stalls where x.thread != thread && x.gt != gt {
                let wait = victimWait(ready: ready, resumed: start, stallStart: x.start, stallEnd: x.end)
                if wait > 0 { out.append((x.id, wait)) }
            }
        }
        jobs.append(Job(gt: gt, thread: thread, ready: ready, start: start))
        latest = max(latest, start)
        // Forget jobs out of the window (amortized: compact when half the array is dead).
        while jobsHead < jobs.count
            && (latest - jobs[jobsHead].start > PoolVictims.window
                || jobs.count - jobsHead > PoolVictims.capacity)
        {
            jobsHead += 1
        }
        if jobsHead > 4096 && jobsHead * 2 > jobs.count {
            jobs.removeFirst(jobsHead)
            jobsHead = 0
        }
        if let first = stalls.first, latest - first.end > victimHorizon {
            stalls.removeAll { latest - $0.end > victimHorizon }
            stallsEnd = stalls.map(\.end).max() ?? Int64.min
        }
        return out
    }

    /// A stall on pool thread `thread` was read: the jobs already read that it kept waiting.
    mutating func stallEnded(
        id: Int64, gt: UInt32, thread: UInt32, start: Int64, end: Int64
    ) -> [(gt: UInt32, ready: Int64, start: Int64, wait: Int64)] {
        var out: [(gt: UInt32, ready: Int64, start: Int64, wait: Int64)] = []
        for j in jobs[jobsHead...] where j.thread != thread && j.gt != gt {
            let wait = victimWait(ready: j.ready, resumed: j.start, stallStart: start, stallEnd: end)
            if wait > 0 { out.append((j.gt, j.ready, j.start, wait)) }
        }
        stalls.append(Stall(id: id, gt: gt, thread: thread, start: start, end: end))
        if stalls.count > 256 { stalls.removeFirst(stalls.count - 256) }
        stallsEnd = stalls.map(\.end).max() ?? Int64.min
        return out
    }
}
