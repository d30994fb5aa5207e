// The Swift recorder's C core, internal header: what its files share. The public API is
// include/unclog_recorder.h; docs/swift-recorder.md says how the recorder works. Design:
//
// * Hot path (jobs.c). Every job the runtime hands to Dispatch (interposition mode, LD_PRELOAD),
//   to the executor hook or to UnclogRecorder's executors gets a ready stamp at enqueue (in the
//   job's scheduler-private word) and runs in a trampoline that reads the clock, runs the job,
//   reads the clock again and appends `SwitchOther`/`SwitchToHub` (plus `StallEnd` when the job
//   ran past the threshold) to the thread's chunk buffer (buffers.c). No allocation, no system
//   call, no locked instruction, two clock reads per job (clock.c). Helpers the hot path calls
//   across files are `static inline` here so that they still inline.
// * Watchdog thread (watchdog.c). Every few ms: jobs running past the threshold get a
//   `StallBegin` and, every sample interval, a `StallSample` (sampler.c: a thread asleep in a
//   system call is copied with process_vm_readv, a running one is signalled; the copy is walked).
// * Writer (writer.c). Full chunk buffers are queued to the watchdog, which CRCs (crc32.c) and
//   writes them. Every FLUSH_PERIOD_NS (0.1 s) it also seals the chunks open for FLUSH_AGE_NS
//   (0.4 s) or more, so an event reaches the file at most ~0.5 s after it was recorded and a
//   killed program loses at most that.
#ifndef UNCLOG_RECORDER_INTERNAL_H
#define UNCLOG_RECORDER_INTERNAL_H

#if !defined(__x86_64__) || !defined(__linux__)
#error                                                                                                                           \
    "unclog's Swift recorder supports Linux x86-64 only: it reads the x86-64 time-stamp counter, x86-64 registers in its signal handler, x86-64 call encodings in its stack walk, and Linux's /proc, membarrier(2) and process_vm_readv(2)."
#endif

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "trace_format.h"

// Shared between the core's files, not exported from the shared library.
#define HIDDEN __attribute__((visibility("hidden")))

#define CHUNK_CAP   (64 * 1024)
#define CHUNK_SLACK 256  // room for the largest event one append writes
#define MAX_PENDING 512  // queued full chunks (32 MiB) before events are dropped

// ---------------------------------------------------------------------------------------------
// Timing periods (nanoseconds)

// The watchdog's period is a quarter of the threshold (sampling: of the sample interval), kept
// within 1-10 ms: often enough to notice a stall early and bound a ready stamp's earliness, rarely
// enough not to preempt busy workers (each wake-up does when every CPU is busy).
#define WATCHDOG_TICK_MIN_NS 1000000ull   // 1 ms
#define WATCHDOG_TICK_MAX_NS 10000000ull  // 10 ms
// How often the watchdog seals partly filled chunks, names new actors and frees exited threads'
// buffers: 10 times a second, which is also the rate of its membarrier(2) calls (one barrier on
// every thread of the process each).
#define FLUSH_PERIOD_NS 100000000ull  // 0.1 s
// A chunk open this long is sealed and written at the next flush: with the period above an event
// reaches the file within ~0.5 s, what a killed program loses at most. Younger chunks are left to
// fill (fewer, fuller chunks).
#define FLUSH_AGE_NS 400000000ull  // 0.4 s
// How often the watchdog looks for newly loaded libraries (one dl_iterate_phdr of the counts):
// their images must be known before a stack that runs in them is sampled.
#define IMAGES_PERIOD_NS 200000000ull  // 0.2 s
// TSC calibration: a first rate measured over 0.2 ms at start, then re-measured by the watchdog
// after 10 ms, 100 ms and then every second (each time over the whole recording so far, so the
// estimate only improves), steering toward CLOCK_MONOTONIC over that interval.
#define CAL_FIRST_ESTIMATE_NS 200000ull      // 0.2 ms: short, at start-up; corrected at 10 ms
#define CAL_FIRST_NS          10000000ull    // 10 ms
#define CAL_MAX_NS            1000000000ull  // 1 s
// How long the watchdog waits for a signalled thread's handler to copy its stack: far more than a
// delivery takes; a thread that does not answer (signal blocked meanwhile) gives no sample.
#define SAMPLE_SIGNAL_WAIT_NS 20000000ull  // 20 ms

// ---------------------------------------------------------------------------------------------
// Varint (the hot path inlines it)

