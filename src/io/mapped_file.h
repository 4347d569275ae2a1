/* Read-only views of whole files (mmap, 64-bit sizes) or of caller buffers,
 * and a bounds-checked little-endian cursor that every format parser uses:
 * each read checks the bytes it needs against what is left, so hostile sizes
 * and offsets become FB_ERR_FORMAT with "NAME: offset N: ..." messages,
 * never out-of-bounds reads or allocations sized by untrusted fields. */
#ifndef FB_IO_MAPPED_FILE_H
#define FB_IO_MAPPED_FILE_H
#include "flashblock.h"
#include "core/half.h"
#include <stddef.h>
#include <stdint.h>

typedef struct fb_mapped_file {
    const uint8_t *data;   /* NULL when size == 0 */
    uint64_t size;
    char *name;            /* path (or caller's label) for error messages; owned */
    void *map_base;        /* non-NULL: munmap(map_base, map_len) on close */
    size_t map_len;
} fb_mapped_file;

/* Maps the whole file read-only (MAP_PRIVATE). Empty files give data=NULL,
 * size=0. FB_ERR_IO when it cannot be opened/stat'ed/mapped. */
fb_status fb_mapped_file_open(fb_mapped_file *mf, const char *path);
/* Wraps a caller-owned buffer (not copied; must outlive the view). name is
 * used in messages ("<memory>" when NULL). */
fb_status fb_mapped_file_from_buffer(fb_mapped_file *mf, const void *data, uint64_t size, const char *name);
/* The caller has read [p, p+n) for the last time: drop those pages of a
 * mapped file from memory (madvise DONTNEED; reading them again would fault
 * them back in from the file). Loaders call it after converting each tensor,
 * so a model's peak memory is its converted weights, not weights + file.
 * Only pages wholly inside the range go; a no-op for caller buffers. */
void fb_mapped_file_done_with(const fb_mapped_file *mf, const void *p, uint64_t n);
/* Unmaps and frees; safe on a zeroed or already-closed struct. */
void fb_mapped_file_close(fb_mapped_file *mf);

/* ---- overflow-safe arithmetic (return 1 on overflow) --------------------- */
static inline int fb_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline int fb_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_add_overflow(a, b, out);
}
/* Round up to a power-of-two alignment; 1 on overflow. */
static inline int fb_align_up_u64(uint64_t x, uint64_t align, uint64_t *out) {
    uint64_t t;
    if (__builtin_add_overflow(x, align - 1, &t)) return 1;
    *out = t & ~(align - 1);
    return 0;
}

/* ---- little-endian cursor ------------------------------------------------ */
typedef struct fb_reader {
    const uint8_t *data;
    uint64_t size;
    uint64_t pos;
    const char *name;   /* for messages; not owned */
} fb_reader;

void     fb_reader_init(fb_reader *r, const uint8_t *data, uint64_t size, const char *name);
uint64_t fb_reader_remaining(const fb_reader *r);
/* Each fails with FB_ERR_FORMAT "NAME: offset P: truncated reading WHAT (need N bytes, M left)";
 * `what` names the field for the message (may be NULL). The cursor does not
 * move on failure. */
fb_status fb_reader_u8 (fb_reader *r, uint8_t  *out, const char *what);
fb_status fb_reader_u16(fb_reader *r, uint16_t *out, const char *what);
fb_status fb_reader_u32(fb_reader *r, uint32_t *out, const char *what);
fb_status fb_reader_i32(fb_reader *r, int32_t  *out, const char *what);
fb_status fb_reader_u64(fb_reader *r, uint64_t *out, const char *what);
fb_status fb_reader_f32(fb_reader *r, float    *out, const char *what);
fb_status fb_reader_f64(fb_reader *r, double   *out, const char *what);
/* n bytes in place (pointer into the buffer). */
fb_status fb_reader_bytes(fb_reader *r, uint64_t n, const uint8_t **out, const char *what);
fb_status fb_reader_skip(fb_reader *r, uint64_t n, const char *what);
/* Absolute position; pos == size is allowed. */
fb_status fb_reader_seek(fb_reader *r, uint64_t pos, const char *what);
/* u64 length + bytes (GGUF string), not NUL-terminated; the length must be
 * <= max_len and fit in what is left. */
fb_status fb_reader_string_u64(fb_reader *r, uint64_t max_len, const char **s, uint64_t *len, const char *what);

/* Little-endian loads/stores (fb_load_u16le, fb_store_u32le, ...) are in
 * core/half.h, included here for every parser. */
#endif
