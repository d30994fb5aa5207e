// The hot path: timing jobs. Every way a job reaches the recorder ends here: the interposed
// Dispatch calls (the runtime's own job callback, LD_PRELOAD), the executor hooks and the
// executor-factory entry points. Enqueue stamps the job's ready time; run_timed runs it between two
// clock reads and record_job appends its slice to the thread's buffer. Kept in one file on purpose:
// the per-job cost depends on what inlines into run_timed (record_job is forced inline; the
// helpers it calls are static inline in recorder_internal.h), measured with
// Benchmarks/swift/recorder_micro.c. Also the job → greenthread mapping (tasks, actors, kinds).
#include "recorder_internal.h"

#include <elf.h>
#include <link.h>

__thread tbuf *tls_buf __attribute__((tls_model("initial-exec")));

// The hot path: one job's slice on this thread.
__attribute__((always_inline)) static inline void record_job(tbuf *b, uint32_t gt, uint64_t enq, uint64_t start, uint64_t end) {
    const clock_params *cp = clock_now_params();  // ticks → CLOCK_MONOTONIC ns
    enq = !enq ? 0 : (enq >> 63) ? (enq & ~(1ull << 63)) : to_ns_p(cp, enq);
    if (enq > start) enq = 0;  // unknown (e.g. a timer's deadline in another clock)
    start = to_ns_p(cp, start);
    end = to_ns_p(cp, end);
    buf_enter(b);
    uint8_t *p = begin_event(b, start);
    if (b->used == CHUNK_HEADER) {  // each chunk starts with Running (no greenthread, no hub)
        *p++ = EV_RUNNING;
        *p++ = 0;
        *p++ = 0;
        *p++ = 0;
        b->events++;
    }
    *p++ = EV_SWITCH_OTHER;
    p = put_dt(b, p, start);
    p = put_uvarint(p, gt);
    p = put_uvarint(p, enq && enq <= start ? start - enq : 0);
    p = put_stall_end_if_long(b, p, gt, end, end - start);
    *p++ = EV_SWITCH_TO_HUB;
    p = put_dt(b, p, end);
    b->events += 2;
    b->jobs++;
    b->used = (uint32_t)(p - b->data);
    buf_exit(b);
}

// ---------------------------------------------------------------------------------------------
// Which greenthread a job's slice belongs to

// Default-actor drain jobs: one greenthread id per actor (0xE0000000 and up).
_Atomic(uintptr_t) actor_keys[ACTOR_SLOTS];
static _Atomic uint32_t next_actor_gt = GT_ACTOR_BASE;
uint32_t actor_ids[ACTOR_SLOTS];

static uint32_t actor_gt(swift_job *job) {
    uintptr_t k = (uintptr_t)job;
    uint32_t h = (uint32_t)((k >> 4) * 2654435761u) & (ACTOR_SLOTS - 1);
    for (int i = 0; i < 16; i++, h = (h + 1) & (ACTOR_SLOTS - 1)) {
        uintptr_t cur = atomic_load_explicit(&actor_keys[h], memory_order_acquire);
        if (cur == k) {
            uint32_t id;
            while ((id = __atomic_load_n(&actor_ids[h], __ATOMIC_ACQUIRE)) == 0) __builtin_ia32_pause();
            return id;
        }
        if (cur == 0) {
            uintptr_t expected = 0;
            if (atomic_compare_exchange_strong(&actor_keys[h], &expected, k)) {
                uint32_t id = atomic_fetch_add(&next_actor_gt, 1);
                __atomic_store_n(&actor_ids[h], id, __ATOMIC_RELEASE);
                return id;
            }
            if (expected == k) {
                h = (h - 1) & (ACTOR_SLOTS - 1);
                continue;
            }
        }
    }
    return GT_ACTOR_OVERFLOW;  // table full: all remaining non-task jobs share one id
}

// The greenthread of a job: a task's id; a default actor's inline drain job (kind 192, embedded in
// the actor): one id per actor; other runtime jobs (separate actor jobs, continuation resumptions
// such as Task.sleep wake-ups, isolated deinits): one id per kind, 0xFFFFFF00 | kind.
static inline uint32_t job_gt(swift_job *job, uint32_t flags) {
    uint32_t kind = flags & 0xFF;
    if (kind == JOB_KIND_TASK) return job->id;
    if (kind == JOB_KIND_DEFAULT_ACTOR_INLINE) return actor_gt(job);
    return GT_RUNTIME_KIND | kind;
}

