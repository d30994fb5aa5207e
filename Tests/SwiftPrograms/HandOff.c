// A C program for unclog's recorder tests: it drives the Swift recorder's interposition entry
// points directly, as the LD_PRELOAD library does for the runtime's Dispatch callbacks, with jobs
// laid out like the runtime's. A hand-off job (NullaryContinuation, kind 195: what Task.yield()
// enqueues) is not timed, but the watchdog still watches it: a hand-off that blocks (e.g. a custom
// executor's `enqueue` run by the resumption, reachable through the global executor on runtimes
// before Swift 6.2) must be found. Prints "BLOCK handoff START END" (CLOCK_MONOTONIC ns).
//   clang -g HandOff.c CUnclogSwiftRecorder.build/*.c.o -ldl -lpthread -L<toolchain lib dir> -ldispatch -Wl,-rpath,<toolchain lib dir> -o handoff
//   ./handoff OUT.trace
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "unclog_recorder.h"

typedef struct {
    const void *metadata;
    uintptr_t refcounts;
    void *scheduler_private[2];
    uint32_t flags, id;
} job_t;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void short_job(void *job) { (void)job; }

__attribute__((noinline)) static void blocking_resumption(void *job) {
    (void)job;
    usleep(200000);  // BLOCK:handoff
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: handoff OUT.trace\n");
        return 2;
    }
    if (!dlopen("libswift_Concurrency.so", RTLD_NOW | RTLD_GLOBAL)) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    unclog_runtime rt;
    unclog_runtime_lookup(&rt);
    rt.interpose = 1;
    unclog_config cfg = {.output = argv[1],
                         .threshold_ns = 50000000ull,
                         .sample_interval_ns = 10000000ull,
                         .recorder_name = "unclog handoff test"};
    char err[256];
    if (unclog_recorder_start(&cfg, &rt, err, sizeof err)) {
        fprintf(stderr, "start: %s\n", err);
        return 1;
    }
    job_t task = {.flags = 0, .id = 7}, handoff = {.flags = 195};
    for (int i = 0; i < 100000; i++) {  // a yielding task: its job, then the hand-off that resumes it
        unclog_job_enqueued(&task, 0, 0);
        unclog_run_job_interposed(&task, short_job);
        unclog_job_enqueued(&handoff, 0, 0);
        unclog_run_job_interposed(&handoff, short_job);
    }
    unclog_job_enqueued(&handoff, 0, 0);
    uint64_t t0 = now_ns();
    unclog_run_job_interposed(&handoff, blocking_resumption);
    uint64_t t1 = now_ns();
    unclog_recorder_stop();
    printf("BLOCK handoff %llu %llu\n", (unsigned long long)t0, (unsigned long long)t1);
    return 0;
}
