/* Fast embedding forward (tokens in parallel) and backward.
 *
 * The backward splits the CHANNELS across threads: a thread owns a block of
 * columns of every row of dwte and dwpe and walks all tokens in order, adding
 * dy into the row of the token's id. Every element is therefore updated by one
 * thread, in token order: no atomics, no races, and the same bits for any
 * thread count and any block width (the additions are per element). */
#include "core/simd.h"
#include "ops/ops.h"

#define COLS 32

fb_status FB_SIMD(embedding_forward)(const fb_op_args *a) {
    const int32_t *ids = fb_in_i32(a, 0);
    const float *wte = fb_in_f32(a, 1), *wpe = fb_in_f32(a, 2);
    float *y = fb_out_f32(a, 0);
    const int64_t B = a->d[0], T = a->d[1], C = a->d[2];
    #pragma omp parallel for schedule(static) if (B * T * C > 65536)
    for (int64_t bt = 0; bt < B * T; bt++) {
        const float *e = wte + (int64_t)ids[bt] * C, *p = wpe ? wpe + (bt % T) * C : NULL;
        float *yr = y + bt * C;
        for (int64_t c = 0; c < C; c += FV_N) {
            int k = C - c < FV_N ? (int)(C - c) : FV_N;
            fvec v = fv_loadn(e + c, k);
            if (p) v = fv_add(v, fv_loadn(p + c, k));
            fv_storen(yr + c, v, k);
        }
    }
    return FB_OK;
}

fb_status FB_SIMD(embedding_backward)(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0);
    const int32_t *ids = fb_in_i32(a, 1);
    float *dwte = fb_out_f32(a, 0), *dwpe = fb_out_f32(a, 1);
    const int64_t B = a->d[0], T = a->d[1], C = a->d[2], BT = B * T;
    const int64_t nblk = (C + COLS - 1) / COLS;
    #pragma omp parallel for schedule(static) if (BT * C > 65536)
    for (int64_t blk = 0; blk < nblk; blk++) {
        const int64_t c0 = blk * COLS, c1 = c0 + COLS < C ? c0 + COLS : C;
        for (int64_t i = 0; i < BT; i++) {
            const float *g = dy + i * C;
            float *e = dwte + (int64_t)ids[i] * C, *p = dwpe ? dwpe + (i % T) * C : NULL;
            for (int64_t c = c0; c < c1; c += FV_N) {
                int k = c1 - c < FV_N ? (int)(c1 - c) : FV_N;
                fvec gv = fv_loadn(g + c, k);
                fv_storen(e + c, fv_add(fv_loadn(e + c, k), gv), k);
                if (p) fv_storen(p + c, fv_add(fv_loadn(p + c, k), gv), k);
            }
        }
    }
    return FB_OK;
}
