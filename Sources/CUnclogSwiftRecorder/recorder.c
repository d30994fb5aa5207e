// unclog's Swift Concurrency recorder, C core. See include/unclog_recorder.h and
// schema/trace-format.md. Design:
//
// * Hot path. `swift_task_enqueueGlobal_hook` receives every job the global executor is
//   asked to run. The hook stamps the enqueue time into the job's scheduler-private word (the
//   runtime's own Dispatch path uses the same word as scratch between enqueue and run), and
//   hands the job to a Dispatch queue made exactly like the runtime's own (one concurrent
//   queue per priority, width = logical CPUs) with a trampoline that reads the clock, runs the
//   job with `swift_job_run` on the generic executor, reads the clock again and appends
//   `Switch…`/`SwitchToHub` (plus `StallEnd` when the job ran past the threshold) to the
//   thread's chunk buffer. No allocation, no system call, no locked instruction, two
//   clock reads per job (an enqueue inside a job takes its ready time from state already at
//   hand: ready_stamp). The same trampolines serve the interposition mode (the runtime's own
//   Dispatch callbacks, LD_PRELOAD) and the executor-factory mode (UnclogRecorder's executors).
// * Watchdog thread. Every few ms: jobs running past the threshold get a `StallBegin` and, every
//   sample interval, a `StallSample`. A thread asleep in a system call (read from
//   /proc/self/task/TID/syscall: syscall number, stack pointer, pc) is never signalled (a
//   signal would end its sleep with EINTR): its stack is copied with process_vm_readv and
//   walked by frame-pointer scanning. A running thread gets a real-time signal whose handler
//   copies its registers and the top of its stack; the watchdog walks the copy.
// * Writer. Full chunk buffers are queued to the watchdog, which CRCs and writes them; every
//   0.5 s it also takes partially filled buffers, so a killed program loses at most ~0.5 s.

#define _GNU_SOURCE
#include "unclog_recorder.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <linux/membarrier.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <ucontext.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <unistd.h>

#if defined(__has_attribute) && __has_attribute(swiftcall)
#define SWIFTCALL __attribute__((swiftcall))
#else
#warning "this compiler lacks the swiftcall convention: the executor-hook mode would be miscompiled (build with clang)"
#define SWIFTCALL
#endif

// ---------------------------------------------------------------------------------------------
// Swift runtime ABI (ExecutorImpl.h of the toolchain, 64-bit layout)

typedef struct {
    const void *metadata;
    uintptr_t refCounts;
    void *schedulerPrivate[2];
    uint32_t flags;  // kind: bits 0-7 (0 = task), priority: bits 8-15
    uint32_t id;     // tasks: low 32 bits of the task id
} swift_job;

typedef struct { void *identity; uintptr_t implementation; } swift_executor_ref;
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

// ---------------------------------------------------------------------------------------------
// Trace format constants

enum {
    EV_STRING = 0x01, EV_NATIVE_FRAME = 0x03, EV_STACK = 0x04, EV_IMAGE = 0x05, EV_THREAD = 0x06,
    EV_GT_CREATE = 0x07, EV_RUNNING = 0x09, EV_SWITCH_HUB = 0x10, EV_SWITCH_IO = 0x12, EV_SWITCH_SPAWN = 0x13,
    EV_SWITCH_OTHER = 0x15, EV_IO_WAIT_BEGIN = 0x20, EV_IO_WAIT_END = 0x21,
    EV_STALL_BEGIN = 0x30, EV_STALL_SAMPLE = 0x31, EV_STALL_END = 0x32, EV_DROPPED = 0x40, EV_END = 0x7F,
};
#define CHUNK_HEADER 32
#define CHUNK_CAP (64 * 1024)
#define CHUNK_SLACK 256  // room for the largest event one append writes
#define MAX_PENDING 512  // queued full chunks (32 MiB) before events are dropped

static inline uint8_t *put_uvarint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) { *p++ = (uint8_t)(v | 0x80); v >>= 7; }
    *p++ = (uint8_t)v;
    return p;
}

// CRC-32 (zlib's), slicing-by-8: ~0.3 ns per byte, on the watchdog thread only.
static uint32_t crc_table[8][256];
#if defined(__x86_64__)
static int have_clmul;  // the CPU has PCLMULQDQ and SSE4.1: crc32_fold
#endif
static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
}
#if defined(__x86_64__)
// The writer CRCs every byte of the trace (~10 bytes per job) on the watchdog thread; with
// PCLMULQDQ that costs ~0.1 ns per byte instead of ~0.3 for the tables (checked against them).
// CRC-32 (IEEE, reflected) by carry-less multiplication folding (Gopal et al., Intel 2009):
// four 128-bit lanes folded 64 bytes at a time, folded to one lane, then 16 bytes at a time,
// reduced to 64 and 32 bits (Barrett). `c` and the result are the raw register (not inverted).
// Requires n >= 64 and n % 16 == 0.
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc32_fold(const uint8_t *p, size_t n, uint32_t c) {
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596ll, 0x0154442bd4ll);
    const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009ell, 0x01751997d0ll);
    const __m128i k5 = _mm_set_epi64x(0, 0x0163cd6124ll);
    const __m128i poly = _mm_set_epi64x(0x01f7011641ll, 0x01db710641ll);
    const __m128i low32 = _mm_setr_epi32(-1, 0, -1, 0);
    __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 0));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)c));
    p += 64; n -= 64;
    while (n >= 64) {
#define FOLD(x, k, y) _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), y)
        x1 = FOLD(x1, k1k2, _mm_loadu_si128((const __m128i *)(p + 0)));
        x2 = FOLD(x2, k1k2, _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = FOLD(x3, k1k2, _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = FOLD(x4, k1k2, _mm_loadu_si128((const __m128i *)(p + 48)));
        p += 64; n -= 64;
    }
    x1 = FOLD(x1, k3k4, x2);
    x1 = FOLD(x1, k3k4, x3);
    x1 = FOLD(x1, k3k4, x4);
    while (n >= 16) {
        x1 = FOLD(x1, k3k4, _mm_loadu_si128((const __m128i *)p));
        p += 16; n -= 16;
    }
#undef FOLD
    // 128 → 64 bits, then → 32 bits through x^64 mod P, then Barrett reduction.
    __m128i x = _mm_xor_si128(_mm_srli_si128(x1, 8), _mm_clmulepi64_si128(x1, k3k4, 0x10));
    x = _mm_xor_si128(_mm_srli_si128(x, 4), _mm_clmulepi64_si128(_mm_and_si128(x, low32), k5, 0x00));
    __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x, low32), poly, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), poly, 0x00);
    x = _mm_xor_si128(x, t);
    return (uint32_t)_mm_extract_epi32(x, 1);
}
#endif

static uint32_t crc32_buf(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
#if defined(__x86_64__)
    if (have_clmul && n >= 64) {
        size_t m = n & ~(size_t)15;
        c = crc32_fold(p, m, c);
        p += m; n -= m;
    }
#endif
    while (n >= 8) {
        uint32_t a, b;
        memcpy(&a, p, 4); memcpy(&b, p + 4, 4);
        a ^= c;
        c = crc_table[7][a & 0xFF] ^ crc_table[6][(a >> 8) & 0xFF] ^ crc_table[5][(a >> 16) & 0xFF] ^ crc_table[4][a >> 24]
          ^ crc_table[3][b & 0xFF] ^ crc_table[2][(b >> 8) & 0xFF] ^ crc_table[1][(b >> 16) & 0xFF] ^ crc_table[0][b >> 24];
        p += 8; n -= 8;
    }
    while (n--) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static inline uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// The clock. Reading CLOCK_MONOTONIC costs 25-80 ns here (vDSO); the CPU's invariant time-stamp
// counter costs ~10 ns. When the kernel itself trusts the TSC (clocksource `tsc`, constant and
// non-stop), the hot path reads raw ticks and converts them to CLOCK_MONOTONIC nanoseconds with
// parameters the watchdog recalibrates against clock_gettime, continuously (no jumps), so every
// time in the trace is on CLOCK_MONOTONIC within microseconds. Otherwise ticks are nanoseconds.
typedef struct { uint64_t base_tick, base_ns, mult; } clock_params;  // ns = base_ns + (Δtick × mult) >> 32
static int use_tsc;
static _Atomic uint64_t coarse_tick;  // the watchdog's latest clock reading (ticks), every 1-10 ms
static clock_params clock_slots[16];
static _Atomic(clock_params *) clock_cur;
static unsigned clock_next;
static uint64_t cal_tick0, cal_ns0;  // the first calibration pair

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

// A (tick, ns) pair read as close together as possible.
static void clock_pair(uint64_t *tick, uint64_t *ns) {
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = rdtsc(), m = mono_ns(), b = rdtsc();
        if (b - a < best) { best = b - a; *tick = a + (b - a) / 2; *ns = m; }
    }
}

static int tsc_trusted(void) {
    char cs[64] = "";
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, cs, sizeof cs - 1);
    close(fd);
    if (n <= 0 || strncmp(cs, "tsc", 3) != 0) return 0;
    // The kernel uses the TSC as its clock only when it is invariant and synchronized.
    return getenv("UNCLOG_NO_TSC") == NULL;
}

static void clock_publish(uint64_t base_tick, uint64_t base_ns, uint64_t mult) {
    clock_params *p = &clock_slots[clock_next++ % 16];  // reused after 16 updates (seconds)
    p->base_tick = base_tick; p->base_ns = base_ns; p->mult = mult;
    atomic_store_explicit(&clock_cur, p, memory_order_release);
}

static void clock_start(void) {
    use_tsc = tsc_trusted();
    if (!use_tsc) return;
    clock_pair(&cal_tick0, &cal_ns0);
    uint64_t t1, n1;
    do { clock_pair(&t1, &n1); } while (n1 - cal_ns0 < 200000);  // 0.2 ms: a first estimate
    uint64_t mult = (uint64_t)(((__int128)(n1 - cal_ns0) << 32) / (t1 - cal_tick0));
    clock_publish(t1, n1, mult);
}

