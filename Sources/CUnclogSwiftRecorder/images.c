// Loaded images (executables and libraries), for offline symbolization: each one's path, load
// bias, executable range and GNU build-id, written as `Image` events at start and whenever the
// watchdog sees new libraries; find_image serves the stack walk (sampler.c).
#include "recorder_internal.h"

#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <unistd.h>

#define MAX_IMAGES 1024
static image images[MAX_IMAGES];
static int n_images;
static unsigned long long images_adds = 0;

const image *find_image(uintptr_t a) {
    for (int i = 0; i < n_images; i++)
        if (a >= images[i].start && a < images[i].end) return &images[i];
    return NULL;
}

typedef struct {
    tbuf *out;
    int changed;
} phdr_ctx;
static void emit_image(tbuf *b, image *im, const uint8_t *build_id, size_t build_id_len);

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data) {
    phdr_ctx *ctx = data;
    (void)size;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    const uint8_t *bid = NULL;
    size_t bid_len = 0;
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
                    bid = desc;
                    bid_len = nh->n_descsz > 64 ? 64 : nh->n_descsz;
                    break;
                }
                p = desc + ((nh->n_descsz + 3) & ~3u);
            }
        }
    }
    if (hi == 0) return 0;
    for (int i = 0; i < n_images; i++)
        if (images[i].start == lo && images[i].end == hi) return 0;  // known
    if (n_images >= MAX_IMAGES) return 0;
    image *im = &images[n_images++];
    im->id = next_id++;
    im->bias = info->dlpi_addr;
    im->start = lo;
    im->end = hi;
    const char *name = info->dlpi_name;
    char exe[256];
    if (!name || !*name) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        name = exe;
    }
    snprintf(im->path, sizeof im->path, "%s", name);
    im->concurrency = strstr(im->path, "libswift_Concurrency.so") != NULL;
    im->libc_like = strstr(im->path, "/libc.so") || strstr(im->path, "/libm.so") || strstr(im->path, "ld-linux") ||
                    strstr(im->path, "/libpthread") || strstr(im->path, "linux-vdso");
    emit_image(ctx->out, im, bid, bid_len);
    ctx->changed = 1;
    return 0;
}

static int adds_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    *(unsigned long long *)data = info->dlpi_adds;
    return 1;
}

void refresh_images(tbuf *out, int force) {
    unsigned long long adds = 0;
    dl_iterate_phdr(adds_cb, &adds);
    if (!force && adds == images_adds) return;
    images_adds = adds;
    phdr_ctx ctx = {out, 0};
    dl_iterate_phdr(phdr_cb, &ctx);
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
    if (bid_len) {
        memcpy(p, bid, bid_len);
        p += bid_len;
    }
    b->used = (uint32_t)(p - b->data);
    b->events++;
    buf_exit(b);
}
