// The reference the Swift recorder is measured against in the same run (Benchmarks/swift/bench.sh):
// the prototype of ../shared/research/swift-runtime.md, whose +47 ns per job issue 4 quotes. An
// LD_PRELOAD library whose global-executor hook hands each job to Dispatch's global queue with a
// trampoline that reads CLOCK_MONOTONIC before and after running it and appends the pair to a
// per-thread ring buffer. It records nothing else (no ready times, no stalls, no file).
//
// Measured here it often runs *faster* than the unrecorded program: Dispatch's global root queue
// is a shorter path than the runtime's own per-priority concurrent queues (which the recorder keeps,
// so the program's scheduling does not change). So compare the recorder with the unrecorded run
// first; this is a second reference for what two clock reads and a buffer write cost.
//
//   clang -O2 -shared -fPIC Benchmarks/swift/reference_hook.c -o reference_hook.so -ldl

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

// The runtime's ABI as the recorder declares it (job header, executor reference, hook types).
#include "../../Sources/CUnclogSwiftRecorder/runtime_abi.h"

static job_run_fn job_run;
static void (*async_f)(void *queue, void *ctx, void (*fn)(void *));
static void *queue;

#define RING 4096
static __thread uint64_t *ring;
static __thread unsigned ring_at;

static inline uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void trampoline(void *ctx) {
    if (!ring) ring = calloc(2 * RING, sizeof *ring);
    uint64_t start = mono_ns();
    job_run((swift_job *)ctx, (swift_executor_ref){NULL, 0});
    uint64_t end = mono_ns();
    if (ring) {
        unsigned i = (ring_at++ & (RING - 1)) * 2;
        ring[i] = start;
        ring[i + 1] = end;
    }
}

static SWIFTCALL void hook(swift_job *job, enqueue_original_fn original) {
    (void)original;
    async_f(queue, job, trampoline);
}

__attribute__((constructor)) static void install(void) {
    enqueue_hook_fn *slot = dlsym(RTLD_DEFAULT, "swift_task_enqueueGlobal_hook");
    void *(*global_queue)(long, unsigned long) = dlsym(RTLD_DEFAULT, "dispatch_get_global_queue");
    job_run = (job_run_fn)dlsym(RTLD_DEFAULT, "swift_job_run");
    async_f = dlsym(RTLD_DEFAULT, "dispatch_async_f");
    if (!slot || !global_queue || !job_run || !async_f) return;  // not a Swift Concurrency program
    queue = global_queue(0, 0);
    *slot = hook;
}
