// The trace format as the C core writes it (schema/trace-format.md): the one place where its codes
// and the chunk header's layout are spelt out on the C side. Event codes are named EV_ + the spec's
// §4.2 name in UPPER_SNAKE_CASE, one per line (a test compares this list with the spec's table).
#ifndef UNCLOG_TRACE_FORMAT_H
#define UNCLOG_TRACE_FORMAT_H

#include <stdint.h>
#include <string.h>

// File header (§2): magic, version 1.0, reserved.
#define FILE_HEADER_SIZE     16
#define FILE_MAGIC           "\x89UNCLOG\n"
#define FORMAT_VERSION_MAJOR 1
#define FORMAT_VERSION_MINOR 0

// Event types (§4.2).
enum {
    EV_STRING = 0x01,
    EV_FRAME = 0x02,
    EV_NATIVE_FRAME = 0x03,
    EV_STACK = 0x04,
    EV_IMAGE = 0x05,
    EV_THREAD = 0x06,
    EV_GREENTHREAD_CREATE = 0x07,
    EV_GREENTHREAD_EXIT = 0x08,
    EV_RUNNING = 0x09,
    EV_SWITCH_TO_HUB = 0x10,
    EV_SWITCH_TIMER = 0x11,
    EV_SWITCH_IO = 0x12,
    EV_SWITCH_SPAWN = 0x13,
    EV_SWITCH_EXPLICIT = 0x14,
    EV_SWITCH_OTHER = 0x15,
    EV_IO_WAIT_BEGIN = 0x20,
    EV_IO_WAIT_END = 0x21,
    EV_STALL_BEGIN = 0x30,
    EV_STALL_SAMPLE = 0x31,
    EV_STALL_END = 0x32,
    EV_DROPPED = 0x40,
    EV_END = 0x7F,
};

// Chunk kinds (§2.1).
enum {
    CHUNK_KIND_METADATA = 1,
    CHUNK_KIND_EVENTS = 2,
};

// `flags` of Frame and NativeFrame (§4.2).
enum {
    FRAME_FLAG_INTERNAL = 1,        // the runtime's, the hub's or the recorder's (set by the importer here)
    FRAME_FLAG_RETURN_ADDRESS = 2,  // look up address − 1
    FRAME_FLAG_ASYNC_RESUME = 4,    // an async resume point (Swift continuation)
    FRAME_FLAG_LIBRARY = 8,         // library code (set by the importer here)
};

// Metadata value types (§3).
enum { META_UINT = 0, META_STRING = 1, META_STRING_LIST = 2 };

// Dropped's reasons and StallSample's states (§4.2).
enum { DROPPED_BUFFER_FULL = 1 };
enum { SAMPLE_STATE_UNKNOWN = 0, SAMPLE_STATE_RUNNING = 1, SAMPLE_STATE_SYSCALL_BASE = 2 /* + syscall number */ };

// The chunk header (§2.1): 32 bytes before each chunk's payload.
#define CHUNK_HEADER     32
#define CHUNK_SYNC       "\xFF\x55\x43\x4B"
#define CHUNK_CRC_OFFSET 8  // the CRC covers the header from byte 12 on, and the payload
#define CHUNK_CRC_FROM   12

// Fills a chunk header at `h`. The CRC (bytes 8-11) is left for the writer, which computes it last.
static inline void put_chunk_header(uint8_t *h, uint8_t kind, uint32_t payload_len, uint64_t base_ns, uint32_t thread,
                                    uint32_t seq) {
    memcpy(h, CHUNK_SYNC, 4);
    memcpy(h + 4, &payload_len, 4);
    h[12] = kind;
    h[13] = 0;
    h[14] = 0;
    h[15] = 0;  // kind, flags, reserved
    memcpy(h + 16, &base_ns, 8);
    memcpy(h + 24, &thread, 4);
    memcpy(h + 28, &seq, 4);
}

#endif