// Watchdog: re-measures the rate over the whole recording and steers the conversion so that it
// meets CLOCK_MONOTONIC again within `horizon` ns, without ever stepping back.
static void clock_recalibrate(uint64_t horizon) {
    if (!use_tsc) return;
    uint64_t t, n;
    clock_pair(&t, &n);
    if (t <= cal_tick0 || n <= cal_ns0) return;
    const clock_params *p = atomic_load(&clock_cur);
    uint64_t cur = to_ns_p(p, t);
    double rate = (double)(n - cal_ns0) / (double)(t - cal_tick0);  // ns per tick
    double err = (double)cur - (double)n;                            // > 0: the trace runs ahead
    double f = 1.0 - err / (double)horizon;
    if (f < 0.9) f = 0.9;
    if (f > 1.1) f = 1.1;
    clock_publish(t, cur, (uint64_t)(rate * f * 4294967296.0));
}

// ---------------------------------------------------------------------------------------------
// Per-thread chunk buffers

typedef struct tbuf {
    struct tbuf *next;            // registry (append-only under reg_lock; removed by the watchdog)
    atomic_int busy;              // the owner is writing (buf_enter)
    atomic_int steal;             // another thread wants the buffer (buf_take)
    uint32_t tid;
    uint32_t seq;
    uint8_t *data;                // CHUNK_CAP bytes; the first 32 hold the chunk header
    uint32_t used;
    uint64_t base_ns, last_ns;
    _Atomic uint64_t opened_ns;   // when the open chunk got its first event; 0: none open
    uint64_t events;              // events written by this buffer (all chunks)
    uint64_t jobs;                // jobs recorded on this thread
    uint64_t handoffs;            // hand-off jobs run untimed (run_timed)
    uint64_t dropped;             // events lost (no memory, queue full)
    _Atomic uint64_t job_start;   // start of the running job, 0 when idle
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

static struct {
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
} R = { .fd = -1, .reg_lock = PTHREAD_MUTEX_INITIALIZER, .pend_lock = PTHREAD_MUTEX_INITIALIZER };

static __thread tbuf *tls_buf __attribute__((tls_model("initial-exec")));
static pthread_key_t tls_key;

// Buffer ownership. A thread's buffer is written by that thread (its owner) on the hot path, and
// taken over now and then by another thread: the watchdog seals partly filled chunks every 0.1 s,
// the stopping thread reads the counters. The owner's side takes no locked instruction (an
// uncontended spin lock was ~4 ns of a job's ~45 ns, measured with perf): it raises `busy`, then
// checks `steal` (Dekker's protocol). The store-load fence between the two is supplied by the
// taker's membarrier(2), which runs a full barrier on every thread of the process: either the owner
// sees `steal` and backs off, or the taker sees `busy` and waits (the asymmetric fence of liburcu
// and folly). Without membarrier the owner fences itself. An owner never takes its own buffer
// while inside buf_enter/buf_exit; a taker never writes events between buf_take and buf_give.
static int asym_fence;  // membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) registered (set once, at start)

static inline void buf_enter(tbuf *b) {
    for (;;) {
        atomic_store_explicit(&b->busy, 1, memory_order_relaxed);
        if (asym_fence) atomic_signal_fence(memory_order_seq_cst); else atomic_thread_fence(memory_order_seq_cst);
        if (__builtin_expect(!atomic_load_explicit(&b->steal, memory_order_acquire), 1)) return;
        atomic_store_explicit(&b->busy, 0, memory_order_release);
        // The taker holds it for microseconds; yield if it was preempted, not to keep it off the CPU.
        for (int spins = 0; atomic_load_explicit(&b->steal, memory_order_acquire); spins++) {
            if (spins < 200) __builtin_ia32_pause(); else sched_yield();
        }
    }
}
static inline void buf_exit(tbuf *b) { atomic_store_explicit(&b->busy, 0, memory_order_release); }

// The taker's side, for many buffers at once: raise `steal` on each, one heavy fence, then wait for
// each owner to leave (buf_wait) before touching the buffer, and hand it back with buf_give.
static void buf_take(tbuf *b) { atomic_store_explicit(&b->steal, 1, memory_order_relaxed); }
static void heavy_fence(void) {
    atomic_thread_fence(memory_order_seq_cst);
    if (!asym_fence) return;  // owners fence themselves
    // Registered owners do not fence: only a successful membarrier makes taking safe. It can
    // fail transiently (ENOMEM for its CPU mask): retry.
    while (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
}
static void buf_wait(tbuf *b) {
    for (int spins = 0; atomic_load_explicit(&b->busy, memory_order_acquire); spins++) {
        if (spins < 1000) __builtin_ia32_pause(); else sched_yield();  // the owner may be preempted
    }
}
static void buf_give(tbuf *b) { atomic_store_explicit(&b->steal, 0, memory_order_release); }

static void asym_fence_init(void) {
    if (asym_fence) return;
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED)
        && syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) asym_fence = 1;
}

// Finishes the buffer's chunk and queues it for writing; the buffer gets fresh memory.
// Called by the buffer's owner between buf_enter and buf_exit, or by a taker holding it.
static void seal_chunk(tbuf *b) {
    if (b->used <= CHUNK_HEADER) return;
    uint8_t *h = b->data;
    uint32_t len = b->used - CHUNK_HEADER;
    memcpy(h, "\xFF\x55\x43\x4B", 4);
    memcpy(h + 4, &len, 4);
    h[12] = 2; h[13] = 0; h[14] = 0; h[15] = 0;
    memcpy(h + 16, &b->base_ns, 8);
    memcpy(h + 24, &b->tid, 4);
    memcpy(h + 28, &b->seq, 4);
    uint8_t *fresh = malloc(CHUNK_CAP);
    pending *p = malloc(sizeof *p);
    if (!fresh || !p) {  // keep the buffer, lose its events
        free(fresh); free(p);
        b->dropped += 1;
        b->used = CHUNK_HEADER;
        return;
    }
    atomic_store_explicit(&b->opened_ns, 0, memory_order_relaxed);
    p->next = NULL; p->data = b->data; p->size = b->used;
    pthread_mutex_lock(&R.pend_lock);
    if (R.pend_count >= MAX_PENDING) {
        R.pend_dropped += 1;
        pthread_mutex_unlock(&R.pend_lock);
        free(p); free(fresh);
        b->dropped += 1;
        b->used = CHUNK_HEADER;
        return;
    }
    if (R.pend_tail) R.pend_tail->next = p; else R.pend_head = p;
    R.pend_tail = p;
    R.pend_count++;
    pthread_mutex_unlock(&R.pend_lock);
    b->seq++;
    b->data = fresh;
    b->used = CHUNK_HEADER;
}

// Opens a chunk if needed (first event at time t), making room for one more event.
static inline uint8_t *begin_event(tbuf *b, uint64_t t) {
    if (b->used > CHUNK_CAP - CHUNK_SLACK) seal_chunk(b);
    if (b->used == CHUNK_HEADER) {
        b->base_ns = t;
        b->last_ns = t;
        atomic_store_explicit(&b->opened_ns, t, memory_order_relaxed);
        if (b->dropped) {  // report losses at the start of the next chunk
            uint8_t *p = b->data + b->used;
            *p++ = EV_DROPPED; *p++ = 0; *p++ = 1;
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
        *p++ = EV_RUNNING; *p++ = 0; *p++ = 0; *p++ = 0;
        b->events++;
    }
    *p++ = EV_SWITCH_OTHER;
    p = put_dt(b, p, start);
    p = put_uvarint(p, gt);
    p = put_uvarint(p, enq && enq <= start ? start - enq : 0);
    p = put_stall_end_if_long(b, p, gt, end, end - start);
    *p++ = EV_SWITCH_HUB;
    p = put_dt(b, p, end);
    b->events += 2;
    b->jobs++;
    b->used = (uint32_t)(p - b->data);
    buf_exit(b);
}

static void emit_string(tbuf *b, uint32_t id, const char *s, size_t n);
static void emit_simple(tbuf *b, uint8_t type, uint64_t t, int n, const uint64_t *f);

static void thread_gone(void *arg) {
    tbuf *b = arg;
    atomic_store(&b->dead, 1);
    tls_buf = NULL;
}

static tbuf *watchdog_buf;

static tbuf *register_thread(int worker) {
    tbuf *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->data = malloc(CHUNK_CAP);
    if (!b->data) { free(b); return NULL; }
    b->used = CHUNK_HEADER;
    b->tid = (uint32_t)syscall(SYS_gettid);
    b->thread = pthread_self();
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr; size_t size;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            b->stack_lo = (uintptr_t)addr;
            b->stack_hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&attr);
    }
    if (worker && R.sample_signal) {  // Dispatch workers block signals: open ours only
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, R.sample_signal);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    }
    tls_buf = b;
    pthread_setspecific(tls_key, b);
    pthread_mutex_lock(&R.reg_lock);
    b->next = atomic_load(&R.threads);
    atomic_store(&R.threads, b);
    pthread_mutex_unlock(&R.reg_lock);
    return b;
}

// ---------------------------------------------------------------------------------------------
// The hook and the trampoline

// Default-actor drain jobs: one greenthread id per actor (0xE0000000 and up).
#define ACTOR_SLOTS 8192
static _Atomic(uintptr_t) actor_keys[ACTOR_SLOTS];
static _Atomic uint32_t next_actor_gt = 0xE0000000u;
static uint32_t actor_ids[ACTOR_SLOTS];

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
            if (expected == k) { h = (h - 1) & (ACTOR_SLOTS - 1); continue; }
        }
    }
    return 0xFFFFFFFEu;  // table full: all remaining non-task jobs share one id
}

// The greenthread of a job: a task's id; a default actor's inline drain job (kind 192, embedded in
// the actor): one id per actor; other runtime jobs (separate actor jobs, continuation resumptions
// such as Task.sleep wake-ups, isolated deinits): one id per kind, 0xFFFFFF00 | kind.
static inline uint32_t job_gt(swift_job *job, uint32_t flags) {
    uint32_t kind = flags & 0xFF;
    if (kind == 0) return job->id;
    if (kind == 192) return actor_gt(job);
    return 0xFFFFFF00u | kind;
}

