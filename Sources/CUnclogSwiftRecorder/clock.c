// The clock's calibration: whether the hot path may read the TSC, and the parameters that convert
// its ticks to CLOCK_MONOTONIC nanoseconds (ns = base_ns + (Δtick × mult) >> 32, read with
// to_ns_p in recorder_internal.h), published without locks and steered by the watchdog.
#include "recorder_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int use_tsc;
_Atomic uint64_t coarse_tick;
_Atomic(clock_params *) clock_cur;
static clock_params clock_slots[16];
static unsigned clock_next;
static uint64_t cal_tick0, cal_ns0;  // the first calibration pair

// A (tick, ns) pair read as close together as possible.
static void clock_pair(uint64_t *tick, uint64_t *ns) {
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = rdtsc(), m = mono_ns(), b = rdtsc();
        if (b - a < best) {
            best = b - a;
            *tick = a + (b - a) / 2;
            *ns = m;
        }
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
    p->base_tick = base_tick;
    p->base_ns = base_ns;
    p->mult = mult;
    atomic_store_explicit(&clock_cur, p, memory_order_release);
}

void clock_calibrate_tsc(void) {
    clock_pair(&cal_tick0, &cal_ns0);
    uint64_t t1, n1;
    do { clock_pair(&t1, &n1); } while (n1 - cal_ns0 < CAL_FIRST_ESTIMATE_NS);
    uint64_t mult = (uint64_t)(((__int128)(n1 - cal_ns0) << 32) / (t1 - cal_tick0));
    clock_publish(t1, n1, mult);
}

void clock_start(void) {
    use_tsc = tsc_trusted();
    if (!use_tsc) return;
    clock_calibrate_tsc();
}

// Watchdog: re-measures the rate over the whole recording and steers the conversion so that it
// meets CLOCK_MONOTONIC again within `horizon` ns, without ever stepping back.
void clock_recalibrate(uint64_t horizon) {
    if (!use_tsc) return;
    uint64_t t, n;
    clock_pair(&t, &n);
    if (t <= cal_tick0 || n <= cal_ns0) return;
    const clock_params *p = atomic_load(&clock_cur);
    uint64_t cur = to_ns_p(p, t);
    double rate = (double)(n - cal_ns0) / (double)(t - cal_tick0);  // ns per tick
    double err = (double)cur - (double)n;                           // > 0: the trace runs ahead
    double f = 1.0 - err / (double)horizon;
    if (f < 0.9) f = 0.9;
    if (f > 1.1) f = 1.1;
    clock_publish(t, cur, (uint64_t)(rate * f * 4294967296.0));
}
