// Event-loop threads (SwiftNIO's, or UNCLOG_LOOP_THREADS' prefixes): the LD_PRELOAD library calls
// in around each epoll_wait. A wait is an I/O wait of the loop's hub; the time between two waits is
// a slice of the loop's "loop iteration" greenthread, timed by the watchdog like a job. Spans
// (unclog_span_begin/end, e.g. UnclogNIO's timed handler) are slices of a named greenthread
// inside an iteration.
#include "recorder_internal.h"

#include <stdio.h>
#include <stdlib.h>

static __thread int loop_state __attribute__((tls_model("initial-exec")));       // 0 unknown, 1 loop, 2 not
static __thread uint32_t loop_gt __attribute__((tls_model("initial-exec")));     // the loop's work; hub = loop_gt - 1
static __thread uint64_t tick_start __attribute__((tls_model("initial-exec")));  // ticks; 0 = waiting
static _Atomic uint32_t next_loop_gt = GT_LOOP_BASE;
static __thread uint32_t span_gt __attribute__((tls_model("initial-exec")));
static __thread uint64_t span_start __attribute__((tls_model("initial-exec")));  // ticks

// NIO-ELT: MultiThreadedEventLoopGroup threads; NIO-SGLTN: NIOSingletons' group (also the loops that run
// Swift Concurrency jobs when NIO is installed as the global executor).
static char loop_prefixes[256] = "NIO-ELT,NIO-SGLTN";
static _Atomic uint32_t string_ids = 0xF0000000u;  // strings written by loop threads themselves

void loops_set_prefixes(const char *prefixes) { snprintf(loop_prefixes, sizeof loop_prefixes, "%s", prefixes); }

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
    uint64_t f[4] = {gt, sid, 0, 0};
    emit_simple(b, EV_GREENTHREAD_CREATE, now_ns(), 4, f);
}

static tbuf *loop_thread(void) {
    if (__builtin_expect(loop_state == 1, 1)) return tls_buf;
    if (loop_state == 2 || !atomic_load_explicit(&R.active, memory_order_relaxed)) return NULL;
    if (!is_loop_thread()) {
        loop_state = 2;
        return NULL;
    }
    tbuf *b = tls_buf ? tls_buf : register_thread(1);
    if (!b) {
        loop_state = 2;
        return NULL;
    }
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
        *p++ = EV_RUNNING;
        *p++ = 0;
        p = put_uvarint(p, tick_start ? loop_gt : hub);
        p = put_uvarint(p, hub);
        b->events++;
    }
    span_gt = 0;       // a span left open (no end call) ends with the iteration
    if (tick_start) {  // the iteration since the last wait ends here
        atomic_store_explicit(&b->job_start, 0, memory_order_relaxed);
        uint64_t start = to_ns_p(cp, tick_start);
        p = put_stall_end_if_long(b, p, loop_gt, now, now > start ? now - start : 0);
        *p++ = EV_SWITCH_TO_HUB;
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
        *p++ = EV_RUNNING;
        *p++ = 0;
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
static struct {
    const char *name;
    uint32_t gt;
} span_names[SPAN_NAMES];
static pthread_mutex_t span_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint32_t next_span_gt = GT_SPAN_BASE;

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
        *p++ = EV_RUNNING;
        *p++ = 0;
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
        *p++ = EV_RUNNING;
        *p++ = 0;
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