// A hand-off job (NullaryContinuation, kind 195: Task.yield() and the deprecated Task.sleep(UInt64))
// runs runtime code: it frees itself and resumes a continuation, which enqueues the suspended task.
// It is not timed (two clock reads saved of the four a Task.yield() would cost); the work it
// enqueues inherits its ready stamp instead, so the yielding task is seen waiting from its yield
// to its next slice, with nothing in between. The enqueue can still run program code (a custom
// executor's `enqueue`, e.g. an actor's), so the watchdog watches hand-offs too, from a start
// read from the watchdog's own last clock reading (no clock read here): bit 0 of such a start is
// set (timed jobs' starts have it clear), and the watchdog allows it one tick of earliness. A
// hand-off the watchdog may have seen past the threshold is recorded as a slice of HANDOFF_GT.
#define KIND_HANDOFF 195
// A timer's stamp (deadline | 3 << 62) as a plain CLOCK_MONOTONIC ns stamp (| 1 << 63).
static inline uint64_t timer_stamp_as_ns(uint64_t stamp) { return stamp & ~(1ull << 62); }
#define HANDOFF_GT 0xFFFFFFC3u
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
        if (fn) fn(job); else R.job_run(job, executor);
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
        gt = 0xFFFFFFF0u;
        enq = timer_stamp_as_ns(enq);
    }
    if (__builtin_expect(b == NULL, 0)) {
        if (atomic_load_explicit(&R.active, memory_order_relaxed)) b = register_thread(1);
    }
    if (__builtin_expect(!b || b->in_job || atomic_load_explicit(&R.stopping, memory_order_relaxed), 0)) {
        if (fn) fn(job); else R.job_run(job, executor);
        return;
    }
    if (gt == 0) gt = 0xFFFFFFFDu;
    uint64_t start = ticks() & ~1ull;  // bit 0 clear: an exact start (see KIND_HANDOFF)
    b->in_job = 1;
    atomic_store_explicit(&b->job_gt, gt, memory_order_relaxed);
    atomic_store_explicit(&b->job_start, start, memory_order_release);
    if (fn) fn(job); else R.job_run(job, executor);
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

static void trampoline(void *ctx) { run_timed(ctx, (swift_executor_ref){ NULL, 0 }, NULL, 0); }

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
static uintptr_t conc_lo, conc_hi, conc_text_lo, conc_text_hi;  // libswift_Concurrency's mapping, text
static int interpose_on;
static int loops_on;

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
// clock is read. A clock read is ~10 ns, a fifth of a job's recording cost. Elsewhere (main
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
    uint64_t v = timer ? ((ready_mono_ns & ((1ull << 62) - 1)) | (3ull << 62))
                       : ready_mono_ns ? (ready_mono_ns | (1ull << 63)) : ready_stamp();
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
    if (!known) { __atomic_store_n(&swift_job_callback, fn, __ATOMIC_RELAXED); known = fn; }
    if (fn != known) return 0;
    job_enqueued(ctx, ready_mono_ns, timer);
    return 1;
}

void unclog_run_job_interposed(void *job, void (*fn)(void *)) {
    if (!fn) fn = __atomic_load_n(&swift_job_callback, __ATOMIC_RELAXED);  // the runtime's, learnt by the note
    swift_job *j = job;
    uint64_t enq = (uint64_t)(uintptr_t)j->schedulerPrivate[0];
    j->schedulerPrivate[0] = NULL;  // the executor's use of the word ends here
    run_timed(j, (swift_executor_ref){ NULL, 0 }, fn, enq);
}

static int conc_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size; (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libswift_Concurrency.so")) return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr, e = a + ph->p_memsz;
        if (a < lo) lo = a;
        if (e > hi) hi = e;
        if (ph->p_flags & PF_X) { conc_text_lo = a; conc_text_hi = e; }
    }
    conc_lo = lo; conc_hi = hi;
    return 1;
}

// The hook and executor modes: stamp the job's ready time in schedulerPrivate[1] (ours: the
// runtime's own Dispatch path is bypassed) and hand it to `queue` with a timing trampoline.
static inline void dispatch_timed(swift_job *job, void *queue, void (*trampoline_fn)(void *)) {
    job->schedulerPrivate[1] = (void *)(uintptr_t)ready_stamp();
    R.async_f(queue, job, trampoline_fn);
}