// A hand-off job (KIND_HANDOFF: NullaryContinuation, kind 195, Task.yield() and the deprecated Task.sleep(UInt64))
// runs runtime code: it frees itself and resumes a continuation, which enqueues the suspended task.
// It is not timed (two clock reads saved of the four a Task.yield() would cost); the work it
// enqueues inherits its ready stamp instead, so the yielding task is seen waiting from its yield
// to its next slice, with nothing in between. The enqueue can still run program code (a custom
// executor's `enqueue`, e.g. an actor's), so the watchdog watches hand-offs too, from a start
// read from the watchdog's own last clock reading (no clock read here): bit 0 of such a start is
// set (timed jobs' starts have it clear), and the watchdog allows it one tick of earliness. A
// hand-off the watchdog may have seen past the threshold is recorded as a slice of HANDOFF_GT.

// A timer's stamp (deadline | 3 << 62) as a plain CLOCK_MONOTONIC ns stamp (| 1 << 63).
static inline uint64_t timer_stamp_as_ns(uint64_t stamp) { return stamp & ~(1ull << 62); }
static __thread uint64_t handoff_ready __attribute__((tls_model("initial-exec")));  // a stamp, 0 = none
static void record_handoff(tbuf *b, uint64_t enq, uint64_t start);

// Runs one job on `executor`, timed. The job's enqueue time is in its scheduler-private word.
// (`fn` non-NULL: interposition mode, the runtime's own callback runs the job, enq given.)
static inline void run_timed(swift_job *job, swift_executor_ref executor, void (*fn)(void *), uint64_t enq_given) {
    uint32_t flags = job->flags;
    uint64_t enq = fn ? enq_given : (uint64_t)(uintptr_t)job->schedulerPrivate[1];
    tbuf *b = tls_buf;
    if (__builtin_expect((flags & 0xFF) == KIND_HANDOFF, 0)) {
        // A timer's stamp (deprecated Task.sleep) becomes the deadline as a plain ns stamp: the
        // task it wakes is then itself, not the shared timer greenthread.
        uint64_t saved = handoff_ready, h = (enq >> 62) == 3 ? timer_stamp_as_ns(enq) : enq;
        handoff_ready = h;
        uint64_t c0 = 0;
        if (b && !b->in_job && atomic_load_explicit(&R.active, memory_order_relaxed)) {
            c0 = atomic_load_explicit(&coarse_tick, memory_order_relaxed) | 1;
            atomic_store_explicit(&b->job_gt, HANDOFF_GT, memory_order_relaxed);
            atomic_store_explicit(&b->job_start, c0, memory_order_release);
        }
        if (fn) fn(job);
        else R.job_run(job, executor);
        handoff_ready = saved;
        if (c0) {
            atomic_store_explicit(&b->job_start, 0, memory_order_relaxed);
            // The watchdog ticked meanwhile: the hand-off may have been long (rare: ~100 ns each).
            if (__builtin_expect((atomic_load_explicit(&coarse_tick, memory_order_relaxed) | 1) != c0, 0))
                record_handoff(b, h, c0);
        }
        if (b) b->handoffs++;
        return;
    }
    uint32_t gt = job_gt(job, flags);
    if ((enq >> 62) == 3) {  // a timer's job (Task.sleep wake-up): one greenthread for all
        gt = GT_TIMER;
        enq = timer_stamp_as_ns(enq);
    }
    if (__builtin_expect(b == NULL, 0)) {
        if (atomic_load_explicit(&R.active, memory_order_relaxed)) b = register_thread(1);
    }
    if (__builtin_expect(!b || b->in_job || atomic_load_explicit(&R.stopping, memory_order_relaxed), 0)) {
        if (fn) fn(job);
        else R.job_run(job, executor);
        return;
    }
    if (gt == 0) gt = GT_NO_TASK_ID;
    uint64_t start = ticks() & ~1ull;  // bit 0 clear: an exact start (see KIND_HANDOFF)
    b->in_job = 1;
    atomic_store_explicit(&b->job_gt, gt, memory_order_relaxed);
    atomic_store_explicit(&b->job_start, start, memory_order_release);
    if (fn) fn(job);
    else R.job_run(job, executor);
    uint64_t end = ticks();
    atomic_store_explicit(&b->job_start, 0, memory_order_relaxed);
    b->in_job = 0;
    record_job(b, gt, enq, start, end);
}

// A hand-off during which the watchdog ticked: recorded (with its stall) if it lasted past the
// threshold plus the tick its start may be early by, the watchdog's own test (check_stalls), so a
// StallBegin it wrote always gets its StallEnd. The duration may be a tick too long.
static void record_handoff(tbuf *b, uint64_t enq, uint64_t start) {
    if (atomic_load_explicit(&R.stopping, memory_order_relaxed)) return;
    uint64_t end = ticks();
    const clock_params *cp = clock_now_params();
    uint64_t s = to_ns_p(cp, start), e = to_ns_p(cp, end);
    if (e > s && e - s > R.cfg.threshold_ns + R.tick_ns) record_job(b, HANDOFF_GT, enq, start, end);
}

