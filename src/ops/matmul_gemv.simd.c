/*
 * Matmul for a few rows (decode: N = 1 per sequence): y[N,OC] = x·Wᵀ + b.
 * This is memory-bound: every weight is used once per token, so the kernel
 * streams W exactly once, front to back, against up to 4 rows of x at a
 * time (row_n). Output rows are split across threads in blocks of 16.
 * Larger N goes to BLAS (matmul.c).
 */
#include "core/simd.h"
#include "ops/ops.h"
#include <omp.h>

#define GEMV_MAX_N 8

/* y[j][o] = x[j]·W[o] + b[o] for the n (<= 4) rows of x, one row of W.
 * W is read once, front to back: consecutive calls walk consecutive rows,
 * so the whole matrix is one sequential stream, which the hardware
 * prefetcher follows (four rows at a time, interleaved, were four short
 * streams and ran about 20% below llama.cpp's f32 decode on Zen 3). x stays
 * in L1. Two accumulators per x row; the order of the sums does not depend
 * on n, so a row's result is the same alone or with others (batch
 * invariance). n is a compile-time constant at every call (row_dispatch). */
static inline __attribute__((always_inline)) void row_n(float *y, const float *x, const float *W, const float *b,
                                                        const int n, int64_t C, int64_t OC, int64_t o) {
    fvec acc0[4], acc1[4];
    for (int j = 0; j < n; j++) acc0[j] = acc1[j] = fv_zero();
    const float *w = W + o * C;
    int64_t c = 0;
    for (; c + 2 * FV_N <= C; c += 2 * FV_N) {
        const fvec w0 = fv_load(w + c), w1 = fv_load(w + c + FV_N);
        for (int j = 0; j < n; j++) {
            acc0[j] = fv_fma(w0, fv_load(x + j * C + c), acc0[j]);
            acc1[j] = fv_fma(w1, fv_load(x + j * C + c + FV_N), acc1[j]);
        }
    }
    if (c + FV_N <= C) {
        const fvec w0 = fv_load(w + c);
        for (int j = 0; j < n; j++) acc0[j] = fv_fma(w0, fv_load(x + j * C + c), acc0[j]);
        c += FV_N;
    }
    if (c < C) {
        const int k = (int)(C - c);
        const fvec w1 = fv_loadn(w + c, k);
        for (int j = 0; j < n; j++) acc1[j] = fv_fma(w1, fv_loadn(x + j * C + c, k), acc1[j]);
    }
    for (int j = 0; j < n; j++) y[j * OC + o] = fv_hsum(fv_add(acc0[j], acc1[j])) + (b ? b[o] : 0.0f);
}

static void rows(float *y, const float *x, const float *W, const float *b, int64_t n, int64_t C, int64_t OC,
                 int64_t o0, int64_t o1) {
    switch (n) {
    case 1: for (int64_t o = o0; o < o1; o++) row_n(y, x, W, b, 1, C, OC, o); break;
    case 2: for (int64_t o = o0; o < o1; o++) row_n(y, x, W, b, 2, C, OC, o); break;
    case 3: for (int64_t o = o0; o < o1; o++) row_n(y, x, W, b, 3, C, OC, o); break;
    default: for (int64_t o = o0; o < o1; o++) row_n(y, x, W, b, 4, C, OC, o); break;
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
        for (int64_t j0 = 0; j0 < N; j0 += 4)
            rows(y + j0 * OC, x + j0 * C, W, b, N - j0 < 4 ? N - j0 : 4, C, OC, o0, o1);
    }
    return FB_OK;
}