static SWIFTCALL void enqueue_main_hook(swift_job *job, enqueue_original_fn original) {
    if (atomic_load_explicit(&R.stopping, memory_order_relaxed) || R.previous_main_hook) {
        if (R.previous_main_hook) R.previous_main_hook(job, original); else original(job);
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

static SWIFTCALL void enqueue_hook(swift_job *job, enqueue_original_fn original) {
    if (__builtin_expect(atomic_load_explicit(&R.stopping, memory_order_relaxed), 0)) {
        if (R.previous_hook) R.previous_hook(job, original); else original(job);
        return;
    }
    // Another hook (installed before us) decides where jobs run: we cannot time them.
    if (R.previous_hook) { R.previous_hook(job, original); return; }
    dispatch_timed(job, queue_for((job->flags >> 8) & 0xFF), trampoline);
}

// Executor-factory mode: the executors UnclogRecorder installs with _createExecutors(factory:)
// enqueue here. Same queues and trampolines as the hook; the main executor's reference is the
// program's (UnclogRecorder's) main executor, so main-actor isolation checks hold in the job.
int unclog_executors_prepare(void *identity, uintptr_t implementation) {
    if (!R.async_f || !R.queue_create || !R.attr_qos || !R.set_width || !R.job_run || !R.main_queue
        || !R.after_f || !R.dispatch_time) return -1;
    R.main_executor = (swift_executor_ref){ identity, implementation };
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
    R.after_f(R.dispatch_time(0 /* DISPATCH_TIME_NOW */, (int64_t)delay_ns), queue_for((job->flags >> 8) & 0xFF), job, trampoline);
}

// ---------------------------------------------------------------------------------------------
// Event-loop threads (epoll_wait interposed by the LD_PRELOAD library)

static __thread int loop_state __attribute__((tls_model("initial-exec")));  // 0 unknown, 1 loop, 2 not
static __thread uint32_t loop_gt __attribute__((tls_model("initial-exec")));    // the loop's work; hub = loop_gt - 1
static __thread uint64_t tick_start __attribute__((tls_model("initial-exec"))); // ticks; 0 = waiting
static _Atomic uint32_t next_loop_gt = 0xC0000000u;
static __thread uint32_t span_gt __attribute__((tls_model("initial-exec")));
static __thread uint64_t span_start __attribute__((tls_model("initial-exec")));  // ticks

// NIO-ELT: MultiThreadedEventLoopGroup threads; NIO-SGLTN: NIOSingletons' group (also the loops that run
// Swift Concurrency jobs when NIO is installed as the global executor).
static char loop_prefixes[256] = "NIO-ELT,NIO-SGLTN";
static _Atomic uint32_t string_ids = 0xF0000000u;  // strings written by loop threads themselves

static int is_loop_thread(void) {
    char name[32] = "";
    if (pthread_getname_np(pthread_self(), name, sizeof name) != 0) return 0;
    char list[256];
    snprintf(list, sizeof list, "%s", loop_prefixes);
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (*p && strncmp(name, p, strlen(p)) == 0) return 1;
    }
    return 0;
}

static void loop_emit_name(tbuf *b, uint32_t gt, const char *name) {
    uint32_t sid = atomic_fetch_add(&string_ids, 1);
    emit_string(b, sid, name, strlen(name));
    uint64_t f[4] = { gt, sid, 0, 0 };
    emit_simple(b, EV_GT_CREATE, now_ns(), 4, f);
}

static tbuf *loop_thread(void) {
    if (__builtin_expect(loop_state == 1, 1)) return tls_buf;
    if (loop_state == 2 || !atomic_load_explicit(&R.active, memory_order_relaxed)) return NULL;
    if (!is_loop_thread()) { loop_state = 2; return NULL; }
    tbuf *b = tls_buf ? tls_buf : register_thread(1);
    if (!b) { loop_state = 2; return NULL; }
    loop_gt = atomic_fetch_add(&next_loop_gt, 2) + 1;
    char name[32] = "", label[64];
    pthread_getname_np(pthread_self(), name, sizeof name);
    snprintf(label, sizeof label, "%s (event loop)", name);
    loop_emit_name(b, loop_gt - 1, label);
    snprintf(label, sizeof label, "%s (loop iteration)", name);
    loop_emit_name(b, loop_gt, label);
    loop_state = 1;
    return b;
}

int unclog_loop_wait_begin(int timeout_ms) {
    tbuf *b = loop_thread();
    if (!b || b->in_job || atomic_load_explicit(&R.stopping, memory_order_relaxed)) return 0;
    uint64_t t = ticks();
    const clock_params *cp = clock_now_params();
    uint64_t now = to_ns_p(cp, t);
    uint32_t hub = loop_gt - 1;
    buf_enter(b);
    uint8_t *p = begin_event(b, now);
    if (b->used == CHUNK_HEADER) {
        *p++ = EV_RUNNING; *p++ = 0;
        p = put_uvarint(p, tick_start ? loop_gt : hub);
        p = put_uvarint(p, hub);
        b->events++;
    }
    span_gt = 0;  // a span left open (no end call) ends with the iteration
    if (tick_start) {  // the iteration since the last wait ends here
        atomic_store_explicit(&b->job_start, 0, memory_order_relaxed);
        uint64_t start = to_ns_p(cp, tick_start);
        p = put_stall_end_if_long(b, p, loop_gt, now, now > start ? now - start : 0);
        *p++ = EV_SWITCH_HUB;
        p = put_dt(b, p, now);
        b->events++;
        b->jobs++;
        tick_start = 0;
    }
    *p++ = EV_IO_WAIT_BEGIN;
    p = put_dt(b, p, now);
    p = put_uvarint(p, timeout_ms < 0 ? 0 : (uint64_t)timeout_ms * 1000000ull + 1);
    b->events++;
    b->used = (uint32_t)(p - b->data);
    buf_exit(b);
    return 1;
}

void unclog_loop_wait_end(int nready) {
    tbuf *b = tls_buf;
    if (!b || loop_state != 1) return;
    uint64_t t = ticks();
    uint64_t now = to_ns(t);
    uint32_t hub = loop_gt - 1;
    buf_enter(b);
    uint8_t *p = begin_event(b, now);
    if (b->used == CHUNK_HEADER) {
        *p++ = EV_RUNNING; *p++ = 0;
        p = put_uvarint(p, hub);
        p = put_uvarint(p, hub);
        b->events++;
    }
    *p++ = EV_IO_WAIT_END;
    p = put_dt(b, p, now);
    p = put_uvarint(p, nready < 0 ? 0 : (uint64_t)nready);
    *p++ = EV_SWITCH_IO;  // the iteration: handlers and tasks until the next wait
    p = put_dt(b, p, now);
    p = put_uvarint(p, loop_gt);
    *p++ = 0;
    b->events += 2;
    b->used = (uint32_t)(p - b->data);
    buf_exit(b);
    tick_start = t;
    atomic_store_explicit(&b->job_gt, loop_gt, memory_order_relaxed);
    atomic_store_explicit(&b->job_start, t & ~1ull, memory_order_release);  // bit 0: see KIND_HANDOFF
}

// Spans: a name → greenthread table (names are few: handler types), and per thread the open span.
#define SPAN_NAMES 1024
static struct { const char *name; uint32_t gt; } span_names[SPAN_NAMES];
static pthread_mutex_t span_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint32_t next_span_gt = 0xD0000000u;

static uint32_t span_id(tbuf *b, const char *name) {
    uint32_t h = 0;
    for (const char *c = name; *c; c++) h = h * 31 + (uint8_t)*c;
    for (int i = 0; i < SPAN_NAMES; i++) {
        uint32_t k = (h + (uint32_t)i) & (SPAN_NAMES - 1);
        const char *n = __atomic_load_n(&span_names[k].name, __ATOMIC_ACQUIRE);
        if (n && strcmp(n, name) == 0) return span_names[k].gt;
        if (!n) {
            pthread_mutex_lock(&span_lock);
            if (!span_names[k].name) {
                uint32_t gt = atomic_fetch_add(&next_span_gt, 1);
                span_names[k].gt = gt;
                __atomic_store_n(&span_names[k].name, strdup(name), __ATOMIC_RELEASE);
                pthread_mutex_unlock(&span_lock);
                loop_emit_name(b, gt, name);
                return gt;
            }
            pthread_mutex_unlock(&span_lock);
            i--;  // re-check this slot
        }
    }
    return 0;
}

uint32_t unclog_span_begin(const char *name) {
    tbuf *b = loop_thread();
    if (!b || !tick_start || span_gt || atomic_load_explicit(&R.stopping, memory_order_relaxed)) return 0;
    uint32_t gt = span_id(b, name);
    if (!gt) return 0;
    uint64_t t = ticks(), now = to_ns(t);
    buf_enter(b);
    uint8_t *p = begin_event(b, now);
    if (b->used == CHUNK_HEADER) {
        *p++ = EV_RUNNING; *p++ = 0;
        p = put_uvarint(p, loop_gt);
        p = put_uvarint(p, loop_gt - 1);
        b->events++;
    }
    *p++ = EV_SWITCH_OTHER;
    p = put_dt(b, p, now);
    p = put_uvarint(p, gt);
    *p++ = 0;
    b->events++;
    b->used = (uint32_t)(p - b->data);
    buf_exit(b);
    span_gt = gt;
    span_start = t;
    atomic_store_explicit(&b->job_gt, gt, memory_order_relaxed);
    atomic_store_explicit(&b->job_start, t & ~1ull, memory_order_release);  // the watchdog times the span
    return gt;
}

void unclog_span_end(uint32_t token) {
    tbuf *b = tls_buf;
    if (!token || !b || token != span_gt) return;
    uint64_t t = ticks();
    const clock_params *cp = clock_now_params();
    uint64_t now = to_ns_p(cp, t), start = to_ns_p(cp, span_start);
    uint64_t dur = now > start ? now - start : 0;
    buf_enter(b);
    uint8_t *p = begin_event(b, now);
    if (b->used == CHUNK_HEADER) {
        *p++ = EV_RUNNING; *p++ = 0;
        p = put_uvarint(p, token);
        p = put_uvarint(p, loop_gt - 1);
        b->events++;
    }
    p = put_stall_end_if_long(b, p, token, now, dur);
    *p++ = EV_SWITCH_OTHER;  // back to the loop iteration
    p = put_dt(b, p, now);
    p = put_uvarint(p, loop_gt);
    *p++ = 0;
    b->events++;
    b->used = (uint32_t)(p - b->data);
    buf_exit(b);
    span_gt = 0;
    // A long span was the stall: the iteration's clock restarts so it is not counted twice. The
    // iteration otherwise keeps its start (its time includes the span).
    uint64_t resume = dur > R.cfg.threshold_ns ? t : tick_start;
    if (dur > R.cfg.threshold_ns) tick_start = t;
    atomic_store_explicit(&b->job_gt, loop_gt, memory_order_relaxed);
    atomic_store_explicit(&b->job_start, resume & ~1ull, memory_order_release);
}

// ---------------------------------------------------------------------------------------------
// Images (for offline symbolization)

#define MAX_IMAGES 1024
typedef struct {
    uint32_t id;
    uintptr_t bias, start, end;
    char path[256];
    int libc_like;  // frames here are usually frameless (scan for return addresses)
    int concurrency;  // libswift_Concurrency: a return into it ends the running funclets
} image;
static image images[MAX_IMAGES];
static int n_images;
static unsigned long long images_adds = 0;
static uint32_t next_id = 1;  // string/frame/stack/image ids (one counter)

static const image *find_image(uintptr_t a) {
    for (int i = 0; i < n_images; i++) if (a >= images[i].start && a < images[i].end) return &images[i];
    return NULL;
}

typedef struct { tbuf *out; int changed; } phdr_ctx;
static void emit_string(tbuf *b, uint32_t id, const char *s, size_t n);
static void emit_image(tbuf *b, image *im, const uint8_t *build_id, size_t build_id_len);

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data) {
    phdr_ctx *ctx = data;
    (void)size;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    const uint8_t *bid = NULL; size_t bid_len = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
            if (s < lo) lo = s;
            if (e > hi) hi = e;
        } else if (ph->p_type == PT_NOTE) {
            const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
            while (p + sizeof(ElfW(Nhdr)) <= end) {
                const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
                const uint8_t *name = p + sizeof *nh;
                const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
                if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                    bid = desc; bid_len = nh->n_descsz > 64 ? 64 : nh->n_descsz;
                    break;
                }
                p = desc + ((nh->n_descsz + 3) & ~3u);
            }
        }
    }
    if (hi == 0) return 0;
    for (int i = 0; i < n_images; i++) if (images[i].start == lo && images[i].end == hi) return 0;  // known
    if (n_images >= MAX_IMAGES) return 0;
    image *im = &images[n_images++];
    im->id = next_id++;
    im->bias = info->dlpi_addr; im->start = lo; im->end = hi;
    const char *name = info->dlpi_name;
    char exe[256];
    if (!name || !*name) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        name = exe;
    }
    snprintf(im->path, sizeof im->path, "%s", name);
    im->concurrency = strstr(im->path, "libswift_Concurrency.so") != NULL;
    im->libc_like = strstr(im->path, "/libc.so") || strstr(im->path, "/libm.so") || strstr(im->path, "ld-linux")
                    || strstr(im->path, "/libpthread") || strstr(im->path, "linux-vdso");
    emit_image(ctx->out, im, bid, bid_len);
    ctx->changed = 1;
    return 0;
}

static int adds_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    *(unsigned long long *)data = info->dlpi_adds;
    return 1;
}

static void refresh_images(tbuf *out, int force) {
    unsigned long long adds = 0;
    dl_iterate_phdr(adds_cb, &adds);
    if (!force && adds == images_adds) return;
    images_adds = adds;
    phdr_ctx ctx = { out, 0 };
    dl_iterate_phdr(phdr_cb, &ctx);
}

// ---------------------------------------------------------------------------------------------
// Watchdog-side event writers (the watchdog's own buffer)

static void emit_string(tbuf *b, uint32_t id, const char *s, size_t n) {
    if (n > 4096) n = 4096;
    uint64_t t = now_ns();
    buf_enter(b);
    if (b->used + n + 32 > CHUNK_CAP - CHUNK_SLACK) seal_chunk(b);
    uint8_t *p = begin_event(b, t);
    *p++ = EV_STRING;
    p = put_dt(b, p, t);
    p = put_uvarint(p, id);
    p = put_uvarint(p, n);
    memcpy(p, s, n); p += n;
    b->used = (uint32_t)(p - b->data);
    b->events++;
    buf_exit(b);
}

static void emit_image(tbuf *b, image *im, const uint8_t *bid, size_t bid_len) {
    uint32_t path_id = next_id++;
    emit_string(b, path_id, im->path, strlen(im->path));
    uint64_t t = now_ns();
    buf_enter(b);
    uint8_t *p = begin_event(b, t);
    *p++ = EV_IMAGE;
    p = put_dt(b, p, t);
    p = put_uvarint(p, im->id);
    p = put_uvarint(p, path_id);
    p = put_uvarint(p, im->bias);
    p = put_uvarint(p, im->start);
    p = put_uvarint(p, im->end);
    p = put_uvarint(p, bid_len);
    if (bid_len) { memcpy(p, bid, bid_len); p += bid_len; }
    b->used = (uint32_t)(p - b->data);
    b->events++;
    buf_exit(b);
}

