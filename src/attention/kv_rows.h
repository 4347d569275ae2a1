/*
 * Where an attention op finds its keys and values (FB_OP_ATTENTION_FWD and
 * FB_OP_ATTENTION_DECODE, see ops.h):
 *   contiguous  (table NULL)  token j of batch b at  base + (b·Tk + j)·stride
 *   paged       (block table) token j of batch b at  base + (table[b·tstride + j/bs]·bs + j%bs)·stride
 * The paged form is the KV cache's (src/infer/kv_cache.h): fixed-size blocks
 * of bs tokens anywhere in a pool, listed in order by the sequence's table.
 *
 * Kernels never compute those addresses per key: they ask for the row
 * pointers of a whole tile at once (fb_kv_rows_tile), which walks the table
 * without a division per row, and then read rows through the pointers. The
 * arithmetic is the same for both layouts, so results are bitwise equal.
 */
#ifndef FB_ATTENTION_KV_ROWS_H
#define FB_ATTENTION_KV_ROWS_H
#include "ops/ops.h"
#include <stdint.h>

typedef struct fb_kv_rows {
    const float *k, *v;
    const int32_t *table;       /* NULL: contiguous */
    int64_t bs, tstride;        /* block size, table entries per batch */
    int64_t Tk, stride;         /* keys per batch, floats between tokens */
} fb_kv_rows;

static inline fb_kv_rows fb_kv_rows_of(const fb_op_args *a) {
    fb_kv_rows L = {fb_in_f32(a, 1), fb_in_f32(a, 2), fb_in_i32(a, 3), a->d[10], a->d[11], a->d[2], a->d[8]};
    if (L.bs <= 0) L.table = NULL;
    return L;
}

/* kr[i], vr[i] = rows of keys j0+i (i < n) of batch b, offset by off floats
 * (the KV head's columns). */
static inline void fb_kv_rows_tile(const fb_kv_rows *L, int64_t b, int64_t off, int64_t j0, int n,
                                   const float **kr, const float **vr) {
    if (!L->table) {
        const int64_t base = (b * L->Tk + j0) * L->stride + off;
        for (int i = 0; i < n; i++) {
            kr[i] = L->k + base + i * L->stride;
            vr[i] = L->v + base + i * L->stride;
        }
        return;
    }
    const int32_t *t = L->table + b * L->tstride;
    int64_t blk = j0 / L->bs, in = j0 % L->bs;
    for (int i = 0; i < n; i++) {
        const int64_t at = ((int64_t)t[blk] * L->bs + in) * L->stride + off;
        kr[i] = L->k + at;
        vr[i] = L->v + at;
        if (++in == L->bs) { in = 0; blk++; }
    }
}

/* One row (for the reference kernels). */
static inline int64_t fb_kv_row_offset(const fb_kv_rows *L, int64_t b, int64_t j) {
    if (!L->table) return (b * L->Tk + j) * L->stride;
    return ((int64_t)L->table[b * L->tstride + j / L->bs] * L->bs + j % L->bs) * L->stride;
}
#endif
