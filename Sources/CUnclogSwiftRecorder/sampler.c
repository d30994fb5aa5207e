// Stack capture during a stall (watchdog side). A thread asleep in a system call is never
// signalled (a signal would end its sleep with EINTR): /proc/self/task/TID/syscall gives its stack
// pointer and pc, and its stack is copied with process_vm_readv. A running thread gets a real-time
// signal whose handler copies its registers and the top of its stack, async-signal-safely. The copy
// is walked (frame-pointer chain, return-address scanning, Swift async contexts) and interned.
#include "recorder_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#define COPY_BYTES (64 * 1024)
static struct {
    _Atomic uint32_t target;  // tid the handler should capture
    atomic_int done;
    uintptr_t pc, sp, fp;
    size_t len;
    uint8_t stack[COPY_BYTES];
} sample;

static void sample_handler(int sig, siginfo_t *info, void *ucv) {
    (void)sig;
    (void)info;
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
    if (c[-5] == 0xE8) return 1;                                                      // call rel32
    if (c[-2] == 0xFF && (c[-1] & 0x38) == 0x10 && (c[-1] & 0xC0) == 0xC0) return 1;  // call reg
    if (c[-3] == 0xFF && (c[-2] & 0x38) == 0x10 && (c[-2] & 0xC0) == 0x40) return 1;  // call [reg+d8]
    if (c[-6] == 0xFF && (c[-5] & 0x38) == 0x10 && ((c[-5] & 0xC0) == 0x80 || (c[-5] & 0xC7) == 0x05))
        return 1;                                                                     // [reg+d32], [rip+d32]
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
static int walk(uintptr_t pc, uintptr_t sp, uintptr_t fp, const uint8_t *mem, size_t len, uintptr_t *out, uint32_t *flags,
                int max) {
    int n = 0;
    out[n] = pc;
    flags[n] = 0;
    n++;
    uintptr_t end = sp + (len & ~(size_t)7);
#define WORD(a) (*(const uintptr_t *)(mem + ((a)-sp)))
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
            out[n] = w;
            flags[n] = FRAME_FLAG_RETURN_ADDRESS;
            n++;
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
                struct iovec local = {link, sizeof link}, remote = {(void *)ctx, sizeof link};
                if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof link) break;
                if (!link[1] || !find_image(link[1])) break;
                out[n] = link[1];
                flags[n] = FRAME_FLAG_ASYNC_RESUME;
                n++;
                ctx = link[0];
            }
        }
        out[n] = ret;
        flags[n] = FRAME_FLAG_RETURN_ADDRESS;
        n++;
        if (next <= f || (next & 7)) break;
        uintptr_t gap_end = next + 16 <= end ? next : end;
        for (uintptr_t a = f + 16; a < gap_end && a < f + 16 + 2048 && n < max; a += 8) {
            uintptr_t w = WORD(a);
            if (is_return_address(w)) {
                out[n] = w;
                flags[n] = FRAME_FLAG_RETURN_ADDRESS;
                n++;
            }
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
    unsigned long long v[8];
    int k = 0;
    p = e;
    while (k < 8) {
        unsigned long long x = strtoull(p, &e, 16);
        if (e == p) break;
        v[k++] = x;
        p = e;
    }
    if (nr < 0) {  // "-1 sp pc": blocked, not in a system call
        if (k < 2) return -2;
        *sp = v[0];
        *pc = v[1];
        return -3;
    }
    if (k < 8) return -2;
    *sp = v[6];
    *pc = v[7];
    return nr;
}

static uint8_t sleep_copy[COPY_BYTES];
static int debug_walk;

// Samples the stack of a stalled thread; returns the stack id (0: none) and its state.
uint32_t sample_thread(tbuf *out, tbuf *t, uint64_t *state) {
    uintptr_t sp = 0, pc = 0, fp = 0;
    long nr = probe_syscall(t->tid, &sp, &pc);
    const uint8_t *mem = NULL;
    size_t len = 0;
    if (nr >= 0) {
        *state = SAMPLE_STATE_SYSCALL_BASE + (uint64_t)nr;
        if (sp < t->stack_lo || sp >= t->stack_hi) return 0;
        len = t->stack_hi - sp;
        if (len > COPY_BYTES) len = COPY_BYTES;
        struct iovec local = {sleep_copy, len}, remote = {(void *)sp, len};
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
        *state = SAMPLE_STATE_RUNNING;
        atomic_store(&sample.done, 0);
        atomic_store(&sample.target, t->tid);
        // The program may have taken the signal for itself since: then never send it again.
        struct sigaction cur;
        if (sigaction(R.sample_signal, NULL, &cur) != 0 || !(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != sample_handler) {
            R.sample_signal = 0;
            atomic_store(&sample.target, 0);
            *state = SAMPLE_STATE_RUNNING;
            return 0;
        }
        if (pthread_kill(t->thread, R.sample_signal) != 0) {
            atomic_store(&sample.target, 0);
            return 0;
        }
        uint64_t deadline = now_ns() + SAMPLE_SIGNAL_WAIT_NS;
        while (!atomic_load(&sample.done) && now_ns() < deadline) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
        atomic_store(&sample.target, 0);
        if (!atomic_load(&sample.done)) return 0;
        pc = sample.pc;
        sp = sample.sp;
        fp = sample.fp;
        mem = sample.stack;
        len = sample.len;
    } else {
        *state = SAMPLE_STATE_UNKNOWN;
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

void sampler_start(void) {
    debug_walk = getenv("UNCLOG_DEBUG_WALK") != NULL;
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
}
