// Unit tests of the Swift recorder's pure C parts (no runtime, no threads): CRC-32 (both kernels)
// against zlib, the varint encoder against a reference decoder, and the clock's tick → ns
// conversion and calibration. Built and run by `make test-c`; prints "N passed, M failed" last and
// exits non-zero on a failure.
#define UNCLOG_PURE_CORE 1  // the core's pure part only (no Swift runtime ABI, no recorder state)
#include "recorder_internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                                                         \
    do {                                                                                                                         \
        if (cond) passed++;                                                                                                      \
        else {                                                                                                                   \
            failed++;                                                                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                                 \
            fprintf(stderr, __VA_ARGS__);                                                                                        \
            fputc('\n', stderr);                                                                                                 \
        }                                                                                                                        \
    } while (0)

// xorshift64*: reproducible pseudo-random numbers (the seed is printed).
static uint64_t rng_state;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

// ---------------------------------------------------------------------------------------------
// CRC-32

// One kernel (clmul = 1: PCLMUL folding for the 16-byte-aligned bulk, 0: tables only) against
// zlib: every length 0-300 (the tails), then random lengths up to 70 000 at random alignments.
static void crc_kernel(int clmul, const uint8_t *buf, size_t size) {
    have_clmul = clmul;
    int bad = 0;
    for (size_t n = 0; n <= 300; n++) {
        for (size_t off = 0; off < 16; off++) {
            uint32_t want = (uint32_t)crc32(0L, buf + off, (uInt)n), got = crc32_buf(buf + off, n);
            if (got != want && bad++ < 5)
                fprintf(stderr, "  clmul=%d n=%zu off=%zu: %08x, zlib %08x\n", clmul, n, off, got, want);
        }
    }
    CHECK(!bad, "CRC (clmul=%d) differs from zlib on %d short buffers", clmul, bad);
    bad = 0;
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rnd() % 70001), off = (size_t)(rnd() % 64);
        if (off + n > size) n = size - off;
        uint32_t want = (uint32_t)crc32(0L, buf + off, (uInt)n), got = crc32_buf(buf + off, n);
        if (got != want && bad++ < 5) fprintf(stderr, "  clmul=%d n=%zu off=%zu: %08x, zlib %08x\n", clmul, n, off, got, want);
    }
    CHECK(!bad, "CRC (clmul=%d) differs from zlib on %d random buffers", clmul, bad);
    CHECK(crc32_buf((const uint8_t *)"123456789", 9) == 0xCBF43926u, "CRC (clmul=%d) of \"123456789\"", clmul);
    uint8_t zeros[4096] = {0};
    CHECK(crc32_buf(zeros, sizeof zeros) == (uint32_t)crc32(0L, zeros, sizeof zeros), "CRC (clmul=%d) of zeros", clmul);
}

static void test_crc(void) {
    crc_init();
    int cpu_clmul = have_clmul;
    size_t size = 70000 + 64;
    uint8_t *buf = malloc(size);
    for (size_t i = 0; i < size; i++) buf[i] = (uint8_t)rnd();
    crc_kernel(0, buf, size);
    if (cpu_clmul) crc_kernel(1, buf, size);
    else printf("note: this CPU lacks PCLMULQDQ/SSE4.1: the folding kernel is not tested\n");
    have_clmul = cpu_clmul;
    free(buf);
}

// ---------------------------------------------------------------------------------------------
// Varint