static void trampoline(void *ctx) { run_timed(ctx, (swift_executor_ref){NULL, 0}, NULL, 0); }

// Main-actor jobs: run on the main queue with the main executor, as the runtime's
// swift_dispatchEnqueueMain does.
static void trampoline_main(void *ctx) { run_timed(ctx, R.main_executor, NULL, 0); }

// Interposition mode. A job's ready stamp (ticks, or CLOCK_MONOTONIC ns | 1 << 63) waits in the
// job itself, in schedulerPrivate[0]: between enqueue and run that word belongs to the executor (it
// is Dispatch's queue linkage when the runtime uses dispatch_async_swift_job; with dispatch_async_f,
// as on Linux, nothing uses it: a waiting task's next-waiter link there is read before the task is
// enqueued). The runtime keeps its queue in schedulerPrivate[1], untouched. The job's first cache
// line is written by the runtime just before and read by it just after, so the stamp costs no miss
// (a side table keyed by address cost two misses per job, a third of the recorder's per-job time).
static uintptr_t conc_lo, conc_hi, conc_text_lo;  // libswift_Concurrency's mapping, text (from conc_text_lo to conc_text_hi)
uintptr_t conc_text_hi;
int interpose_on;
int loops_on;

int unclog_interpose_mode(void) { return interpose_on && atomic_load_explicit(&R.active, memory_order_relaxed); }

static inline int is_swift_job(void *ctx, void (*fn)(void *)) {
    uintptr_t f = (uintptr_t)fn;
    if (f < conc_text_lo || f >= conc_text_hi || !ctx) return 0;
    uintptr_t meta = *(const uintptr_t *)ctx;  // a job's metadata is the runtime's own
    return meta >= conc_lo && meta < conc_hi;
}
int unclog_is_swift_job(void *ctx, void (*fn)(void *)) { return is_swift_job(ctx, fn); }

// The ready stamp (ticks, or CLOCK_MONOTONIC ns | 1 << 63) of a job enqueued now. Inside a hand-off
// job: the hand-off's own stamp (the task yielded then). Inside a young timed job (nearly every enqueue: a task's
// continuation, an actor hop, a child task, from a job the watchdog has not seen running yet) it
// costs no clock read: the enqueuing job's start is never after the true time and at most that
// job's age, under one watchdog tick, before it. A job the watchdog saw running may be long (a
// stall): work it enqueues as it ends must not look ready inside it (a false victim), so the
// clock is read: a fifth of a job's recording cost (docs/benchmarks.md). Elsewhere (main
// thread outside jobs, foreign threads) the clock is read.
static inline uint64_t ready_stamp(void) {
    tbuf *b = tls_buf;
    if (b && b->in_job) {
        uint64_t s = atomic_load_explicit(&b->job_start, memory_order_relaxed);
        uint64_t c = atomic_load_explicit(&coarse_tick, memory_order_relaxed);
        return s >= c ? s : ticks();
    }
    uint64_t h = handoff_ready;  // inside a hand-off job: the yield's own stamp
    return h ? h : ticks();
}

static inline void job_enqueued(void *job, uint64_t ready_mono_ns, int timer) {
    // Tags: bit 63 = the value is CLOCK_MONOTONIC ns (else ticks), bit 62 (with 63) = a timer's job.
    uint64_t v = timer           ? ((ready_mono_ns & ((1ull << 62) - 1)) | (3ull << 62))
                 : ready_mono_ns ? (ready_mono_ns | (1ull << 63))
                                 : ready_stamp();
    ((swift_job *)job)->schedulerPrivate[0] = (void *)(uintptr_t)v;
}

void unclog_job_enqueued(void *job, uint64_t ready_mono_ns, int timer) { job_enqueued(job, ready_mono_ns, timer); }

// The preload library's one call per dispatch_async_f/dispatch_after_f (one call, not three: this
// runs for every job): while recording in interposition mode, is (ctx, fn) a job of the Swift
// runtime run by its job callback? If so, note its enqueue time and return 1.
static void (*swift_job_callback)(void *);  // the runtime's job callback (one function), learnt at first use
int unclog_interpose_note(void *ctx, void (*fn)(void *), uint64_t ready_mono_ns, int timer) {
    if (!interpose_on || !atomic_load_explicit(&R.active, memory_order_relaxed) || !is_swift_job(ctx, fn)) return 0;
    void (*known)(void *) = __atomic_load_n(&swift_job_callback, __ATOMIC_RELAXED);
    if (!known) {
        __atomic_store_n(&swift_job_callback, fn, __ATOMIC_RELAXED);
        known = fn;
    }
    if (fn != known) return 0;
    job_enqueued(ctx, ready_mono_ns, timer);
    return 1;
}