// Small fixed-size event: up to 6 varint fields.
static void emit_simple(tbuf *b, uint8_t type, uint64_t t, int n, const uint64_t *f) {
    buf_enter(b);
    uint8_t *p = begin_event(b, t);
    *p++ = type;
    p = put_dt(b, p, t);
    for (int i = 0; i < n; i++) p = put_uvarint(p, f[i]);
    b->used = (uint32_t)(p - b->data);
    b->events++;
    buf_exit(b);
}

// ---------------------------------------------------------------------------------------------
// Frames and stacks (watchdog only): addresses and stacks interned to ids.

#define FRAME_SLOTS 65536
static uintptr_t frame_addr[FRAME_SLOTS];
static uint32_t frame_id[FRAME_SLOTS];
#define STACK_SLOTS 16384
static uint64_t stack_hash[STACK_SLOTS];
static uint32_t stack_id[STACK_SLOTS];

static uint32_t intern_frame(tbuf *out, uintptr_t addr, uint32_t flags) {
    uintptr_t key = addr ^ ((uintptr_t)flags << 62);
    uint32_t h = (uint32_t)((key >> 2) * 2654435761u) & (FRAME_SLOTS - 1);
    for (int i = 0; i < 64; i++, h = (h + 1) & (FRAME_SLOTS - 1)) {
        if (frame_id[h] && frame_addr[h] == key) return frame_id[h];
        if (!frame_id[h]) {
            const image *im = find_image(addr);
            uint32_t id = next_id++;
            frame_addr[h] = key; frame_id[h] = id;
            uint64_t f[4] = { id, flags, im ? im->id : 0, addr };
            emit_simple(out, EV_NATIVE_FRAME, now_ns(), 4, f);
            return id;
        }
    }
    return 0;
}

#define MAX_FRAMES 256
static uint32_t intern_stack(tbuf *out, const uint32_t *frames, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) { h ^= frames[i]; h *= 1099511628211ull; }
    h ^= (uint64_t)n;
    if (h == 0) h = 1;
    uint32_t s = (uint32_t)h & (STACK_SLOTS - 1);
    for (int i = 0; i < 64; i++, s = (s + 1) & (STACK_SLOTS - 1)) {
        if (stack_id[s] && stack_hash[s] == h) return stack_id[s];
        if (!stack_id[s]) break;
    }
    uint32_t id = next_id++;
    if (!stack_id[s]) { stack_hash[s] = h; stack_id[s] = id; }
    uint64_t t = now_ns();
    buf_enter(out);
    if (out->used + 16 + 6 * (uint32_t)n > CHUNK_CAP - CHUNK_SLACK) seal_chunk(out);
    uint8_t *p = begin_event(out, t);
    *p++ = EV_STACK;
    p = put_dt(out, p, t);
    p = put_uvarint(p, id);
    p = put_uvarint(p, (uint64_t)n);
    for (int i = 0; i < n; i++) p = put_uvarint(p, frames[i]);
    out->used = (uint32_t)(p - out->data);
    out->events++;
    buf_exit(out);
    return id;
}

// ---------------------------------------------------------------------------------------------
// Stack capture

#define COPY_BYTES (64 * 1024)
static struct {
    _Atomic uint32_t target;  // tid the handler should capture
    atomic_int done;
    uintptr_t pc, sp, fp;
    size_t len;
    uint8_t stack[COPY_BYTES];
} sample;

static void sample_handler(int sig, siginfo_t *info, void *ucv) {
    (void)sig; (void)info;
    int saved = errno;
    tbuf *b = tls_buf;
    ucontext_t *uc = ucv;
    if (b && atomic_load(&sample.target) == b->tid && !atomic_load(&sample.done)) {
        uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
        sample.pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
        sample.fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
        sample.sp = sp;
        size_t len = 0;
        if (sp >= b->stack_lo && sp < b->stack_hi) {
            len = b->stack_hi - sp;
            if (len > COPY_BYTES) len = COPY_BYTES;
            memcpy(sample.stack, (void *)sp, len);
        }
        sample.len = len;
        atomic_store(&sample.done, 1);
    }
    errno = saved;
}

// Is `r` a plausible return address: inside a known executable range and right after a call?
static int is_return_address(uintptr_t r) {
    const image *im = find_image(r);
    if (!im || r < im->start + 7) return 0;
    const uint8_t *c = (const uint8_t *)r;
    if (c[-5] == 0xE8) return 1;                                     // call rel32
    if (c[-2] == 0xFF && (c[-1] & 0x38) == 0x10 && (c[-1] & 0xC0) == 0xC0) return 1;  // call reg
    if (c[-3] == 0xFF && (c[-2] & 0x38) == 0x10 && (c[-2] & 0xC0) == 0x40) return 1;  // call [reg+d8]
    if (c[-6] == 0xFF && (c[-5] & 0x38) == 0x10 && ((c[-5] & 0xC0) == 0x80 || (c[-5] & 0xC7) == 0x05)) return 1;  // [reg+d32], [rip+d32]
    if (c[-4] == 0xFF && (c[-3] & 0x38) == 0x10 && (c[-3] & 0xC7) == 0x44) return 1;  // [sib+d8]
    if (c[-7] == 0xFF && (c[-6] & 0x38) == 0x10 && (c[-6] & 0xC7) == 0x84) return 1;  // [sib+d32]
    if (c[-3] == 0xFF && (c[-2] & 0x38) == 0x10 && (c[-2] & 0xC7) == 0x04) return 1;  // [sib]
    if (c[-2] == 0xFF && (c[-1] & 0x38) == 0x10 && (c[-1] & 0xC0) == 0x00) return 1;  // [reg]
    return 0;
}

// How many frame records can be followed from `r` inside the copy [sp, end) (0: not a record).
static int chain_depth(uintptr_t r, uintptr_t sp, uintptr_t end, const uint8_t *mem) {
    int d = 0;
    while (r >= sp && r + 16 <= end && (r & 7) == 0 && d < 64) {
        uintptr_t next = *(const uintptr_t *)(mem + (r - sp)), ret = *(const uintptr_t *)(mem + (r + 8 - sp));
        if (!is_return_address(ret)) break;
        d++;
        if (next == 0 || next >= end) return d >= 3 ? d + 8 : 0;  // the outermost frame, or out of the copy
        if (next <= r) break;
        r = next;
    }
    return d;
}

// Walks a copied stack: `words` is the memory at [sp, sp + len). `fp` is the frame pointer when
// known (signal path), else 0 (a thread asleep in a system call: only sp and pc are known).
static int walk(uintptr_t pc, uintptr_t sp, uintptr_t fp, const uint8_t *mem, size_t len,
                uintptr_t *out, uint32_t *flags, int max) {
    int n = 0;
    out[n] = pc; flags[n] = 0; n++;
    uintptr_t end = sp + (len & ~(size_t)7);
#define WORD(a) (*(const uintptr_t *)(mem + ((a) - sp)))
    const image *pim = find_image(pc);
    int scan_leaf = !pim || pim->libc_like || fp < sp || fp >= end;
    uintptr_t chain = 0;
    if (fp >= sp && fp + 16 <= end && (fp & 7) == 0) chain = fp;
    if (scan_leaf) {
        // Frameless leaf frames (libc): return addresses between sp and the first frame record.
        uintptr_t limit = chain ? chain : end;
        if (limit > sp + 16384) limit = sp + 16384;
        for (uintptr_t a = sp; a + 8 <= limit && n < max; a += 8) {
            uintptr_t w = WORD(a);
            if (!is_return_address(w)) continue;
            if (!chain && a >= sp + 8 && chain_depth(a - 8, sp, end, mem) >= 3) {
                chain = a - 8;  // a frame record (saved fp, return address) that starts a real chain
                break;
            }
            out[n] = w; flags[n] = 2; n++;
        }
    }
    // The frame-pointer chain. Functions without a frame record of their own (async funclets,
    // frameless library code) leave only their return address between two records: scan each gap.
    uintptr_t f = chain;
    int async_done = 0;
    while (f && f + 16 <= end && n < max) {
        uintptr_t ret = WORD(f + 8), next = WORD(f);
        const image *rim = find_image(ret);
        if (!rim) break;
        if (!async_done && rim->concurrency && f >= sp + 8) {
            // The frame at f is the funclet the runtime resumed; its async context sits just below
            // the frame pointer. Its callers are not on the native stack: follow the contexts'
            // (Parent, ResumeParent) links, reading with process_vm_readv (no crash on a stale pointer).
            async_done = 1;
            uintptr_t ctx = WORD(f - 8);
            for (int depth = 0; ctx && (ctx & 7) == 0 && depth < 64 && n < max; depth++) {
                uintptr_t link[2];
                struct iovec local = { link, sizeof link }, remote = { (void *)ctx, sizeof link };
                if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof link) break;
                if (!link[1] || !find_image(link[1])) break;
                out[n] = link[1]; flags[n] = 4; n++;
                ctx = link[0];
            }
        }
        out[n] = ret; flags[n] = 2; n++;
        if (next <= f || (next & 7)) break;
        uintptr_t gap_end = next + 16 <= end ? next : end;
        for (uintptr_t a = f + 16; a < gap_end && a < f + 16 + 2048 && n < max; a += 8) {
            uintptr_t w = WORD(a);
            if (is_return_address(w)) { out[n] = w; flags[n] = 2; n++; }
        }
        f = next;
    }
#undef WORD
    return n;
}

// Reads /proc/self/task/TID/syscall: returns -1 (running), or the syscall number with sp/pc.
static long probe_syscall(uint32_t tid, uintptr_t *sp, uintptr_t *pc) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%u/syscall", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -2;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -2;
    buf[n] = 0;
    if (strncmp(buf, "running", 7) == 0) return -1;
    char *p = buf, *e;
    long nr = strtol(p, &e, 10);
    if (e == p) return -2;
    unsigned long long v[8]; int k = 0;
    p = e;
    while (k < 8) {
        unsigned long long x = strtoull(p, &e, 16);
        if (e == p) break;
        v[k++] = x; p = e;
    }
    if (nr < 0) { // "-1 sp pc": blocked, not in a system call
        if (k < 2) return -2;
        *sp = v[0]; *pc = v[1];
        return -3;
    }
    if (k < 8) return -2;
    *sp = v[6]; *pc = v[7];
    return nr;
}

