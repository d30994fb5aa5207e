// LD_PRELOAD entry point: `unclog record -- ./SwiftProgram` sets LD_PRELOAD to this library and
// UNCLOG_OUTPUT / UNCLOG_THRESHOLD_NS / UNCLOG_SAMPLE_INTERVAL_NS. The constructor reads them,
// removes them (and itself from LD_PRELOAD, restoring UNCLOG_ORIG_LD_PRELOAD) so the program's
// children are not recorded, finds the Swift runtime with dlsym and starts the recorder.
// Nothing here may change the program: any failure is one line on stderr, then the program
// runs unrecorded.
#define _GNU_SOURCE
#include "unclog_preload.h"
#include "unclog_recorder.h"

#include <dlfcn.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

static int started;
int unclog_preload_started(void) { return started; }

static void say(const char *msg) {
    ssize_t w = write(2, msg, strlen(msg));
    (void)w;
}

static uint64_t env_u64(const char *name, uint64_t fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    return (*end || x == 0) ? fallback : (uint64_t)x;
}

__attribute__((constructor)) static void unclog_preload_init(void) {
    const char *out = getenv("UNCLOG_OUTPUT");
    if (!out || !*out) return;
    char output[4096];
    snprintf(output, sizeof output, "%s", out);
    unclog_config cfg = {
        .output = output,
        .threshold_ns = env_u64("UNCLOG_THRESHOLD_NS", UNCLOG_DEFAULT_THRESHOLD_NS),
        .sample_interval_ns = env_u64("UNCLOG_SAMPLE_INTERVAL_NS", UNCLOG_DEFAULT_SAMPLE_INTERVAL_NS),
        .recorder_name = "unclog-swift " UNCLOG_VERSION " (LD_PRELOAD)",
        .quiet = 0,
    };
    unclog_runtime rt;
    unclog_runtime_lookup(&rt);
    rt.dispatch_async_f = dlsym(RTLD_NEXT, "dispatch_async_f");  // the real one: ours is below
    rt.loops = 1;
    // Interposition (default): time the runtime's own Dispatch callbacks; UNCLOG_SWIFT_MODE=hook
    // uses the executor hook instead (the UnclogRecorder library always does). A libdispatch with
    // dispatch_async_swift_job takes the runtime's jobs without dispatch_async_f (Darwin's does;
    // Linux's 6.3 does not): then only the hook sees them.
    rt.interpose = !(getenv("UNCLOG_SWIFT_MODE") && strcmp(getenv("UNCLOG_SWIFT_MODE"), "hook") == 0) &&
                   !dlsym(RTLD_DEFAULT, "dispatch_async_swift_job");
    if (!rt.enqueue_global_hook) {
        // Not a Swift Concurrency process (e.g. a wrapper such as `taskset` or `env` that will exec
        // the Swift program): leave the environment alone so the program it starts is recorded.
        return;
    }
    // Children are not recorded: forget the contract and restore the program's LD_PRELOAD.
    unsetenv("UNCLOG_OUTPUT");
    unsetenv("UNCLOG_THRESHOLD_NS");
    unsetenv("UNCLOG_SAMPLE_INTERVAL_NS");
    const char *orig = getenv("UNCLOG_ORIG_LD_PRELOAD");
    if (orig) setenv("LD_PRELOAD", orig, 1);
    else unsetenv("LD_PRELOAD");
    unsetenv("UNCLOG_ORIG_LD_PRELOAD");

    char error[512];
    if (unclog_recorder_start(&cfg, &rt, error, sizeof error) != 0) {
        char line[640];
        snprintf(line, sizeof line, "unclog: cannot record: %s\n", error);
        say(line);
        return;
    }
    started = 1;
}

// Event-loop threads: SwiftNIO (and any loop on a thread named in UNCLOG_LOOP_THREADS) waits in
// epoll_wait; the time between two waits is one loop iteration. Other threads pay one TLS check.
typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
    static epoll_wait_fn real;
    if (!real) real = (epoll_wait_fn)dlsym(RTLD_NEXT, "epoll_wait");
    int recorded = started ? unclog_loop_wait_begin(timeout) : 0;
    int r = real(epfd, events, maxevents, timeout);
    if (recorded) {
        int saved = errno;
        unclog_loop_wait_end(r);
        errno = saved;
    }
    return r;
}

// Interposition mode: the Swift runtime hands every job to Dispatch with dispatch_async_f (global
// and main-actor jobs) or dispatch_after_f (Task.sleep wake-ups), with its own callback; we run that
// callback timed. Everything else passes straight through.
typedef void (*dispatch_fn)(void *);
typedef void (*dispatch_async_f_fn)(void *, void *, dispatch_fn);
typedef void (*dispatch_after_f_fn)(uint64_t, void *, void *, dispatch_fn);
// The job callback is the runtime's, which the recorder learnt in unclog_interpose_note (NULL).
static void timed_swift_job(void *job) { unclog_run_job_interposed(job, NULL); }

void dispatch_async_f(void *queue, void *ctx, dispatch_fn fn) {
    static dispatch_async_f_fn real;
    dispatch_async_f_fn r = __atomic_load_n(&real, __ATOMIC_RELAXED);
    if (!r) __atomic_store_n(&real, r = (dispatch_async_f_fn)dlsym(RTLD_NEXT, "dispatch_async_f"), __ATOMIC_RELAXED);
    if (started && unclog_interpose_note(ctx, fn, 0, 0)) {
        r(queue, ctx, timed_swift_job);
        return;
    }
    r(queue, ctx, fn);
}

void dispatch_after_f(uint64_t when, void *queue, void *ctx, dispatch_fn fn) {
    static dispatch_after_f_fn real;
    dispatch_after_f_fn r = __atomic_load_n(&real, __ATOMIC_RELAXED);
    if (!r) __atomic_store_n(&real, r = (dispatch_after_f_fn)dlsym(RTLD_NEXT, "dispatch_after_f"), __ATOMIC_RELAXED);
    // Ready when the timer fires: `when` is CLOCK_MONOTONIC ns unless a flag bit says otherwise.
    if (started && unclog_interpose_note(ctx, fn, (when >> 62) == 0 ? when : 0, 1)) {
        r(when, queue, ctx, timed_swift_job);
        return;
    }
    r(when, queue, ctx, fn);
}
