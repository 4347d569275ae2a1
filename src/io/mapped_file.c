#include "io/mapped_file.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "flashblock io assumes a little-endian host (the formats are little-endian and mapped in place)"
#endif

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

fb_status fb_mapped_file_open(fb_mapped_file *mf, const char *path) {
    if (!mf || !path) return fb_fail(FB_ERR_INVALID_ARG, "fb_mapped_file_open: NULL argument");
    memset(mf, 0, sizeof *mf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fb_fail(FB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fb_fail(FB_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fb_fail(FB_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size > (uint64_t)SIZE_MAX) {
        close(fd);
        return fb_fail(FB_ERR_IO, "%s: file of %llu bytes does not fit in the address space", path, (unsigned long long)size);
    }
    mf->name = dup_str(path);
    if (!mf->name) { close(fd); return fb_fail(FB_ERR_OOM, "%s: out of memory", path); }
    if (size > 0) {
        void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(mf->name);
            mf->name = NULL;
            return fb_fail(FB_ERR_IO, "%s: cannot mmap %llu bytes: %s", path, (unsigned long long)size, strerror(e));
        }
        mf->map_base = p;
        mf->map_len = (size_t)size;
        mf->data = p;
    }
    close(fd);
    mf->size = size;
    return FB_OK;
}

fb_status fb_mapped_file_from_buffer(fb_mapped_file *mf, const void *data, uint64_t size, const char *name) {
    if (!mf || (!data && size)) return fb_fail(FB_ERR_INVALID_ARG, "fb_mapped_file_from_buffer: NULL argument");
    memset(mf, 0, sizeof *mf);
    mf->name = dup_str(name ? name : "<memory>");
    if (!mf->name) return fb_fail(FB_ERR_OOM, "out of memory");
    mf->data = size ? data : NULL;
    mf->size = size;
    return FB_OK;
}

void fb_mapped_file_done_with(const fb_mapped_file *mf, const void *p, uint64_t n) {
    if (!mf || !mf->map_base || !p || !n) return;
    const uintptr_t base = (uintptr_t)mf->map_base, end_map = base + mf->map_len;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, b = a + (uintptr_t)n;
    if (a < base || b > end_map || b < a) return;
    a = (a + page - 1) & ~(page - 1);
    b &= ~(page - 1);
    if (b > a) (void)madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);   /* advice only: failure changes nothing */
}

void fb_mapped_file_close(fb_mapped_file *mf) {
    if (!mf) return;
    if (mf->map_base) munmap(mf->map_base, mf->map_len);
    free(mf->name);
    memset(mf, 0, sizeof *mf);
}

/* ---- cursor ---------------------------------------------------------------- */

void fb_reader_init(fb_reader *r, const uint8_t *data, uint64_t size, const char *name) {
    r->data = data;
    r->size = data ? size : 0;
    r->pos = 0;
    r->name = name ? name : "<memory>";
}

uint64_t fb_reader_remaining(const fb_reader *r) { return r->size - r->pos; }

static fb_status need(fb_reader *r, uint64_t n, const char *what) {
    if (n > r->size - r->pos)
        return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: truncated reading %s (need %llu bytes, %llu left)", r->name,
                       (unsigned long long)r->pos, what ? what : "data", (unsigned long long)n,
                       (unsigned long long)(r->size - r->pos));
    return FB_OK;
}

fb_status fb_reader_u8(fb_reader *r, uint8_t *out, const char *what) {
    FB_TRY(need(r, 1, what));
    *out = r->data[r->pos++];
    return FB_OK;
}
fb_status fb_reader_u16(fb_reader *r, uint16_t *out, const char *what) {
    FB_TRY(need(r, 2, what));
    *out = fb_load_u16le(r->data + r->pos);
    r->pos += 2;
    return FB_OK;
}
fb_status fb_reader_u32(fb_reader *r, uint32_t *out, const char *what) {
    FB_TRY(need(r, 4, what));
    *out = fb_load_u32le(r->data + r->pos);
    r->pos += 4;
    return FB_OK;
}
fb_status fb_reader_i32(fb_reader *r, int32_t *out, const char *what) {
    uint32_t u;
    FB_TRY(fb_reader_u32(r, &u, what));
    memcpy(out, &u, 4);
    return FB_OK;
}
fb_status fb_reader_u64(fb_reader *r, uint64_t *out, const char *what) {
    FB_TRY(need(r, 8, what));
    *out = fb_load_u64le(r->data + r->pos);
    r->pos += 8;
    return FB_OK;
}
fb_status fb_reader_f32(fb_reader *r, float *out, const char *what) {
    uint32_t u;
    FB_TRY(fb_reader_u32(r, &u, what));
    memcpy(out, &u, 4);
    return FB_OK;
}
fb_status fb_reader_f64(fb_reader *r, double *out, const char *what) {
    uint64_t u;
    FB_TRY(fb_reader_u64(r, &u, what));
    memcpy(out, &u, 8);
    return FB_OK;
}
fb_status fb_reader_bytes(fb_reader *r, uint64_t n, const uint8_t **out, const char *what) {
    FB_TRY(need(r, n, what));
    *out = r->data ? r->data + r->pos : NULL;
    r->pos += n;
    return FB_OK;
}
fb_status fb_reader_skip(fb_reader *r, uint64_t n, const char *what) {
    FB_TRY(need(r, n, what));
    r->pos += n;
    return FB_OK;
}
fb_status fb_reader_seek(fb_reader *r, uint64_t pos, const char *what) {
    if (pos > r->size)
        return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: %s lies past the end of the file (%llu bytes)", r->name,
                       (unsigned long long)pos, what ? what : "position", (unsigned long long)r->size);
    r->pos = pos;
    return FB_OK;
}
fb_status fb_reader_string_u64(fb_reader *r, uint64_t max_len, const char **s, uint64_t *len, const char *what) {
    uint64_t start = r->pos, n;
    FB_TRY(fb_reader_u64(r, &n, what));
    if (n > max_len) {
        r->pos = start;
        return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: %s has length %llu, more than the limit of %llu", r->name,
                       (unsigned long long)start, what ? what : "string", (unsigned long long)n, (unsigned long long)max_len);
    }
    if (n > r->size - r->pos) {
        r->pos = start;
        return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: %s has length %llu but only %llu bytes follow", r->name,
                       (unsigned long long)start, what ? what : "string", (unsigned long long)n,
                       (unsigned long long)(r->size - start - 8));
    }
    const uint8_t *p = r->data ? r->data + r->pos : NULL;
    r->pos += n;
    *s = (const char *)p;
    *len = n;
    return FB_OK;
}