static uint8_t sleep_copy[COPY_BYTES];
static int debug_walk;

// Samples the stack of a stalled thread; returns the stack id (0: none) and its state.
static uint32_t sample_thread(tbuf *out, tbuf *t, uint64_t *state) {
    uintptr_t sp = 0, pc = 0, fp = 0;
    long nr = probe_syscall(t->tid, &sp, &pc);
    const uint8_t *mem = NULL;
    size_t len = 0;
    if (nr >= 0) {
        *state = 2 + (uint64_t)nr;
        if (sp < t->stack_lo || sp >= t->stack_hi) return 0;
        len = t->stack_hi - sp;
        if (len > COPY_BYTES) len = COPY_BYTES;
        struct iovec local = { sleep_copy, len }, remote = { (void *)sp, len };
        ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
        if (got < 0 && (errno == EPERM || errno == ENOSYS)) {
            // No process_vm_readv here (seccomp): the thread sleeps in the kernel, its stack is
            // mapped and still; copy it directly.
            memcpy(sleep_copy, (const void *)sp, len);
            got = (ssize_t)len;
        }
        if (got <= 0) return 0;
        len = (size_t)got;
        mem = sleep_copy;
    } else if (nr == -1 && R.sample_signal) {
        *state = 1;
        atomic_store(&sample.done, 0);
        atomic_store(&sample.target, t->tid);
        // The program may have taken the signal for itself since: then never send it again.
        struct sigaction cur;
        if (sigaction(R.sample_signal, NULL, &cur) != 0 || !(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != sample_handler) {
            R.sample_signal = 0;
            atomic_store(&sample.target, 0);
            *state = 1;
            return 0;
        }
        if (pthread_kill(t->thread, R.sample_signal) != 0) { atomic_store(&sample.target, 0); return 0; }
        uint64_t deadline = now_ns() + 20000000ull;
        while (!atomic_load(&sample.done) && now_ns() < deadline) {
            struct timespec ts = { 0, 20000 };
            nanosleep(&ts, NULL);
        }
        atomic_store(&sample.target, 0);
        if (!atomic_load(&sample.done)) return 0;
        pc = sample.pc; sp = sample.sp; fp = sample.fp;
        mem = sample.stack; len = sample.len;
    } else {
        *state = 0;
        return 0;
    }
    uintptr_t addrs[MAX_FRAMES];
    uint32_t flags[MAX_FRAMES], ids[MAX_FRAMES];
    int n = walk(pc, sp, fp, mem, len, addrs, flags, MAX_FRAMES);
    if (debug_walk) {  // UNCLOG_DEBUG_WALK=1: the raw words and the walk, on stderr
        fprintf(stderr, "walk tid=%u nr=%ld pc=%lx sp=%lx fp=%lx len=%zu frames=%d\n", t->tid, nr, pc, sp, fp, len, n);
        for (size_t o = 0; o + 8 <= len && o < 1024; o += 8) {
            uintptr_t w = *(const uintptr_t *)(mem + o);
            const image *im = find_image(w);
            fprintf(stderr, "  +%03zx %016lx %s%s\n", o, w, im ? im->path : "", is_return_address(w) ? " RET" : "");
        }
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        uint32_t id = intern_frame(out, addrs[i], flags[i]);
        if (id) ids[m++] = id;
    }
    return intern_stack(out, ids, m);
}

// ---------------------------------------------------------------------------------------------
// Writer

static void write_all(const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(R.fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return; }
        p += w; n -= (size_t)w;
    }
}

static void write_pending(void) {
    pthread_mutex_lock(&R.pend_lock);
    pending *list = R.pend_head;
    R.pend_head = R.pend_tail = NULL;
    R.pend_count = 0;
    pthread_mutex_unlock(&R.pend_lock);
    while (list) {
        pending *p = list;
        list = p->next;
        uint32_t crc = crc32_buf(p->data + 12, p->size - 12);
        memcpy(p->data + 8, &crc, 4);
        if (R.fd >= 0) write_all(p->data, p->size);
        R.chunks_written++;
        free(p->data);
        free(p);
    }
}

static void write_header_and_metadata(void) {
    static const uint8_t header[16] = { 0x89, 'U', 'N', 'C', 'L', 'O', 'G', '\n', 1, 0, 0, 0, 0, 0, 0, 0 };
    write_all(header, 16);
    uint8_t *buf = malloc(CHUNK_CAP);
    if (!buf) return;
    uint8_t *p = buf + CHUNK_HEADER;
    int count = 0;
    uint8_t *countp = p;  // filled at the end (< 128 entries: one byte)
    p++;
#define KEY(k) do { size_t _n = strlen(k); p = put_uvarint(p, _n); memcpy(p, k, _n); p += _n; count++; } while (0)
#define STR(s) do { size_t _n = strlen(s); if (_n > 4096) _n = 4096; *p++ = 1; p = put_uvarint(p, _n); memcpy(p, s, _n); p += _n; } while (0)
#define UINT(v) do { *p++ = 0; p = put_uvarint(p, (v)); } while (0)
    struct timespec mono, wall;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t anchor = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
    KEY("clock"); STR("CLOCK_MONOTONIC");
    KEY("anchor_mono_ns"); UINT(anchor);
    KEY("anchor_wall_ns"); UINT((uint64_t)wall.tv_sec * 1000000000ull + (uint64_t)wall.tv_nsec);
    KEY("pid"); UINT((uint64_t)getpid());
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    KEY("hostname"); STR(host);
    KEY("runtime"); STR("swift-concurrency");
    KEY("recorder"); STR(R.cfg.recorder_name ? R.cfg.recorder_name : "unclog-swift 0.1.0");
    KEY("threshold_ns"); UINT(R.cfg.threshold_ns);
    KEY("sample_interval_ns"); UINT(R.cfg.sample_interval_ns);
    // What this recording cannot see, named in the trace (and printed by `unclog record`).
    {
        const char *missing[4];
        int k = 0;
        missing[k++] = "jobs on custom serial executors and task executors";
        if (!interpose_on && !R.cfg.executors) missing[k++] = "main-actor jobs and timer (Task.sleep wake-up) jobs";
        if (!loops_on) missing[k++] = "event-loop threads (epoll_wait is interposed only by the LD_PRELOAD recorder)";
        KEY("not_recorded");
        *p++ = 2;
        p = put_uvarint(p, (uint64_t)k);
        for (int i = 0; i < k; i++) { size_t l = strlen(missing[i]); p = put_uvarint(p, l); memcpy(p, missing[i], l); p += l; }
        KEY("swift_recorder_mode"); STR(interpose_on ? "interpose" : R.cfg.executors ? "hook+executors" : "hook");
        // Each job's kind (the runtime's JobKind, job flags bits 0-7) follows from its greenthread
        // id (job_gt): say so in the trace, as "LO-HI KIND NAME" (KIND: the JobKind number, "k" =
        // gt & 0xFF, "-" = not a runtime job or any kind), so readers need not know this recorder.
        static const char *const kinds[] = {
            "0x00000001-0xBFFFFFFF 0 task (the greenthread id is the task id's low 32 bits)",
            "0xC0000000-0xCFFFFFFF - event-loop iteration and its hub (not a runtime job)",
            "0xD0000000-0xDFFFFFFF - span (not a runtime job)",
            "0xE0000000-0xFFFFFEFF 192 default-actor drain (DefaultActorInline): one greenthread per actor",
            "0xFFFFFF00-0xFFFFFFEF k runtime job of kind gt & 0xFF (193 DefaultActorSeparate, 194 DefaultActorOverride, 196 IsolatedDeinit; 195 NullaryContinuation, the hand-off of Task.yield(), is not timed, the task it resumes is ready from its yield: it appears only when one ran past the threshold)",
            "0xFFFFFFF0-0xFFFFFFF0 - timer job (Task.sleep wake-up), whatever its kind",
            "0xFFFFFFFD-0xFFFFFFFD 0 task job without a task id",
            "0xFFFFFFFE-0xFFFFFFFE 192 default-actor drain (actors beyond the recorder's 8192)",
        };
        size_t nk = sizeof kinds / sizeof kinds[0];
        KEY("swift_job_kinds");
        *p++ = 2;
        p = put_uvarint(p, (uint64_t)nk);
        for (size_t i = 0; i < nk; i++) { size_t l = strlen(kinds[i]); p = put_uvarint(p, l); memcpy(p, kinds[i], l); p += l; }
    }
    // argv from /proc/self/cmdline (NUL-separated)
    char cmd[4096];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, cmd, sizeof cmd - 1) : 0;
    if (fd >= 0) close(fd);
    if (n < 0) n = 0;
    cmd[n] = 0;
    int nargs = 0;
    for (ssize_t i = 0; i < n; i++) if (cmd[i] == 0) nargs++;
    KEY("argv");
    *p++ = 2;
    p = put_uvarint(p, (uint64_t)nargs);
    for (ssize_t i = 0; i < n;) {
        size_t l = strlen(cmd + i);
        p = put_uvarint(p, l); memcpy(p, cmd + i, l); p += l;
        i += (ssize_t)l + 1;
    }
#undef KEY
#undef STR
#undef UINT
    *countp = (uint8_t)count;
    uint32_t len = (uint32_t)(p - buf - CHUNK_HEADER);
    memcpy(buf, "\xFF\x55\x43\x4B", 4);
    memcpy(buf + 4, &len, 4);
    memset(buf + 12, 0, 4);
    buf[12] = 1;
    memcpy(buf + 16, &anchor, 8);
    memset(buf + 24, 0, 8);
    uint32_t crc = crc32_buf(buf + 12, 20 + len);
    memcpy(buf + 8, &crc, 4);
    write_all(buf, CHUNK_HEADER + len);
    R.chunks_written++;
    free(buf);
}