void unclog_run_job_interposed(void *job, void (*fn)(void *)) {
    if (!fn) fn = __atomic_load_n(&swift_job_callback, __ATOMIC_RELAXED);  // the runtime's, learnt by the note
    swift_job *j = job;
    uint64_t enq = (uint64_t)(uintptr_t)j->schedulerPrivate[0];
    j->schedulerPrivate[0] = NULL;  // the executor's use of the word ends here
    run_timed(j, (swift_executor_ref){NULL, 0}, fn, enq);
}

static int conc_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libswift_Concurrency.so")) return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr, e = a + ph->p_memsz;
        if (a < lo) lo = a;
        if (e > hi) hi = e;
        if (ph->p_flags & PF_X) {
            conc_text_lo = a;
            conc_text_hi = e;
        }
    }
    conc_lo = lo;
    conc_hi = hi;
    return 1;
}
void find_concurrency_runtime(void) { dl_iterate_phdr(conc_cb, NULL); }

// The hook and executor modes: stamp the job's ready time in schedulerPrivate[1] (ours: the
// runtime's own Dispatch path is bypassed) and hand it to `queue` with a timing trampoline.
static inline void dispatch_timed(swift_job *job, void *queue, void (*trampoline_fn)(void *)) {
    job->schedulerPrivate[1] = (void *)(uintptr_t)ready_stamp();
    R.async_f(queue, job, trampoline_fn);
}

SWIFTCALL void enqueue_main_hook(swift_job *job, enqueue_original_fn original) {
    if (atomic_load_explicit(&R.stopping, memory_order_relaxed) || R.previous_main_hook) {
        if (R.previous_main_hook) R.previous_main_hook(job, original);
        else original(job);
        return;
    }
    dispatch_timed(job, R.main_queue, trampoline_main);
}

static void *queue_for(uint32_t priority) {
    void *q = atomic_load_explicit(&R.queues[priority], memory_order_acquire);
    if (__builtin_expect(q != NULL, 1)) return q;
    // As the runtime does (DispatchGlobalExecutor.cpp, non-Apple): a concurrent queue per
    // priority, width = number of logical CPUs.
    void *attr = R.attr_qos(R.attr_concurrent, (int)priority, 0);
    void *nq = R.queue_create("Swift global concurrent queue", attr);
    R.set_width(nq, -3 /* DISPATCH_QUEUE_WIDTH_MAX_LOGICAL_CPUS */);
    void *expected = NULL;
    if (!atomic_compare_exchange_strong(&R.queues[priority], &expected, nq)) return expected;  // leak one queue on a race
    return nq;
}

SWIFTCALL void enqueue_hook(swift_job *job, enqueue_original_fn original) {
    if (__builtin_expect(atomic_load_explicit(&R.stopping, memory_order_relaxed), 0)) {
        if (R.previous_hook) R.previous_hook(job, original);
        else original(job);
        return;
    }
    // Another hook (installed before us) decides where jobs run: we cannot time them.
    if (R.previous_hook) {
        R.previous_hook(job, original);
        return;
    }
    dispatch_timed(job, queue_for((job->flags >> 8) & 0xFF), trampoline);
}

// Executor-factory mode: the executors UnclogRecorder installs with _createExecutors(factory:)
// enqueue here. Same queues and trampolines as the hook; the main executor's reference is the
// program's (UnclogRecorder's) main executor, so main-actor isolation checks hold in the job.
int unclog_executors_prepare(void *identity, uintptr_t implementation) {
    if (!R.async_f || !R.queue_create || !R.attr_qos || !R.set_width || !R.job_run || !R.main_queue || !R.after_f ||
        !R.dispatch_time)
        return -1;
    R.main_executor = (swift_executor_ref){identity, implementation};
    return 0;
}
void unclog_executor_enqueue_global(void *j) {
    swift_job *job = j;
    dispatch_timed(job, queue_for((job->flags >> 8) & 0xFF), trampoline);
}
void unclog_executor_enqueue_main(void *j) { dispatch_timed(j, R.main_queue, trampoline_main); }
// A delayed job (Task.sleep): ready at its deadline (CLOCK_MONOTONIC ns, tagged as a timer's job).
void unclog_executor_enqueue_after(void *j, uint64_t delay_ns) {
    swift_job *job = j;
    if (delay_ns > (uint64_t)INT64_MAX) delay_ns = (uint64_t)INT64_MAX;
    uint64_t deadline = mono_ns() + delay_ns;
    job->schedulerPrivate[1] = (void *)(uintptr_t)((deadline & ((1ull << 62) - 1)) | (3ull << 62));
    R.after_f(R.dispatch_time(0 /* DISPATCH_TIME_NOW */, (int64_t)delay_ns), queue_for((job->flags >> 8) & 0xFF), job,
              trampoline);
}
