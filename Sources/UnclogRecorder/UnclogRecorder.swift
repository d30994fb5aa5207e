// The Swift recorder as a library, for programs that link it (this also covers -static-stdlib
// builds, which LD_PRELOAD cannot reach):
//
//     UnclogRecorder.start()      // first line of main: records when run by `unclog record`
//     defer { UnclogRecorder.stop() }
//
// `start(executors: true)` also times main-actor jobs and Task.sleep wake-ups (UnclogExecutors.swift).
//
// or `try UnclogRecorder.start(output: "app.trace")` to record on every run. Recording stops at
// exit by itself; `stop()` flushes and closes the trace earlier.

import CUnclogSwiftRecorder
import CUnclogSwiftRuntimeRefs

#if canImport(Glibc)
    import Glibc
#endif

/// Why recording could not start.
public struct UnclogRecorderError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

public enum UnclogRecorder {
    /// Starts recording Swift Concurrency jobs into `output`. Without `output`, records only when
    /// the program runs under `unclog record` (its `UNCLOG_OUTPUT`, `UNCLOG_THRESHOLD_NS`,
    /// `UNCLOG_SAMPLE_INTERVAL_NS` environment; removed once read so child processes are not
    /// recorded) and returns false otherwise.
    /// - Parameters:
    ///   - threshold: a job running longer than this is a stall (default 50 ms, or the environment's).
    ///   - sampleInterval: stack sampling period during a stall (default 10 ms, or the environment's).
    ///   - executors: also install timing main and global executors with the runtime's executor
    ///     factory (`_createExecutors(factory:)`, Swift 6.3), so main-actor jobs and `Task.sleep`
    ///     wake-ups are recorded too; the executor hook alone does not see them. Call `start` first
    ///     thing in `main`, before any other concurrency work. The executors stay for the life of
    ///     the process (after `stop()` they run jobs untimed). Nothing is installed when not recording.
    @discardableResult
    public static func start(
        output: String? = nil, threshold: Duration? = nil,
        sampleInterval: Duration? = nil,
        executors: Bool = false
    ) throws(UnclogRecorderError) -> Bool {
        let envOutput = environment("UNCLOG_OUTPUT")
        let envThreshold = environment("UNCLOG_THRESHOLD_NS").flatMap { UInt64($0) }
        let envInterval = environment("UNCLOG_SAMPLE_INTERVAL_NS").flatMap { UInt64($0) }
        if envOutput != nil {
            unsetenv("UNCLOG_OUTPUT"); unsetenv("UNCLOG_THRESHOLD_NS"); unsetenv("UNCLOG_SAMPLE_INTERVAL_NS")
        }
        guard let path = output ?? envOutput else { return false }
        var runtime = unclog_runtime()
        unclog_runtime_linked(&runtime)
        var error = [CChar](repeating: 0, count: 512)
        let rc = path.withCString { cPath in
            "unclog-swift \(UNCLOG_VERSION) (UnclogRecorder library)".withCString { name in
                var config = unclog_config()
                config.output = cPath
                config.threshold_ns = threshold.map(nanoseconds) ?? envThreshold ?? UInt64(UNCLOG_DEFAULT_THRESHOLD_NS)
                config.sample_interval_ns =
                    sampleInterval.map(nanoseconds) ?? envInterval ?? UInt64(UNCLOG_DEFAULT_SAMPLE_INTERVAL_NS)
                config.recorder_name = name
                config.quiet = 0
                config.executors = executors ? 1 : 0
                return unclog_recorder_start(&config, &runtime, &error, error.count)
            }
        }
        if rc != 0 {
            throw UnclogRecorderError(
                description: String(
                    decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) },
                    as: UTF8.self))
        }
        if executors && !installExecutors() {
            stop()
            throw UnclogRecorderError(
                description: "the runtime lacks what the timing executors need (Dispatch main queue, dispatch_after_f)")
        }
        return true
    }

    /// Stops recording: flushes every thread's events, writes the end marker, closes the trace.
    public static func stop() { unclog_recorder_stop() }

    /// True while recording.
    public static var isRecording: Bool { unclog_recorder_active() != 0 }

    /// Jobs timed so far.
    public static var jobsRecorded: UInt64 { unclog_recorder_jobs() }

    static func nanoseconds(_ d: Duration) -> UInt64 {
        let c = d.components
        return UInt64(max(0, c.seconds)) * 1_000_000_000 + UInt64(max(0, c.attoseconds / 1_000_000_000))
    }

    static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(decoding: UnsafeRawBufferPointer(start: v, count: strlen(v)), as: UTF8.self)
        return s.isEmpty ? nil : s
    }
}
