// The watchdog thread: wakes every few ms (R.tick_ns; R.stall_tick_ns while a job is past the
// threshold), publishes its clock reading (coarse_tick, which ready stamps and hand-offs rely on),
// recalibrates the clock, notices stalls (StallBegin) and samples them (StallSample), names threads
// and actors, looks for new images, flushes partly filled chunks and writes the queued ones.
#include "recorder_internal.h"

#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static void announce_thread(tbuf *t) {
    char name[64] = "";
    pthread_getname_np(t->thread, name, sizeof name);
    uint32_t sid = 0;
    if (name[0]) {
        sid = next_id++;
        emit_string(watchdog_buf, sid, name, strlen(name));
    }
    uint64_t f[2] = {t->tid, sid};
    emit_simple(watchdog_buf, EV_THREAD, now_ns(), 2, f);
    t->announced = 1;
}

// Names the greenthreads of default actors seen since the last call (watchdog): "actor @0x…".
static uint8_t actor_named[ACTOR_SLOTS / 8 + 1];
void name_actors(void) {
    for (int h = 0; h < ACTOR_SLOTS; h++) {
        uint32_t id = __atomic_load_n(&actor_ids[h], __ATOMIC_ACQUIRE);
        if (!id || id < GT_ACTOR_BASE) continue;
        uint32_t k = id - GT_ACTOR_BASE;
        if (k >= ACTOR_SLOTS || (actor_named[k / 8] & (1u << (k % 8)))) continue;
        actor_named[k / 8] |= (uint8_t)(1u << (k % 8));
        char name[64];
        snprintf(name, sizeof name, "actor @0x%lx (drain jobs)", (unsigned long)atomic_load(&actor_keys[h]));
        uint32_t sid = next_id++;
        emit_string(watchdog_buf, sid, name, strlen(name));
        uint64_t f[4] = {id, sid, 0, 0};
        emit_simple(watchdog_buf, EV_GREENTHREAD_CREATE, now_ns(), 4, f);
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
            uint64_t f[3] = {t->tid, gt, now - start};
            emit_simple(watchdog_buf, EV_STALL_BEGIN, now, 3, f);
        }
        if (t->last_sample_ns && now - t->last_sample_ns < R.cfg.sample_interval_ns) continue;
        uint64_t state = 0;
        uint64_t ts = now_ns();
        uint32_t stack = sample_thread(watchdog_buf, t, &state);
        // The sample belongs to this stall only if the job is still the same.
        if (atomic_load_explicit(&t->job_start, memory_order_acquire) != start_tick) continue;
        t->last_sample_ns = ts;
        uint64_t f[3] = {t->tid, stack, state};
        emit_simple(watchdog_buf, EV_STALL_SAMPLE, ts, 3, f);
    }
    return stalled;
}

void *watchdog_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "unclog-watchdog");
    buf_enter(watchdog_buf);
    watchdog_buf->tid = (uint32_t)syscall(SYS_gettid);  // its chunks carry the watchdog's own tid
    buf_exit(watchdog_buf);
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);  // never take the program's signals
    uint64_t last_flush = now_ns(), last_images = last_flush, last_cal = last_flush, cal_every = CAL_FIRST_NS;
    int stalled = 0;
    while (!atomic_load(&R.stopping)) {
        struct timespec ts = {0, (long)(stalled ? R.stall_tick_ns : R.tick_ns)};
        nanosleep(&ts, NULL);
        uint64_t now_t = ticks();
        atomic_store_explicit(&coarse_tick, now_t, memory_order_relaxed);
        uint64_t now = to_ns(now_t);
        if (now - last_cal >= cal_every) {  // 10 ms, 100 ms, then every second
            clock_recalibrate(cal_every < CAL_MAX_NS ? cal_every : CAL_MAX_NS);
            cal_every = cal_every < CAL_MAX_NS ? cal_every * 10 : cal_every;
            last_cal = now;
            now = now_ns();
        }
        stalled = check_stalls(now);
        if (now - last_images >= IMAGES_PERIOD_NS) {
            refresh_images(watchdog_buf, 0);
            last_images = now;
        }
        if (now - last_flush >= FLUSH_PERIOD_NS) {
            name_actors();
            flush_partial(now, NULL);
            reap_threads();
            last_flush = now;
        }
        write_pending();
    }
    return NULL;
}