static inline uint8_t *put_uvarint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (crc32.c)

HIDDEN extern int have_clmul;  // the CPU has PCLMULQDQ and SSE4.1: the folding kernel (tests clear it)
HIDDEN void crc_init(void);
HIDDEN uint32_t crc32_buf(const uint8_t *p, size_t n);

// ---------------------------------------------------------------------------------------------
// The clock (clock.c). Reading CLOCK_MONOTONIC (vDSO) costs several times what the CPU's
// invariant time-stamp counter does (docs/benchmarks.md). When the kernel itself trusts the TSC
// (clocksource `tsc`, constant and non-stop), the hot path reads raw ticks and converts them to CLOCK_MONOTONIC
// nanoseconds with parameters the watchdog recalibrates against clock_gettime, continuously (no
// jumps), so every time in the trace is on CLOCK_MONOTONIC within microseconds. Otherwise ticks
// are nanoseconds.

typedef struct {
    uint64_t base_tick, base_ns, mult;
} clock_params;  // ns = base_ns + (Δtick × mult) >> 32
HIDDEN extern int use_tsc;
HIDDEN extern _Atomic uint64_t coarse_tick;  // the watchdog's latest clock reading (ticks), every 1-10 ms
HIDDEN extern _Atomic(clock_params *) clock_cur;

