// Per-thread chunk buffers: registering a thread, sealing a full chunk into the writer's queue,
// and the taker's side of the ownership protocol (recorder_internal.h, "Buffer ownership"): the
// watchdog's periodic flush of partly filled chunks and its freeing of exited threads' buffers.
// The owner's side (buf_enter/buf_exit, begin_event) is inline in recorder_internal.h.
#include "recorder_internal.h"

#include <linux/membarrier.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int asym_fence;
tbuf *watchdog_buf;
static pthread_key_t tls_key;
uint64_t gone_events, gone_jobs, gone_handoffs, gone_dropped;

// The taker's side, for many buffers at once: raise `steal` on each, one heavy fence, then wait for
// each owner to leave (buf_wait) before touching the buffer, and hand it back with buf_give.
static void buf_take(tbuf *b) { atomic_store_explicit(&b->steal, 1, memory_order_relaxed); }
static void heavy_fence(void) {
    atomic_thread_fence(memory_order_seq_cst);
    if (!asym_fence) return;  // owners fence themselves
    // Registered owners do not fence: only a successful membarrier makes taking safe. It can
    // fail transiently (ENOMEM for its CPU mask): retry.
    while (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}
static void buf_wait(tbuf *b) {
    for (int spins = 0; atomic_load_explicit(&b->busy, memory_order_acquire); spins++) {
        if (spins < 1000) __builtin_ia32_pause();
        else sched_yield();  // the owner may be preempted
    }
}
static void buf_give(tbuf *b) { atomic_store_explicit(&b->steal, 0, memory_order_release); }

void asym_fence_init(void) {
    if (asym_fence) return;
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        asym_fence = 1;
}

// Finishes the buffer's chunk and queues it for writing; the buffer gets fresh memory.
// Called by the buffer's owner between buf_enter and buf_exit, or by a taker holding it.
void seal_chunk(tbuf *b) {
    if (b->used <= CHUNK_HEADER) return;
    put_chunk_header(b->data, CHUNK_KIND_EVENTS, b->used - CHUNK_HEADER, b->base_ns, b->tid, b->seq);
    uint8_t *fresh = malloc(CHUNK_CAP);
    pending *p = malloc(sizeof *p);
    if (!fresh || !p) {  // keep the buffer, lose its events
        free(fresh);
        free(p);
        b->dropped += 1;
        b->used = CHUNK_HEADER;
        return;
    }
    atomic_store_explicit(&b->opened_ns, 0, memory_order_relaxed);
    p->next = NULL;
    p->data = b->data;
    p->size = b->used;
    pthread_mutex_lock(&R.pend_lock);
    if (R.pend_count >= MAX_PENDING) {
        R.pend_dropped += 1;
        pthread_mutex_unlock(&R.pend_lock);
        free(p);
        free(fresh);
        b->dropped += 1;
        b->used = CHUNK_HEADER;
        return;
    }
    if (R.pend_tail) R.pend_tail->next = p;
    else R.pend_head = p;
    R.pend_tail = p;
    R.pend_count++;
    pthread_mutex_unlock(&R.pend_lock);
    b->seq++;
    b->data = fresh;
    b->used = CHUNK_HEADER;
}

static void thread_gone(void *arg) {
    tbuf *b = arg;
    atomic_store(&b->dead, 1);
    tls_buf = NULL;
}

tbuf *register_thread(int worker) {
    tbuf *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->data = malloc(CHUNK_CAP);
    if (!b->data) {
        free(b);
        return NULL;
    }
    b->used = CHUNK_HEADER;
    b->tid = (uint32_t)syscall(SYS_gettid);
    b->thread = pthread_self();
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr;
        size_t size;
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
    registry_push(b);
    return b;
}

void registry_push(tbuf *b) {
    pthread_mutex_lock(&R.reg_lock);
    b->next = atomic_load(&R.threads);
    atomic_store(&R.threads, b);
    pthread_mutex_unlock(&R.reg_lock);
}

void buffers_start(void) {
    pthread_key_create(&tls_key, thread_gone);
    watchdog_buf = calloc(1, sizeof *watchdog_buf);
    watchdog_buf->data = malloc(CHUNK_CAP);
    watchdog_buf->used = CHUNK_HEADER;
    watchdog_buf->tid = (uint32_t)syscall(SYS_gettid);  // until the watchdog thread runs
    watchdog_buf->announced = 1;
}

// Seals the chunks open for FLUSH_AGE_NS or more (with `tot`: every open chunk, and adds up every
// buffer's counters). Only those buffers are taken, and only the buffers registered when it began:
// a thread registering meanwhile is pushed in front of the snapshot, never touched untaken. A
// buffer's `steal` flag says it was taken here: only this thread sets it.
void flush_partial(uint64_t now, buf_totals *tot) {
    tbuf *head = atomic_load(&R.threads);
    int any = 0;
    for (tbuf *t = head; t; t = t->next) {
        uint64_t o = atomic_load_explicit(&t->opened_ns, memory_order_relaxed);
        if (tot || (o && ((now >= o && now - o >= FLUSH_AGE_NS) || atomic_load(&t->dead)))) {
            buf_take(t);
            any = 1;
        }
    }
    if (!any) return;
    heavy_fence();
    for (tbuf *t = head; t; t = t->next) {
        if (!atomic_load_explicit(&t->steal, memory_order_relaxed)) continue;
        buf_wait(t);
        if (t->used > CHUNK_HEADER) seal_chunk(t);
        if (tot) {
            tot->events += t->events;
            tot->jobs += t->jobs;
            tot->handoffs += t->handoffs;
            tot->dropped += t->dropped;
            t->dropped = 0;
        }
        buf_give(t);
    }
}

// Frees the buffers of threads that exited (Dispatch retires idle workers), once written.
void reap_threads(void) {
    pthread_mutex_lock(&R.reg_lock);
    tbuf *prev = NULL, *t = atomic_load(&R.threads);
    while (t) {
        tbuf *next = t->next;
        if (t != watchdog_buf && atomic_load(&t->dead) && t->used == CHUNK_HEADER && !t->dropped) {
            gone_events += t->events;
            gone_jobs += t->jobs;
            gone_handoffs += t->handoffs;
            if (prev) prev->next = next;
            else atomic_store(&R.threads, next);
            free(t->data);
            free(t);
        } else {
            prev = t;
        }
        t = next;
    }
    pthread_mutex_unlock(&R.reg_lock);
}
