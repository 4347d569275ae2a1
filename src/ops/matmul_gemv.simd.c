/*
 * Matmul for a few rows (decode: N = 1 per sequence): y[N,OC] = x·Wᵀ + b.
 * This is memory-bound: every weight is used once per token, so the kernel
 * streams W exactly once and keeps up to 4 rows of x in registers, with
 * 4 output rows × 4 x rows = 16 vector accumulators. Output rows are split
 * across threads in blocks of 16. Larger N goes to BLAS (matmul.c).
 */
#include "core/simd.h"
#include "ops/ops.h"
#include <omp.h>

#define GEMV_MAX_N 8
#define PF_DIST 256   /* floats ahead to prefetch (1 KiB) */


/* n is a compile-time constant at every call (rows4_dispatch): with a
 * runtime n all 16 accumulators stay live, which spills on AVX2's 16
 * registers; with n = 1 (decode) only 4 are. */
static inline __attribute__((always_inline)) void rows4(float *y, const float *x, const float *W, const float *b,
                                                        const int n, int64_t C, int64_t OC, int64_t o) {
    fvec acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = fv_zero();
    const float *w0 = W + o * C, *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
    int64_t c = 0;
    for (; c + FV_N <= C; c += FV_N) {
        if ((c & 15) == 0) {   /* one cache line ahead per row stream, a few lines out */
            fv_prefetch(w0 + c + PF_DIST); fv_prefetch(w1 + c + PF_DIST);
            fv_prefetch(w2 + c + PF_DIST); fv_prefetch(w3 + c + PF_DIST);
        }
        fvec a0 = fv_load(w0 + c), a1 = fv_load(w1 + c), a2 = fv_load(w2 + c), a3 = fv_load(w3 + c);
        for (int j = 0; j < n; j++) {
            fvec xv = fv_load(x + j * C + c);
            acc[0][j] = fv_fma(a0, xv, acc[0][j]);
            acc[1][j] = fv_fma(a1, xv, acc[1][j]);
            acc[2][j] = fv_fma(a2, xv, acc[2][j]);
            acc[3][j] = fv_fma(a3, xv, acc[3][j]);
        }
    }
    if (c < C) {
        int k = (int)(C - c);
        fvec a0 = fv_loadn(w0 + c, k), a1 = fv_loadn(w1 + c, k), a2 = fv_loadn(w2 + c, k), a3 = fv_loadn(w3 + c, k);
        for (int j = 0; j < n; j++) {
            fvec xv = fv_loadn(x + j * C + c, k);
            acc[0][j] = fv_fma(a0, xv, acc[0][j]);
            acc[1][j] = fv_fma(a1, xv, acc[1][j]);
            acc[2][j] = fv_fma(a2, xv, acc[2][j]);
            acc[3][j] = fv_fma(a3, xv, acc[3][j]);
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < n; j++) y[j * OC + o + i] = fv_hsum(acc[i][j]) + (b ? b[o + i] : 0.0f);
}

static void rows4_dispatch(float *y, const float *x, const float *W, const float *b, int64_t n, int64_t C, int64_t OC,
                           int64_t o) {
    switch (n) {
    case 1: rows4(y, x, W, b, 1, C, OC, o); break;
    case 2: rows4(y, x, W, b, 2, C, OC, o); break;
    case 3: rows4(y, x, W, b, 3, C, OC, o); break;
    default: rows4(y, x, W, b, 4, C, OC, o); break;
    }
}

static inline void row1(float *y, const float *x, const float *W, const float *b, int64_t n, int64_t C, int64_t OC,
                        int64_t o) {
    for (int j = 0; j < n; j++) {
        fvec acc = fv_zero();
        int64_t c = 0;
        for (; c + FV_N <= C; c += FV_N) acc = fv_fma(fv_load(W + o * C + c), fv_load(x + j * C + c), acc);
        if (c < C) acc = fv_fma(fv_loadn(W + o * C + c, (int)(C - c)), fv_loadn(x + j * C + c, (int)(C - c)), acc);
        y[j * OC + o] = fv_hsum(acc) + (b ? b[o] : 0.0f);
    }
}


fb_status FB_SIMD(matmul_forward_gemv)(const fb_op_args *a) {
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    if (N > GEMV_MAX_N) return matmul_forward_blas(a);
    const float *x = fb_in_f32(a, 0), *W = fb_in_f32(a, 1), *b = fb_in_f32(a, 2);
    float *y = fb_out_f32(a, 0);
    const int64_t blocks = (OC + 15) / 16;
    const int par = N * C * OC > (1 << 15);
    #pragma omp parallel for schedule(static) if (par)
    for (int64_t blk = 0; blk < blocks; blk++) {
        const int64_t o0 = blk * 16, o1 = o0 + 16 < OC ? o0 + 16 : OC;
        for (int64_t j0 = 0; j0 < N; j0 += 4) {
            const int64_t n = N - j0 < 4 ? N - j0 : 4;
            int64_t o = o0;
            for (; o + 4 <= o1; o += 4) rows4_dispatch(y + j0 * OC, x + j0 * C, W, b, n, C, OC, o);
            for (; o < o1; o++) row1(y + j0 * OC, x + j0 * C, W, b, n, C, OC, o);
        }
    }
    return FB_OK;
}