static inline uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t rdtsc(void) {
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t ticks(void) { return use_tsc ? rdtsc() : mono_ns(); }
static inline uint64_t to_ns_p(const clock_params *p, uint64_t t) {
    if (!p) return t;
    int64_t d = (int64_t)(t - p->base_tick);
    return p->base_ns + (uint64_t)(int64_t)(((__int128)d * (__int128)p->mult) >> 32);
}
static inline const clock_params *clock_now_params(void) {
    return use_tsc ? atomic_load_explicit(&clock_cur, memory_order_acquire) : NULL;
}
static inline uint64_t to_ns(uint64_t t) { return to_ns_p(clock_now_params(), t); }
static inline uint64_t now_ns(void) { return to_ns(ticks()); }

HIDDEN void clock_start(void);
HIDDEN void clock_calibrate_tsc(void);  // the first estimate (clock_start; the C tests call it directly)
HIDDEN void clock_recalibrate(uint64_t horizon);

#ifndef UNCLOG_PURE_CORE  // the rest needs the runtime's ABI and the recorder's state (not the C tests)

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include "unclog_recorder.h"
#include "runtime_abi.h"

// ---------------------------------------------------------------------------------------------
// Greenthread ids the recorder gives (metadata `swift_job_kinds` describes the ranges)

#define GT_LOOP_BASE      0xC0000000u  // event-loop hubs and iterations (loops.c)
#define GT_SPAN_BASE      0xD0000000u  // spans (loops.c)
#define GT_ACTOR_BASE     0xE0000000u  // default actors' drain jobs, one per actor (jobs.c)
#define GT_RUNTIME_KIND   0xFFFFFF00u  // | kind: other runtime jobs, one per kind
#define HANDOFF_GT        0xFFFFFFC3u  // hand-offs past the threshold (jobs.c: KIND_HANDOFF)
#define GT_TIMER          0xFFFFFFF0u  // timer jobs (Task.sleep wake-ups)
#define GT_NO_TASK_ID     0xFFFFFFFDu  // task jobs without a task id
#define GT_ACTOR_OVERFLOW 0xFFFFFFFEu  // actors beyond ACTOR_SLOTS
#define ACTOR_SLOTS       8192

// ---------------------------------------------------------------------------------------------
// Per-thread chunk buffers (buffers.c)

typedef struct tbuf {
    struct tbuf *next;  // registry (append-only under reg_lock; removed by the watchdog)
    atomic_int busy;    // the owner is writing (buf_enter)
    atomic_int steal;   // another thread wants the buffer (buf_take)
    uint32_t tid;
    uint32_t seq;
    uint8_t *data;  // CHUNK_CAP bytes; the first 32 hold the chunk header
    uint32_t used;
    uint64_t base_ns, last_ns;
    _Atomic uint64_t opened_ns;  // when the open chunk got its first event; 0: none open
    uint64_t events;             // events written by this buffer (all chunks)
    uint64_t jobs;               // jobs recorded on this thread
    uint64_t handoffs;           // hand-off jobs run untimed (run_timed)
    uint64_t dropped;            // events lost (no memory, queue full)
    _Atomic uint64_t job_start;  // start of the running job, 0 when idle
    _Atomic uint32_t job_gt;
    int in_job;
    // watchdog-only state
    uint64_t stall_start_seen;
    uint64_t last_sample_ns;
    int announced;
    atomic_int dead;
    pthread_t thread;
    uintptr_t stack_lo, stack_hi;
} tbuf;

typedef struct pending {
    struct pending *next;
    uint8_t *data;
    uint32_t size;  // header + payload
} pending;

// The recorder's state (lifecycle.c).
typedef struct {
    unclog_config cfg;
    char output[PATH_MAX];
    enqueue_hook_fn previous_hook;
    void **hook_slot;
    enqueue_hook_fn previous_main_hook;
    void **main_hook_slot;
    void *main_queue;
    swift_executor_ref main_executor;
    job_run_fn job_run;
    dispatch_async_f_fn async_f;
    dispatch_queue_create_fn queue_create;
    dispatch_attr_qos_fn attr_qos;
    dispatch_set_width_fn set_width;
    dispatch_after_f_fn after_f;
    dispatch_time_fn dispatch_time;
    void *attr_concurrent;
    _Atomic(void *) queues[256];
    int fd;
    pid_t pid;
    atomic_int active;
    atomic_int stopping;
    pthread_t watchdog;
    pthread_mutex_t reg_lock;
    tbuf *_Atomic threads;
    pthread_mutex_t pend_lock;
    pending *pend_head, *pend_tail;
    int pend_count;
    uint64_t pend_dropped;
    uint64_t chunks_written;
    int sample_signal;
    uint64_t tick_ns;        // the watchdog's period while no job is past the threshold
    uint64_t stall_tick_ns;  // ... and while one is (sampling)
} recorder_state;
HIDDEN extern recorder_state R;

HIDDEN extern __thread tbuf *tls_buf __attribute__((tls_model("initial-exec")));  // jobs.c
HIDDEN extern tbuf *watchdog_buf;  // the watchdog's own buffer (metadata-like events: strings, frames…)
HIDDEN extern int asym_fence;      // membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) registered (set once, at start)

HIDDEN void seal_chunk(tbuf *b);
HIDDEN void asym_fence_init(void);
HIDDEN tbuf *register_thread(int worker);
HIDDEN void buffers_start(void);     // the thread-exit key and the watchdog's buffer
HIDDEN void registry_push(tbuf *b);  // adds a buffer to R.threads
// What flush_partial adds up when asked: every buffer's counters; the buffers' drop counts move here.
typedef struct {
    uint64_t events, dropped, jobs, handoffs;
} buf_totals;
HIDDEN extern uint64_t gone_events, gone_jobs, gone_handoffs, gone_dropped;  // totals of freed (exited) threads' buffers
HIDDEN void flush_partial(uint64_t now, buf_totals *tot);
HIDDEN void reap_threads(void);

// Buffer ownership. A thread's buffer is written by that thread (its owner) on the hot path, and
// taken over now and then by another thread: the watchdog seals the chunks open FLUSH_AGE_NS or
// more (it looks every FLUSH_PERIOD_NS), the stopping thread reads the counters. The owner's side
// takes no locked instruction (an uncontended spin lock was about a tenth of a job's recording
// cost, measured with perf: docs/benchmarks.md): it raises `busy`, then
// checks `steal` (Dekker's protocol). The store-load fence between the two is supplied by the
// taker's membarrier(2), which runs a full barrier on every thread of the process: either the owner
// sees `steal` and backs off, or the taker sees `busy` and waits (the asymmetric fence of liburcu
// and folly). Without membarrier the owner fences itself. An owner never takes its own buffer
// while inside buf_enter/buf_exit; a taker never writes events between buf_take and buf_give.

static inline void buf_enter(tbuf *b) {
    for (;;) {
        atomic_store_explicit(&b->busy, 1, memory_order_relaxed);
        if (asym_fence) atomic_signal_fence(memory_order_seq_cst);
        else atomic_thread_fence(memory_order_seq_cst);
        if (__builtin_expect(!atomic_load_explicit(&b->steal, memory_order_acquire), 1)) return;
        atomic_store_explicit(&b->busy, 0, memory_order_release);
        // The taker holds it for microseconds; yield if it was preempted, not to keep it off the CPU.
        for (int spins = 0; atomic_load_explicit(&b->steal, memory_order_acquire); spins++) {
            if (spins < 200) __builtin_ia32_pause();
            else sched_yield();
        }
    }
}
static inline void buf_exit(tbuf *b) { atomic_store_explicit(&b->busy, 0, memory_order_release); }

// Opens a chunk if needed (first event at time t), making room for one more event.
static inline uint8_t *begin_event(tbuf *b, uint64_t t) {
    if (b->used > CHUNK_CAP - CHUNK_SLACK) seal_chunk(b);
    if (b->used == CHUNK_HEADER) {
        b->base_ns = t;
        b->last_ns = t;
        atomic_store_explicit(&b->opened_ns, t, memory_order_relaxed);
        if (b->dropped) {  // report losses at the start of the next chunk
            uint8_t *p = b->data + b->used;
            *p++ = EV_DROPPED;
            *p++ = 0;
            *p++ = DROPPED_BUFFER_FULL;
            p = put_uvarint(p, b->dropped);
            b->dropped = 0;
            b->used = (uint32_t)(p - b->data);
            b->events++;
        }
    }
    return b->data + b->used;
}
static inline uint8_t *put_dt(tbuf *b, uint8_t *p, uint64_t t) {
    uint64_t dt = t > b->last_ns ? t - b->last_ns : 0;
    if (t > b->last_ns) b->last_ns = t;
    return put_uvarint(p, dt);
}

// StallEnd for a slice of `gt` ending at `end` that lasted `dur`, when past the threshold.
static inline uint8_t *put_stall_end_if_long(tbuf *b, uint8_t *p, uint32_t gt, uint64_t end, uint64_t dur) {
    if (dur <= R.cfg.threshold_ns) return p;
    *p++ = EV_STALL_END;
    p = put_dt(b, p, end);
    p = put_uvarint(p, gt);
    p = put_uvarint(p, dur);
    *p++ = 0;
    b->events++;
    return p;
}

// ---------------------------------------------------------------------------------------------
// Jobs (jobs.c)

HIDDEN extern _Atomic(uintptr_t) actor_keys[ACTOR_SLOTS];
HIDDEN extern uint32_t actor_ids[ACTOR_SLOTS];
HIDDEN extern int interpose_on;              // interposition mode (LD_PRELOAD): no hook, the runtime's own callbacks
HIDDEN extern int loops_on;                  // the caller interposes epoll_wait
HIDDEN void find_concurrency_runtime(void);  // libswift_Concurrency's mapping: sets what is_swift_job compares
HIDDEN extern uintptr_t conc_text_hi;        // 0 until found
HIDDEN SWIFTCALL void enqueue_hook(swift_job *job, enqueue_original_fn original);
HIDDEN SWIFTCALL void enqueue_main_hook(swift_job *job, enqueue_original_fn original);

// ---------------------------------------------------------------------------------------------
// Event loops (loops.c), images (images.c), ids and the events that define them (intern.c)

HIDDEN void loops_set_prefixes(const char *prefixes);

typedef struct {
    uint32_t id;
    uintptr_t bias, start, end;
    char path[256];
    int libc_like;    // frames here are usually frameless (scan for return addresses)
    int concurrency;  // libswift_Concurrency: a return into it ends the running funclets
} image;
HIDDEN const image *find_image(uintptr_t a);
HIDDEN void refresh_images(tbuf *out, int force);

HIDDEN extern uint32_t next_id;  // string/frame/stack/image ids (one counter; the watchdog's, and start's)
HIDDEN void emit_string(tbuf *b, uint32_t id, const char *s, size_t n);
HIDDEN void emit_simple(tbuf *b, uint8_t type, uint64_t t, int n, const uint64_t *f);
HIDDEN uint32_t intern_frame(tbuf *out, uintptr_t addr, uint32_t flags);
HIDDEN uint32_t intern_stack(tbuf *out, const uint32_t *frames, int n);

// ---------------------------------------------------------------------------------------------
// Sampling (sampler.c), writing (writer.c), the watchdog (watchdog.c)

#define MAX_FRAMES 256            // frames per sampled stack (the format allows 1024)
HIDDEN void sampler_start(void);  // picks the sampling signal, installs its handler
HIDDEN uint32_t sample_thread(tbuf *out, tbuf *t, uint64_t *state);
HIDDEN void write_pending(void);
HIDDEN void write_header_and_metadata(void);
HIDDEN void *watchdog_main(void *arg);
HIDDEN void name_actors(void);

#endif  // UNCLOG_PURE_CORE
#endif
