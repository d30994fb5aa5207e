// Microbenchmark of the Swift recorder's own per-job calls (timed run of an empty job that, like a
// runtime job, enqueues its successor), without the Swift runtime or Dispatch doing any work. Build and run:
//   clang -O2 -I Sources/CUnclogSwiftRecorder/include Benchmarks/swift/recorder_micro.c \
//      Sources/CUnclogSwiftRecorder/*.c -o /tmp/recorder_micro -ldl -lpthread \
//      -L/opt/swift/usr/lib/swift/linux -Wl,-rpath,/opt/swift/usr/lib/swift/linux -ldispatch
//   taskset -c 0 /tmp/recorder_micro      (UNCLOG_NO_TSC=1: with clock_gettime)
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include "unclog_recorder.h"
typedef struct {
    const void *metadata;
    uintptr_t rc;
    void *sp[2];
    uint32_t flags, id;
    char pad[64];
} job_t;
static job_t *jobs;
// Each job enqueues the next one from inside itself, as a task's job enqueues its continuation.
static void fn(void *j) { unclog_job_enqueued(&jobs[((job_t *)j - jobs + 1) % 100], 0, 0); }
static void bare(void *j) { (void)j; }
static uint64_t now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000ull + t.tv_nsec;
}
int main(void) {
    unclog_runtime rt;
    void *h = dlopen("libswift_Concurrency.so", RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        printf("no runtime\n");
        return 1;
    }
    unclog_runtime_lookup(&rt);
    rt.interpose = 1;
    unclog_config cfg = {.output = "/tmp/recorder_micro.trace", .threshold_ns = 1000000000ull, .sample_interval_ns = 10000000ull};
    char err[256];
    if (unclog_recorder_start(&cfg, &rt, err, sizeof err)) {
        printf("start: %s\n", err);
        return 1;
    }
    jobs = calloc(100, sizeof(job_t));
    for (int i = 0; i < 100; i++) jobs[i].id = i + 1;
    for (int round = 0; round < 3; round++) {
        uint64_t t0 = now();
        unclog_job_enqueued(&jobs[0], 0, 0);
        for (int i = 0; i < 10000000; i++) {
            job_t *j = &jobs[i % 100];
            unclog_run_job_interposed(j, fn);
        }
        uint64_t t1 = now();
        for (int i = 0; i < 10000000; i++) {
            job_t *j = &jobs[i % 100];
            bare(j);
            __asm__ volatile("" ::: "memory");
        }
        uint64_t t2 = now();
        printf("recorded job: %.1f ns, bare: %.1f ns\n", (t1 - t0) / 1e7, (t2 - t1) / 1e7);
    }
    unclog_recorder_stop();
    return 0;
}
