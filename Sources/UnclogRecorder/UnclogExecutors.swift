// Executor-factory mode of the UnclogRecorder library: timing executors installed with the
// runtime's `_createExecutors(factory:)` (SPI ExperimentalCustomExecutors, Swift 6.3), so that
// main-actor jobs and `Task.sleep` wake-ups, which the executor hook never sees in Swift 6.3, are
// timed too. The executors only hand each job to the recorder's C core, which runs it on Dispatch
// queues built like the runtime's own (the global executor: one concurrent queue per priority,
// width = logical CPUs; the main executor: the main queue), between two clock reads.

import CUnclogSwiftRecorder
@_spi(ExperimentalCustomExecutors) @_spi(ExperimentalScheduling) import _Concurrency

/// The main executor: jobs run on the Dispatch main queue, timed; running and stopping the main
/// loop, and isolation checks, are the platform main executor's.
final class UnclogMainExecutor: MainExecutor, @unchecked Sendable {
    // The platform's main executor (Dispatch's main queue); immutable after init.
    let platform: any MainExecutor = PlatformExecutorFactory.mainExecutor

    func run() throws { try platform.run() }
    func stop() { platform.stop() }
    func checkIsolated() { platform.checkIsolated() }

    func enqueue(_ job: consuming ExecutorJob) {
        unclog_executor_enqueue_main(jobPointer(UnownedJob(job)))
    }
}

/// The global (default) executor: jobs run on the recorder's per-priority concurrent queues,
/// timed; delayed jobs (`Task.sleep`) wait on a Dispatch timer first and are timed when they run.
final class UnclogGlobalExecutor: TaskExecutor, SchedulingExecutor, @unchecked Sendable {
    // The platform's executor, for clocks whose durations are not `Swift.Duration`.
    let platform: any TaskExecutor = PlatformExecutorFactory.defaultExecutor

    func enqueue(_ job: consuming ExecutorJob) {
        unclog_executor_enqueue_global(jobPointer(UnownedJob(job)))
    }

    func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, after delay: C.Duration,
        tolerance: C.Duration?, clock: C
    ) {
        // ContinuousClock and SuspendingClock (what Task.sleep uses) measure in Swift.Duration;
        // any other clock goes to the platform executor, untimed (it never happens in practice).
        guard let d = delay as? Duration else {
            if let scheduling = platform as? any SchedulingExecutor {
                scheduling.enqueue(job, after: delay, tolerance: tolerance, clock: clock)
            } else {
                enqueue(job)
            }
            return
        }
        unclog_executor_enqueue_after(jobPointer(UnownedJob(job)), Self.nanoseconds(d))
    }

    /// A delay in ns, saturating (a huge delay must not wrap into a short one); negative = 0.
    static func nanoseconds(_ d: Duration) -> UInt64 {
        let c = d.components
        guard c.seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(c.seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (ns, overflow2) = whole.addingReportingOverflow(UInt64(max(0, c.attoseconds / 1_000_000_000)))
        return overflow2 ? .max : ns
    }

    func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, at instant: C.Instant,
        tolerance: C.Duration?, clock: C
    ) {
        enqueue(job, after: clock.now.duration(to: instant), tolerance: tolerance, clock: clock)
    }
}

/// The factory handed to `_createExecutors(factory:)`.
struct UnclogExecutorFactory: ExecutorFactory {
    static let mainExecutor: any MainExecutor = unclogMainExecutor
    static let defaultExecutor: any TaskExecutor = UnclogGlobalExecutor()
}

let unclogMainExecutor = UnclogMainExecutor()

/// The runtime's job pointer (an `UnownedJob` is one pointer to the job).
@inline(__always)
func jobPointer(_ job: UnownedJob) -> UnsafeMutableRawPointer {
    unsafeBitCast(job, to: UnsafeMutableRawPointer.self)
}

extension UnclogRecorder {
    /// Installs the timing executors (for `start(executors: true)`, once recording has started).
    /// False, installing nothing, when the runtime lacks what the executors need.
    static func installExecutors() -> Bool {
        let ref = unsafeBitCast(unclogMainExecutor.asUnownedSerialExecutor(), to: (UInt, UInt).self)
        guard unclog_executors_prepare(UnsafeMutableRawPointer(bitPattern: ref.0), ref.1) == 0 else { return false }
        _createExecutors(factory: UnclogExecutorFactory.self)
        return true
    }
}
