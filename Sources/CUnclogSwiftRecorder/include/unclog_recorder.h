// unclog's Swift Concurrency recorder (C core): hooks the global executor, timestamps every
// job, detects and samples stalls, and writes the unclog trace format (schema/trace-format.md).
// Used by the LD_PRELOAD library (CUnclogSwiftPreload) and the UnclogRecorder Swift library.
#ifndef UNCLOG_RECORDER_H
#define UNCLOG_RECORDER_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The recorder's version (unclog's; the Swift side's is UnclogDefaults.version) and the defaults
/// of `unclog record`'s --threshold and --sample-interval: the C side's one definition of each.
#define UNCLOG_VERSION                    "0.1.0"
#define UNCLOG_DEFAULT_THRESHOLD_NS       50000000ull  // 50 ms
#define UNCLOG_DEFAULT_SAMPLE_INTERVAL_NS 10000000ull  // 10 ms

/// Where the recorder finds the Swift runtime and Dispatch: filled with dlsym (LD_PRELOAD into a
/// dynamically linked program) or with direct references (a program that links the library).
typedef struct unclog_runtime {
    void **enqueue_global_hook;                     // &swift_task_enqueueGlobal_hook (required)
    void *job_run;                                  // swift_job_run (swiftcall: job, executor identity, implementation)
    void *dispatch_async_f;                         // void (queue, ctx, fn)
    void *dispatch_queue_create;                    // queue (label, attr)
    void *dispatch_queue_attr_make_with_qos_class;  // attr (attr, qos, relpri)
    void *dispatch_queue_set_width;                 // void (queue, long)
    void *dispatch_queue_attr_concurrent;           // &_dispatch_queue_attr_concurrent (DISPATCH_QUEUE_CONCURRENT)
    void *swift_task_getCurrent;                    // optional: AsyncTask *(void), swiftcall
    void **enqueue_main_hook;                       // optional: &swift_task_enqueueMainExecutor_hook (main-actor jobs)
    void *get_main_executor;                        // optional: swift_task_getMainExecutor (swiftcall, returns the executor ref)
    void *dispatch_main_q;                          // optional: &_dispatch_main_q (dispatch_get_main_queue())
    void *dispatch_after_f;                         // optional: void (when, queue, ctx, fn) (executor-factory timers)
    void *dispatch_time;                            // optional: dispatch_time_t (when, int64 delta)
    int interpose;                                  // 1: the caller interposes dispatch_async_f/after_f (no hook)
    int loops;                                      // 1: the caller interposes epoll_wait (event-loop threads)
} unclog_runtime;

typedef struct unclog_config {
    const char *output;           // trace file path
    uint64_t threshold_ns;        // a job running longer is a stall (default 50 ms)
    uint64_t sample_interval_ns;  // stack sampling period during a stall (default 10 ms)
    const char *recorder_name;    // metadata `recorder`
    int quiet;                    // no diagnostics on stderr
    int executors;                // 1: the caller installs the timing executors (executor-factory mode)
} unclog_config;

/// Fills `runtime`'s references with dlsym(RTLD_DEFAULT, …): what a dynamically linked process
/// provides (missing ones stay NULL). The mode fields (`interpose`, `loops`) are set to 0.
void unclog_runtime_lookup(unclog_runtime *runtime);
/// Starts recording. Returns 0, or -1 with a message in `error` (never aborts the program).
int unclog_recorder_start(const unclog_config *config, const unclog_runtime *runtime, char *error, size_t error_size);

/// Stops recording: uninstalls the hook (when still ours), flushes everything, writes `End`,
/// closes the file. Safe to call twice; also run at exit.
void unclog_recorder_stop(void);

/// Event-loop threads (SwiftNIO's `NIO-ELT-…`, or the thread-name prefixes in UNCLOG_LOOP_THREADS,
/// comma-separated): the LD_PRELOAD library calls these around each epoll_wait. The time between two
/// waits is one loop iteration (a slice); an iteration longer than the threshold is a stall and is
/// sampled like a job. `unclog_loop_wait_begin` returns 1 when the wait is recorded.
int unclog_loop_wait_begin(int timeout_ms);
void unclog_loop_wait_end(int nready);

/// Spans on event-loop threads (per-handler attribution, e.g. the UnclogNIO timing handler): the
/// loop iteration switches to the greenthread named `name` (one per distinct name) until
/// `unclog_span_end(token)`. A span longer than the threshold is a stall of that greenthread (and
/// the iteration's own stall clock restarts). Returns 0 (and does nothing) outside loop threads.
uint32_t unclog_span_begin(const char *name);
void unclog_span_end(uint32_t token);

/// Interposition mode (LD_PRELOAD): instead of installing the executor hook, the preload library
/// interposes dispatch_async_f / dispatch_after_f and times the Swift runtime's own job callbacks.
/// The runtime keeps its queues, main-actor and Task.sleep wake-up jobs are timed too, and the
/// executor hook stays free for SwiftNIO. `unclog_is_swift_job` says whether (ctx, fn) is a job of
/// libswift_Concurrency; `unclog_job_enqueued` notes its enqueue (or ready) time;
/// `unclog_run_job_interposed` runs fn(ctx) timed (fn NULL: the runtime's job callback, as
/// learnt by `unclog_interpose_note`).
int unclog_interpose_mode(void);
int unclog_is_swift_job(void *ctx, void (*fn)(void *));
void unclog_job_enqueued(void *job, uint64_t ready_mono_ns, int timer);
void unclog_run_job_interposed(void *job, void (*fn)(void *));
/// The three checks and the note in one call (the preload library's hot path): returns 1 when
/// (ctx, fn) is a Swift job to time (recording, interposition mode, the runtime's job callback).
int unclog_interpose_note(void *ctx, void (*fn)(void *), uint64_t ready_mono_ns, int timer);

/// Executor-factory mode (UnclogRecorder's `start(executors: true)`): the program's global and main
/// executors, installed with `_createExecutors(factory:)`, hand every job here; the recorder runs it
/// on Dispatch queues made like the runtime's, timed. This reaches what the hook does not see in
/// Swift 6.3: main-actor jobs and `Task.sleep` wake-ups. Jobs keep running (untimed) after
/// `unclog_recorder_stop`. `unclog_executors_prepare` returns 0 when the runtime references needed
/// are present (call it, with the main executor's reference, after a start with `executors` = 1 and
/// before installing the executors).
int unclog_executors_prepare(void *main_executor_identity, uintptr_t main_executor_implementation);
void unclog_executor_enqueue_global(void *job);
void unclog_executor_enqueue_main(void *job);
void unclog_executor_enqueue_after(void *job, uint64_t delay_ns);

/// 1 while recording.
int unclog_recorder_active(void);

/// Jobs recorded so far (for tests and benchmarks).
uint64_t unclog_recorder_jobs(void);

#ifdef __cplusplus
}
#endif
#endif