// The reference decoder (the format's uvarint: 7 bits per byte, little-endian, high bit = more).
static int get_uvarint(const uint8_t *p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (int i = 0, shift = 0; p + i < end && i < 10; i++, shift += 7) {
        x |= (uint64_t)(p[i] & 0x7F) << shift;
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return -1;
}

static void varint_case(uint64_t v, int want_len) {
    uint8_t buf[16];
    memset(buf, 0xAA, sizeof buf);
    int len = (int)(put_uvarint(buf, v) - buf);
    uint64_t back = 0;
    int used = get_uvarint(buf, buf + len, &back);
    if (want_len) CHECK(len == want_len, "varint %" PRIu64 ": %d bytes, want %d", v, len, want_len);
    CHECK(used == len && back == v, "varint %" PRIu64 ": decodes to %" PRIu64 " (%d of %d bytes)", v, back, used, len);
    CHECK(buf[len] == 0xAA, "varint %" PRIu64 ": wrote past its %d bytes", v, len);
}

static void test_varint(void) {
    static const struct {
        uint64_t v;
        int len;
    } cases[] = {
        {0, 1},
        {1, 1},
        {127, 1},
        {128, 2},
        {16383, 2},
        {16384, 3},
        {2097151, 3},
        {2097152, 4},
        {(1ull << 32) - 1, 5},
        {1ull << 32, 5},
        {(1ull << 35) - 1, 5},
        {1ull << 35, 6},
        {(1ull << 63) - 1, 9},
        {1ull << 63, 10},
        {UINT64_MAX, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) varint_case(cases[i].v, cases[i].len);
    uint8_t b[2];
    CHECK(put_uvarint(b, 0) - b == 1 && b[0] == 0x00, "varint 0 is 00");
    CHECK(put_uvarint(b, 127) - b == 1 && b[0] == 0x7F, "varint 127 is 7F");
    CHECK(put_uvarint(b, 128) - b == 2 && b[0] == 0x80 && b[1] == 0x01, "varint 128 is 80 01");
    uint8_t m[10];
    CHECK(put_uvarint(m, UINT64_MAX) - m == 10 && m[9] == 0x01, "varint 2^64-1 ends in 01");
    // Random values of every width, round-tripped, and a stream of them decoded in order.
    int bad = 0;
    uint8_t stream[64 * 10 * 4], *p = stream;
    uint64_t vals[64 * 4];
    for (int i = 0; i < 64 * 4; i++) {
        int bits = i % 64 + 1;
        vals[i] = bits == 64 ? rnd() : rnd() & ((1ull << bits) - 1);
        p = put_uvarint(p, vals[i]);
    }
    const uint8_t *q = stream;
    for (int i = 0; i < 64 * 4; i++) {
        uint64_t v;
        int used = get_uvarint(q, p, &v);
        if (used < 0 || v != vals[i]) {
            bad++;
            break;
        }
        q += used;
    }
    CHECK(!bad && q == p, "a stream of 256 random varints does not decode back");
}

// ---------------------------------------------------------------------------------------------
// Clock

static int clocksource_is_tsc(void) {
    char cs[64] = "";
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, cs, sizeof cs - 1);
    close(fd);
    return n > 0 && strncmp(cs, "tsc", 3) == 0;
}

static void sleep_ms(int ms) {
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}
static uint64_t absdiff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

static void test_clock_conversion(void) {
    // ns = base_ns + (Δtick × mult) >> 32, against exact 128-bit arithmetic, at 3 GHz (mult < 2^32)
    // and 0.5 GHz (mult > 2^32), over ten years of ticks either side of the base.
    static const uint64_t hz[] = {3000000000ull, 500000000ull, 2712345678ull};
    for (size_t k = 0; k < sizeof hz / sizeof hz[0]; k++) {
        clock_params p = {.base_tick = 1ull << 50, .base_ns = 1ull << 60, .mult = (uint64_t)((1000000000ull << 32) / hz[k])};
        uint64_t ten_years = hz[k] * 86400ull * 365ull * 10ull;
        int bad = 0, backwards = 0;
        uint64_t prev = 0;
        for (int i = 0; i <= 10000; i++) {
            uint64_t t = p.base_tick - ten_years + (uint64_t)((unsigned __int128)2 * ten_years * (unsigned)i / 10000);
            uint64_t got = to_ns_p(&p, t);
            __int128 d = (__int128)(int64_t)(t - p.base_tick);
            __int128 want = (__int128)p.base_ns + ((d * (__int128)p.mult) >> 32);
            if ((__int128)got != want) bad++;
            if (i && got < prev) backwards++;
            prev = got;
        }
        CHECK(!bad, "%" PRIu64 " Hz: %d conversions differ from exact arithmetic over ±10 years", hz[k], bad);
        CHECK(!backwards, "%" PRIu64 " Hz: conversion not monotonic (%d steps back)", hz[k], backwards);
        // Ten years of ticks is ten years of ns (within the rounding of mult: < 1 ppm here).
        uint64_t span = to_ns_p(&p, p.base_tick + ten_years) - p.base_ns;
        uint64_t want = 86400ull * 365ull * 10ull * 1000000000ull;
        CHECK(absdiff(span, want) < want / 1000000, "%" PRIu64 " Hz: ten years convert to %" PRIu64 " ns", hz[k], span);
        // Consecutive ticks: never backwards, never a jump.
        int steps = 0;
        for (uint64_t t = p.base_tick + ten_years - 1000; t < p.base_tick + ten_years + 1000; t++) {
            uint64_t a = to_ns_p(&p, t), b = to_ns_p(&p, t + 1);
            if (b < a || b - a > 2) steps++;
        }
        CHECK(!steps, "%" PRIu64 " Hz: %d bad steps between consecutive ticks", hz[k], steps);
    }
    CHECK(to_ns_p(NULL, 12345) == 12345, "without parameters ticks are nanoseconds");
}

// Calibrated against clock_gettime: agreement within a wide margin (the machine may be loaded),
// and no step back across recalibrations.
static void test_clock_calibration(void) {
    if (!clocksource_is_tsc()) {
        use_tsc = 0;
        uint64_t a = mono_ns(), b = now_ns(), c = mono_ns();
        CHECK(a <= b && b <= c, "without the TSC, now_ns is clock_gettime");
        printf("note: the kernel's clock source is not the TSC: TSC calibration not tested\n");
        return;
    }
    const uint64_t margin = 5000000;  // 5 ms: the recorder keeps within microseconds when not preempted
    use_tsc = 1;
    clock_calibrate_tsc();
    CHECK(absdiff(now_ns(), mono_ns()) < margin, "after the first calibration: %" PRIu64 " ns apart",
          absdiff(now_ns(), mono_ns()));
    uint64_t prev = now_ns();
    int backwards = 0;
    uint64_t horizons[] = {CAL_FIRST_NS, CAL_FIRST_NS * 10, CAL_MAX_NS};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            sleep_ms(3);
            for (int j = 0; j < 1000; j++) {
                uint64_t n = now_ns();
                if (n < prev) backwards++;
                prev = n;
            }
        }
        clock_recalibrate(horizons[round]);
        uint64_t n = now_ns();
        if (n < prev) backwards++;
        prev = n;
    }
    CHECK(!backwards, "now_ns stepped back %d times across recalibrations", backwards);
    sleep_ms(20);
    uint64_t m0 = mono_ns(), n = now_ns(), m1 = mono_ns();
    uint64_t m = m0 / 2 + m1 / 2;
    CHECK(absdiff(n, m) < margin, "after recalibrating: %" PRIu64 " ns from clock_gettime", absdiff(n, m));
    const clock_params *p = clock_now_params();
    CHECK(p && p->mult > 0, "parameters published");
}

int main(void) {
    const char *seed = getenv("SEED");
    rng_state = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL) * 2654435761u + 1;
    if (!rng_state) rng_state = 1;
    printf("core_test: seed %" PRIu64 " (SEED=… to repeat)\n", rng_state);
    test_crc();
    test_varint();
    test_clock_conversion();
    test_clock_calibration();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