// ---------------------------------------------------------------------------------------------
// Watchdog

static void announce_thread(tbuf *t) {
    char name[64] = "";
    pthread_getname_np(t->thread, name, sizeof name);
    uint32_t sid = 0;
    if (name[0]) {
        sid = next_id++;
        emit_string(watchdog_buf, sid, name, strlen(name));
    }
    uint64_t f[2] = { t->tid, sid };
    emit_simple(watchdog_buf, EV_THREAD, now_ns(), 2, f);
    t->announced = 1;
}

static uint64_t gone_events, gone_jobs, gone_handoffs, gone_dropped;  // totals of freed (exited) threads' buffers

// What flush_partial adds up when asked: every buffer's counters; the buffers' drop counts move here.
typedef struct { uint64_t events, dropped, jobs, handoffs; } buf_totals;

// Seals the chunks open for 0.4 s or more (with `tot`: every open chunk, and adds up every
// buffer's counters). Only those buffers are taken, and only the buffers registered when it began:
// a thread registering meanwhile is pushed in front of the snapshot, never touched untaken. A
// buffer's `steal` flag says it was taken here: only this thread sets it.
static void flush_partial(uint64_t now, buf_totals *tot) {
    tbuf *head = atomic_load(&R.threads);
    int any = 0;
    for (tbuf *t = head; t; t = t->next) {
        uint64_t o = atomic_load_explicit(&t->opened_ns, memory_order_relaxed);
        if (tot || (o && ((now >= o && now - o >= 400000000ull) || atomic_load(&t->dead)))) { buf_take(t); any = 1; }
    }
    if (!any) return;
    heavy_fence();
    for (tbuf *t = head; t; t = t->next) {
        if (!atomic_load_explicit(&t->steal, memory_order_relaxed)) continue;
        buf_wait(t);
        if (t->used > CHUNK_HEADER) seal_chunk(t);
        if (tot) {
            tot->events += t->events; tot->jobs += t->jobs; tot->handoffs += t->handoffs;
            tot->dropped += t->dropped;
            t->dropped = 0;
        }
        buf_give(t);
    }
}

// Frees the buffers of threads that exited (Dispatch retires idle workers), once written.
static void reap_threads(void) {
    pthread_mutex_lock(&R.reg_lock);
    tbuf *prev = NULL, *t = atomic_load(&R.threads);
    while (t) {
        tbuf *next = t->next;
        if (t != watchdog_buf && atomic_load(&t->dead) && t->used == CHUNK_HEADER && !t->dropped) {
            gone_events += t->events;
            gone_jobs += t->jobs;
            gone_handoffs += t->handoffs;
            if (prev) prev->next = next; else atomic_store(&R.threads, next);
            free(t->data);
            free(t);
        } else {
            prev = t;
        }
        t = next;
    }
    pthread_mutex_unlock(&R.reg_lock);
}

// Names the greenthreads of default actors seen since the last call (watchdog): "actor @0x…".
static uint8_t actor_named[ACTOR_SLOTS / 8 + 1];
static void name_actors(void) {
    for (int h = 0; h < ACTOR_SLOTS; h++) {
        uint32_t id = __atomic_load_n(&actor_ids[h], __ATOMIC_ACQUIRE);
        if (!id || id < 0xE0000000u) continue;
        uint32_t k = id - 0xE0000000u;
        if (k >= ACTOR_SLOTS || (actor_named[k / 8] & (1u << (k % 8)))) continue;
        actor_named[k / 8] |= (uint8_t)(1u << (k % 8));
        char name[64];
        snprintf(name, sizeof name, "actor @0x%lx (drain jobs)", (unsigned long)atomic_load(&actor_keys[h]));
        uint32_t sid = next_id++;
        emit_string(watchdog_buf, sid, name, strlen(name));
        uint64_t f[4] = { id, sid, 0, 0 };
        emit_simple(watchdog_buf, EV_GT_CREATE, now_ns(), 4, f);
    }
}

// Returns whether a job is past the threshold (the watchdog then wakes at the sampling period).
static int check_stalls(uint64_t now) {
    int stalled = 0;
    for (tbuf *t = atomic_load(&R.threads); t; t = t->next) {
        if (t == watchdog_buf) continue;
        if (!t->announced && !atomic_load(&t->dead)) announce_thread(t);
        uint64_t start_tick = atomic_load_explicit(&t->job_start, memory_order_acquire);
        if (!start_tick) continue;
        uint64_t start = to_ns(start_tick);
        // A hand-off's start (bit 0 set) is the watchdog's last reading: up to a tick early.
        if (now < start || now - start <= R.cfg.threshold_ns + ((start_tick & 1) ? R.tick_ns : 0)) continue;
        stalled = 1;
        uint32_t gt = atomic_load_explicit(&t->job_gt, memory_order_relaxed);
        if (t->stall_start_seen != start_tick) {
            t->stall_start_seen = start_tick;
            t->last_sample_ns = 0;
            uint64_t f[3] = { t->tid, gt, now - start };
            emit_simple(watchdog_buf, EV_STALL_BEGIN, now, 3, f);
        }
        if (t->last_sample_ns && now - t->last_sample_ns < R.cfg.sample_interval_ns) continue;
        uint64_t state = 0;
        uint64_t ts = now_ns();
        uint32_t stack = sample_thread(watchdog_buf, t, &state);
        // The sample belongs to this stall only if the job is still the same.
        if (atomic_load_explicit(&t->job_start, memory_order_acquire) != start_tick) continue;
        t->last_sample_ns = ts;
        uint64_t f[3] = { t->tid, stack, state };
        emit_simple(watchdog_buf, EV_STALL_SAMPLE, ts, 3, f);
    }
    return stalled;
}

static void *watchdog_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "unclog-watchdog");
    buf_enter(watchdog_buf);
    watchdog_buf->tid = (uint32_t)syscall(SYS_gettid);  // its chunks carry the watchdog's own tid
    buf_exit(watchdog_buf);
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);  // never take the program's signals
    uint64_t last_flush = now_ns(), last_images = last_flush, last_cal = last_flush, cal_every = 10000000ull;
    int stalled = 0;
    while (!atomic_load(&R.stopping)) {
        struct timespec ts = { 0, (long)(stalled ? R.stall_tick_ns : R.tick_ns) };
        nanosleep(&ts, NULL);
        uint64_t now_t = ticks();
        atomic_store_explicit(&coarse_tick, now_t, memory_order_relaxed);
        uint64_t now = to_ns(now_t);
        if (now - last_cal >= cal_every) {  // 10 ms, 100 ms, then every second
            clock_recalibrate(cal_every < 1000000000ull ? cal_every : 1000000000ull);
            cal_every = cal_every < 1000000000ull ? cal_every * 10 : cal_every;
            last_cal = now;
            now = now_ns();
        }
        stalled = check_stalls(now);
        if (now - last_images >= 200000000ull) { refresh_images(watchdog_buf, 0); last_images = now; }
        if (now - last_flush >= 100000000ull) {
            name_actors();
            flush_partial(now, NULL);
            reap_threads();
            last_flush = now;
        }
        write_pending();
    }
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// Start and stop

static void at_exit(void) { unclog_recorder_stop(); }
static void in_child(void) {  // a forked child must not write into the parent's trace
    atomic_store(&R.stopping, 1);
    atomic_store(&R.active, 0);
    R.fd = -1;
    // The fork may have come while the watchdog held buffers: the child has no watchdog to give
    // them back, and its one thread may still finish a job into its buffer.
    for (tbuf *t = atomic_load(&R.threads); t; t = t->next) {
        atomic_store_explicit(&t->steal, 0, memory_order_relaxed);
        atomic_store_explicit(&t->busy, 0, memory_order_relaxed);
    }
}

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

void unclog_runtime_lookup(unclog_runtime *rt) {
    memset(rt, 0, sizeof *rt);
    rt->enqueue_global_hook = dlsym(RTLD_DEFAULT, "swift_task_enqueueGlobal_hook");
    rt->job_run = dlsym(RTLD_DEFAULT, "swift_job_run");
    rt->dispatch_async_f = dlsym(RTLD_DEFAULT, "dispatch_async_f");
    rt->dispatch_queue_create = dlsym(RTLD_DEFAULT, "dispatch_queue_create");
    rt->dispatch_queue_attr_make_with_qos_class = dlsym(RTLD_DEFAULT, "dispatch_queue_attr_make_with_qos_class");
    rt->dispatch_queue_set_width = dlsym(RTLD_DEFAULT, "dispatch_queue_set_width");
    rt->dispatch_queue_attr_concurrent = dlsym(RTLD_DEFAULT, "_dispatch_queue_attr_concurrent");
    rt->swift_task_getCurrent = dlsym(RTLD_DEFAULT, "swift_task_getCurrent");
    rt->enqueue_main_hook = dlsym(RTLD_DEFAULT, "swift_task_enqueueMainExecutor_hook");
    rt->get_main_executor = dlsym(RTLD_DEFAULT, "swift_task_getMainExecutor");
    rt->dispatch_main_q = dlsym(RTLD_DEFAULT, "_dispatch_main_q");
}

