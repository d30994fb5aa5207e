// Ids and the events that define them, written to a buffer by the watchdog (and by loop threads
// into their own): strings, native frames and stacks interned to ids (frame address → id, stack →
// id, so a stall's repeated samples cost a few bytes each), and small fixed-size events.
#include "recorder_internal.h"

uint32_t next_id = 1;  // string/frame/stack/image ids (one counter)

void emit_string(tbuf *b, uint32_t id, const char *s, size_t n) {
    if (n > 4096) n = 4096;
    uint64_t t = now_ns();
    buf_enter(b);
    if (b->used + n + 32 > CHUNK_CAP - CHUNK_SLACK) seal_chunk(b);
    uint8_t *p = begin_event(b, t);
    *p++ = EV_STRING;
    p = put_dt(b, p, t);
    p = put_uvarint(p, id);
    p = put_uvarint(p, n);
    memcpy(p, s, n);
    p += n;
    b->used = (uint32_t)(p - b->data);
    b->events++;
    buf_exit(b);
}

// Small fixed-size event: up to 6 varint fields.
void emit_simple(tbuf *b, uint8_t type, uint64_t t, int n, const uint64_t *f) {
    buf_enter(b);
    uint8_t *p = begin_event(b, t);
    *p++ = type;
    p = put_dt(b, p, t);
    for (int i = 0; i < n; i++) p = put_uvarint(p, f[i]);
    b->used = (uint32_t)(p - b->data);
    b->events++;
    buf_exit(b);
}

// Frames and stacks (watchdog only): addresses and stacks interned to ids.

#define FRAME_SLOTS 65536
static uintptr_t frame_addr[FRAME_SLOTS];
static uint32_t frame_id[FRAME_SLOTS];
#define STACK_SLOTS 16384
static uint64_t stack_hash[STACK_SLOTS];
static uint32_t stack_id[STACK_SLOTS];

uint32_t intern_frame(tbuf *out, uintptr_t addr, uint32_t flags) {
    uintptr_t key = addr ^ ((uintptr_t)flags << 62);
    uint32_t h = (uint32_t)((key >> 2) * 2654435761u) & (FRAME_SLOTS - 1);
    for (int i = 0; i < 64; i++, h = (h + 1) & (FRAME_SLOTS - 1)) {
        if (frame_id[h] && frame_addr[h] == key) return frame_id[h];
        if (!frame_id[h]) {
            const image *im = find_image(addr);
            uint32_t id = next_id++;
            frame_addr[h] = key;
            frame_id[h] = id;
            uint64_t f[4] = {id, flags, im ? im->id : 0, addr};
            emit_simple(out, EV_NATIVE_FRAME, now_ns(), 4, f);
            return id;
        }
    }
    return 0;
}

uint32_t intern_stack(tbuf *out, const uint32_t *frames, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        h ^= frames[i];
        h *= 1099511628211ull;
    }
    h ^= (uint64_t)n;
    if (h == 0) h = 1;
    uint32_t s = (uint32_t)h & (STACK_SLOTS - 1);
    for (int i = 0; i < 64; i++, s = (s + 1) & (STACK_SLOTS - 1)) {
        if (stack_id[s] && stack_hash[s] == h) return stack_id[s];
        if (!stack_id[s]) break;
    }
    uint32_t id = next_id++;
    if (!stack_id[s]) {
        stack_hash[s] = h;
        stack_id[s] = id;
    }
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
