// The writer (watchdog thread, and the stopping thread): the file header and the metadata chunk at
// start, then the queued chunks (sealed by buffers.c), each CRC'd and written whole.
#include "recorder_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static void write_all(const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(R.fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void write_pending(void) {
    pthread_mutex_lock(&R.pend_lock);
    pending *list = R.pend_head;
    R.pend_head = R.pend_tail = NULL;
    R.pend_count = 0;
    pthread_mutex_unlock(&R.pend_lock);
    while (list) {
        pending *p = list;
        list = p->next;
        uint32_t crc = crc32_buf(p->data + CHUNK_CRC_FROM, p->size - CHUNK_CRC_FROM);
        memcpy(p->data + CHUNK_CRC_OFFSET, &crc, 4);
        if (R.fd >= 0) write_all(p->data, p->size);
        R.chunks_written++;
        free(p->data);
        free(p);
    }
}

// A metadata value of type list: the type, the count, then each string (short, ours: no limit check).
static uint8_t *put_string_list(uint8_t *p, const char *const *items, size_t n) {
    *p++ = META_STRING_LIST;
    p = put_uvarint(p, (uint64_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(items[i]);
        p = put_uvarint(p, l);
        memcpy(p, items[i], l);
        p += l;
    }
    return p;
}

void write_header_and_metadata(void) {
    uint8_t header[FILE_HEADER_SIZE] = {0};  // magic, version major and minor (u16), reserved
    memcpy(header, FILE_MAGIC, 8);
    header[8] = FORMAT_VERSION_MAJOR;
    header[10] = FORMAT_VERSION_MINOR;
    write_all(header, FILE_HEADER_SIZE);
    uint8_t *buf = malloc(CHUNK_CAP);
    if (!buf) return;
    uint8_t *p = buf + CHUNK_HEADER;
    int count = 0;
    uint8_t *countp = p;  // filled at the end (< 128 entries: one byte)
    p++;
#define KEY(k)                                                                                                                   \
    do {                                                                                                                         \
        size_t _n = strlen(k);                                                                                                   \
        p = put_uvarint(p, _n);                                                                                                  \
        memcpy(p, k, _n);                                                                                                        \
        p += _n;                                                                                                                 \
        count++;                                                                                                                 \
    } while (0)
#define STR(s)                                                                                                                   \
    do {                                                                                                                         \
        size_t _n = strlen(s);                                                                                                   \
        if (_n > 4096) _n = 4096;                                                                                                \
        *p++ = META_STRING;                                                                                                      \
        p = put_uvarint(p, _n);                                                                                                  \
        memcpy(p, s, _n);                                                                                                        \
        p += _n;                                                                                                                 \
    } while (0)
#define UINT(v)                                                                                                                  \
    do {                                                                                                                         \
        *p++ = META_UINT;                                                                                                        \
        p = put_uvarint(p, (v));                                                                                                 \
    } while (0)
    struct timespec mono, wall;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t anchor = (uint64_t)mono.tv_sec * 1000000000ull + (uint64_t)mono.tv_nsec;
    KEY("clock");
    STR("CLOCK_MONOTONIC");
    KEY("anchor_mono_ns");
    UINT(anchor);
    KEY("anchor_wall_ns");
    UINT((uint64_t)wall.tv_sec * 1000000000ull + (uint64_t)wall.tv_nsec);
    KEY("pid");
    UINT((uint64_t)getpid());
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    KEY("hostname");
    STR(host);
    KEY("runtime");
    STR("swift-concurrency");
    KEY("recorder");
    STR(R.cfg.recorder_name ? R.cfg.recorder_name : "unclog-swift " UNCLOG_VERSION);
    KEY("threshold_ns");
    UINT(R.cfg.threshold_ns);
    KEY("sample_interval_ns");
    UINT(R.cfg.sample_interval_ns);
    // What this recording cannot see, named in the trace (and printed by `unclog record`).
    {
        const char *missing[4];
        int k = 0;
        missing[k++] = "jobs on custom serial executors and task executors";
        if (!interpose_on && !R.cfg.executors) missing[k++] = "main-actor jobs and timer (Task.sleep wake-up) jobs";
        if (!loops_on) missing[k++] = "event-loop threads (epoll_wait is interposed only by the LD_PRELOAD recorder)";
        KEY("not_recorded");
        p = put_string_list(p, missing, (size_t)k);
        KEY("swift_recorder_mode");
        STR(interpose_on ? "interpose" : R.cfg.executors ? "hook+executors" : "hook");
        // Each job's kind (the runtime's JobKind, job flags bits 0-7) follows from its greenthread
        // id (job_gt): say so in the trace, as "LO-HI KIND NAME" (KIND: the JobKind number, "k" =
        // gt & 0xFF, "-" = not a runtime job or any kind), so readers need not know this recorder.
        static const char *const kinds[] = {
            "0x00000001-0xBFFFFFFF 0 task (the greenthread id is the task id's low 32 bits)",
            "0xC0000000-0xCFFFFFFF - event-loop iteration and its hub (not a runtime job)",
            "0xD0000000-0xDFFFFFFF - span (not a runtime job)",
            "0xE0000000-0xFFFFFEFF 192 default-actor drain (DefaultActorInline): one greenthread per actor",
            "0xFFFFFF00-0xFFFFFFEF k runtime job of kind gt & 0xFF (193 DefaultActorSeparate, 194 DefaultActorOverride, 196 "
            "IsolatedDeinit; 195 NullaryContinuation, the hand-off of Task.yield(), is not timed, the task it resumes is ready "
            "from its yield: it appears only when one ran past the threshold)",
            "0xFFFFFFF0-0xFFFFFFF0 - timer job (Task.sleep wake-up), whatever its kind",
            "0xFFFFFFFD-0xFFFFFFFD 0 task job without a task id",
            "0xFFFFFFFE-0xFFFFFFFE 192 default-actor drain (actors beyond the recorder's 8192)",
        };
        size_t nk = sizeof kinds / sizeof kinds[0];
        KEY("swift_job_kinds");
        p = put_string_list(p, kinds, nk);
    }
    // argv from /proc/self/cmdline (NUL-separated)
    char cmd[4096];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, cmd, sizeof cmd - 1) : 0;
    if (fd >= 0) close(fd);
    if (n < 0) n = 0;
    cmd[n] = 0;
    int nargs = 0;
    for (ssize_t i = 0; i < n; i++)
        if (cmd[i] == 0) nargs++;
    KEY("argv");
    *p++ = META_STRING_LIST;
    p = put_uvarint(p, (uint64_t)nargs);
    for (ssize_t i = 0; i < n;) {
        size_t l = strlen(cmd + i);
        p = put_uvarint(p, l);
        memcpy(p, cmd + i, l);
        p += l;
        i += (ssize_t)l + 1;
    }
#undef KEY
#undef STR
#undef UINT
    *countp = (uint8_t)count;
    uint32_t len = (uint32_t)(p - buf - CHUNK_HEADER);
    put_chunk_header(buf, CHUNK_KIND_METADATA, len, anchor, 0, 0);  // thread 0, seq 0 (§3)
    uint32_t crc = crc32_buf(buf + CHUNK_CRC_FROM, CHUNK_HEADER - CHUNK_CRC_FROM + len);
    memcpy(buf + CHUNK_CRC_OFFSET, &crc, 4);
    write_all(buf, CHUNK_HEADER + len);
    R.chunks_written++;
    free(buf);
}