int unclog_recorder_start(const unclog_config *config, const unclog_runtime *rt, char *error, size_t error_size) {
#define FAIL(...) do { if (error && error_size) snprintf(error, error_size, __VA_ARGS__); return -1; } while (0)
    if (atomic_load(&R.active)) FAIL("already recording");
    if (!config || !config->output || !*config->output) FAIL("no output file given");
    if (!rt || !rt->enqueue_global_hook) FAIL("swift_task_enqueueGlobal_hook not found (no Swift Concurrency runtime)");
    if (!rt->job_run || !rt->dispatch_async_f || !rt->dispatch_queue_create || !rt->dispatch_queue_attr_make_with_qos_class
        || !rt->dispatch_queue_set_width || !rt->dispatch_queue_attr_concurrent)
        FAIL("swift_job_run or Dispatch functions not found");
    R.cfg = *config;
    if (!R.cfg.threshold_ns) R.cfg.threshold_ns = 50000000ull;
    if (!R.cfg.sample_interval_ns) R.cfg.sample_interval_ns = 10000000ull;
    snprintf(R.output, sizeof R.output, "%s", config->output);
    R.cfg.output = R.output;
    R.hook_slot = rt->enqueue_global_hook;
    R.job_run = (job_run_fn)rt->job_run;
    R.async_f = (dispatch_async_f_fn)rt->dispatch_async_f;
    R.queue_create = (dispatch_queue_create_fn)rt->dispatch_queue_create;
    R.attr_qos = (dispatch_attr_qos_fn)rt->dispatch_queue_attr_make_with_qos_class;
    R.set_width = (dispatch_set_width_fn)rt->dispatch_queue_set_width;
    R.after_f = (dispatch_after_f_fn)rt->dispatch_after_f;
    R.dispatch_time = (dispatch_time_fn)rt->dispatch_time;
    if (rt->dispatch_main_q && !R.main_queue) R.main_queue = rt->dispatch_main_q;
    R.attr_concurrent = rt->dispatch_queue_attr_concurrent;
    // The watchdog's period: a quarter of the threshold while no job is past it (how late a stall
    // is noticed, and the bound on a ready stamp's earliness: ready_stamp), a quarter of the sample
    // interval during a stall (so samples keep their interval); 1-10 ms either way. Each wake-up
    // preempts a worker when the CPUs are busy: at 400 per second (the sampling period alone) that
    // cost the benchmark's workers ~5 ns per job in context switches.
    R.tick_ns = clamp_u64(R.cfg.threshold_ns / 4, 1000000ull, 10000000ull);
    uint64_t sampling = R.cfg.sample_interval_ns < R.cfg.threshold_ns ? R.cfg.sample_interval_ns : R.cfg.threshold_ns;
    R.stall_tick_ns = clamp_u64(sampling / 4, 1000000ull, R.tick_ns);
    crc_init();
    asym_fence_init();  // before any buffer is written: owners fence or not from here on

    R.fd = open(R.output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (R.fd < 0) FAIL("%s: cannot create: %s", R.output, strerror(errno));
    R.pid = getpid();
    loops_on = rt->loops;
    if (rt->interpose) {
        dl_iterate_phdr(conc_cb, NULL);
        interpose_on = conc_text_hi != 0;
    }
    clock_start();
    atomic_store_explicit(&coarse_tick, ticks(), memory_order_relaxed);  // hand-offs' starts (KIND_HANDOFF)
    debug_walk = getenv("UNCLOG_DEBUG_WALK") != NULL;
    if (getenv("UNCLOG_LOOP_THREADS")) snprintf(loop_prefixes, sizeof loop_prefixes, "%s", getenv("UNCLOG_LOOP_THREADS"));
    write_header_and_metadata();

    // The sampling signal: a real-time signal nobody handles (workers unblock it at their first job).
    R.sample_signal = 0;
    for (int s = SIGRTMAX - 2; s >= SIGRTMIN + 4; s--) {
        struct sigaction old;
        if (sigaction(s, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_sigaction = sample_handler;
            sa.sa_flags = SA_SIGINFO | SA_RESTART;
            sigfillset(&sa.sa_mask);
            if (sigaction(s, &sa, NULL) == 0) R.sample_signal = s;
            break;
        }
    }
    pthread_key_create(&tls_key, thread_gone);

    watchdog_buf = calloc(1, sizeof *watchdog_buf);
    watchdog_buf->data = malloc(CHUNK_CAP);
    watchdog_buf->used = CHUNK_HEADER;
    watchdog_buf->tid = (uint32_t)syscall(SYS_gettid);  // until the watchdog thread runs
    watchdog_buf->announced = 1;
    refresh_images(watchdog_buf, 1);
    static const struct { uint32_t gt; const char *name; } special[] = {
        { 0xFFFFFFF0u, "Swift timer jobs (Task.sleep wake-ups)" },
        { 0xFFFFFFC1u, "Swift actor jobs (separate)" },
        { 0xFFFFFFC2u, "Swift actor jobs (override)" },
        { HANDOFF_GT, "Swift hand-offs past the threshold (resumptions, e.g. Task.yield)" },
        { 0xFFFFFFC4u, "Swift isolated deinits" },
        { 0xFFFFFFFEu, "Swift actors (beyond 8192)" },
        { 0xFFFFFFFDu, "Swift jobs without a task id" },
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        uint32_t sid = next_id++;
        emit_string(watchdog_buf, sid, special[i].name, strlen(special[i].name));
        uint64_t f[4] = { special[i].gt, sid, 0, 0 };
        emit_simple(watchdog_buf, EV_GT_CREATE, now_ns(), 4, f);
    }
    pthread_mutex_lock(&R.reg_lock);
    watchdog_buf->next = atomic_load(&R.threads);
    atomic_store(&R.threads, watchdog_buf);
    pthread_mutex_unlock(&R.reg_lock);

    atomic_store(&R.stopping, 0);
    atomic_store(&R.active, 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    if (pthread_create(&R.watchdog, &attr, watchdog_main, NULL) != 0) {
        pthread_attr_destroy(&attr);
        atomic_store(&R.active, 0);
        close(R.fd); R.fd = -1;
        FAIL("cannot start the watchdog thread");
    }
    pthread_attr_destroy(&attr);

    // Install the hook. Whoever installed one first keeps control (e.g. SwiftNIO's event loops as
    // the global executor): we chain to it and cannot time its jobs.
    // UNCLOG_EXECUTOR_HOOK=off leaves the hook free (e.g. for SwiftNIO's compare-and-swap install of its
    // event loops as the global executor, which fails when any hook is set): loops are still recorded.
    const char *hook_env = getenv("UNCLOG_EXECUTOR_HOOK");
    int hook_off = hook_env && (strcmp(hook_env, "off") == 0 || strcmp(hook_env, "0") == 0);
    void *prev = __atomic_load_n(R.hook_slot, __ATOMIC_ACQUIRE);
    R.previous_hook = (enqueue_hook_fn)prev;
    if (!hook_off && !interpose_on) __atomic_store_n(R.hook_slot, (void *)enqueue_hook, __ATOMIC_RELEASE);
    if (prev && !interpose_on && !config->quiet) {
        static const char msg[] = "unclog: another executor hook was installed first; its jobs are not timed\n";
        ssize_t w = write(2, msg, sizeof msg - 1); (void)w;
    }
    // Main-actor jobs, when the runtime lets us (Dispatch main queue and the main executor).
    if (!interpose_on && rt->enqueue_main_hook && rt->get_main_executor && rt->dispatch_main_q && !getenv("UNCLOG_NO_MAIN_HOOK")) {
        R.main_executor = ((get_main_executor_fn)rt->get_main_executor)();
        R.main_queue = rt->dispatch_main_q;
        R.main_hook_slot = rt->enqueue_main_hook;
        R.previous_main_hook = (enqueue_hook_fn)__atomic_load_n(R.main_hook_slot, __ATOMIC_ACQUIRE);
        __atomic_store_n(R.main_hook_slot, (void *)enqueue_main_hook, __ATOMIC_RELEASE);
    }
    static int registered;
    if (!registered) { registered = 1; atexit(at_exit); pthread_atfork(NULL, NULL, in_child); }
    return 0;
#undef FAIL
}

void unclog_recorder_stop(void) {
    if (!atomic_load(&R.active) || getpid() != R.pid) return;
    if (atomic_exchange(&R.stopping, 1)) return;
    if (__atomic_load_n(R.hook_slot, __ATOMIC_ACQUIRE) == (void *)enqueue_hook)
        __atomic_store_n(R.hook_slot, (void *)R.previous_hook, __ATOMIC_RELEASE);
    if (R.main_hook_slot && __atomic_load_n(R.main_hook_slot, __ATOMIC_ACQUIRE) == (void *)enqueue_main_hook)
        __atomic_store_n(R.main_hook_slot, (void *)R.previous_main_hook, __ATOMIC_RELEASE);
    pthread_join(R.watchdog, NULL);
    name_actors();
    // Everything recorded so far goes to the file, counted; then the summary events, then one last
    // flush: a job still running records into a buffer nobody writes again, and the statistics
    // count what was flushed.
    buf_totals tot = { gone_events, gone_dropped, 0, 0 };
    flush_partial(now_ns(), &tot);
    write_pending();
    if (tot.dropped || R.pend_dropped) {
        uint64_t f[2] = { 1, tot.dropped + R.pend_dropped };
        emit_simple(watchdog_buf, EV_DROPPED, now_ns(), 2, f);
    }
    uint64_t f[2] = { R.chunks_written, tot.events };
    emit_simple(watchdog_buf, EV_END, now_ns(), 2, f);
    buf_totals last = { 0, 0, gone_jobs, gone_handoffs };
    flush_partial(now_ns(), &last);
    write_pending();
    close(R.fd);
    R.fd = -1;
    atomic_store(&R.active, 0);
    if (getenv("UNCLOG_STATS")) {  // for benchmarks: what was recorded
        char line[200];
        int n = snprintf(line, sizeof line, "unclog-stats jobs=%llu handoffs=%llu events=%llu chunks=%llu\n",
                         (unsigned long long)last.jobs, (unsigned long long)last.handoffs, (unsigned long long)tot.events,
                         (unsigned long long)R.chunks_written);
        ssize_t w = write(2, line, (size_t)n); (void)w;
    }
}

int unclog_recorder_active(void) { return atomic_load(&R.active); }
uint64_t unclog_recorder_jobs(void) {
    pthread_mutex_lock(&R.reg_lock);  // the watchdog frees exited threads' buffers under this lock
    uint64_t n = gone_jobs;
    for (tbuf *t = atomic_load(&R.threads); t; t = t->next) n += t->jobs;  // racy read: a statistic
    pthread_mutex_unlock(&R.reg_lock);
    return n;
}
