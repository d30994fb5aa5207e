// The Swift runtime's and Dispatch's ABI as the recorder uses it: the job header, executor
// references, the hooks' and Dispatch's function types (ExecutorImpl.h of the toolchain, 64-bit).
#ifndef UNCLOG_RUNTIME_ABI_H
#define UNCLOG_RUNTIME_ABI_H

#include <stdint.h>

#if defined(__has_attribute) && __has_attribute(swiftcall)
#define SWIFTCALL __attribute__((swiftcall))
#else
#warning "this compiler lacks the swiftcall convention: the executor-hook mode would be miscompiled (build with clang)"
#define SWIFTCALL
#endif

typedef struct {
    const void *metadata;
    uintptr_t refCounts;
    void *schedulerPrivate[2];
    uint32_t flags;  // kind: bits 0-7 (0 = task), priority: bits 8-15
    uint32_t id;     // tasks: low 32 bits of the task id
} swift_job;

typedef struct {
    void *identity;
    uintptr_t implementation;
} swift_executor_ref;
typedef SWIFTCALL void (*enqueue_original_fn)(swift_job *job);
typedef SWIFTCALL void (*enqueue_hook_fn)(swift_job *job, enqueue_original_fn original);
typedef SWIFTCALL void (*job_run_fn)(swift_job *job, swift_executor_ref executor);
typedef SWIFTCALL swift_executor_ref (*get_main_executor_fn)(void);

typedef void (*dispatch_function_t)(void *);
typedef void (*dispatch_async_f_fn)(void *queue, void *ctx, dispatch_function_t fn);
typedef void *(*dispatch_queue_create_fn)(const char *label, void *attr);
typedef void *(*dispatch_attr_qos_fn)(void *attr, int qos, int relpri);
typedef void (*dispatch_set_width_fn)(void *queue, long width);
typedef void (*dispatch_after_f_fn)(uint64_t when, void *queue, void *ctx, dispatch_function_t fn);
typedef uint64_t (*dispatch_time_fn)(uint64_t when, int64_t delta);

// Job kinds (job flags bits 0-7) the recorder treats apart.
#define JOB_KIND_TASK                 0
#define JOB_KIND_DEFAULT_ACTOR_INLINE 192  // a default actor's drain job, embedded in the actor
#define KIND_HANDOFF                  195  // NullaryContinuation: see jobs.c

#endif
