/* Fast LayerNorm and RMSNorm backward, vectorised.
 *
 * Two phases in one parallel region: rows of dx in parallel (each row is
 * independent), then dw/db as column sums over all N rows, the columns split
 * in fixed blocks so that every output element is summed by one thread in
 * row order: the same bits for any thread count, no atomics. */
#include "core/simd.h"
#include "ops/ops.h"

#define COLS 64   /* columns per dw/db block; a multiple of every FV_N */
#define PAR_IF(n) if ((n) > 32768)

fb_status FB_SIMD(layernorm_backward)(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0), *x = fb_in_f32(a, 1), *w = fb_in_f32(a, 2);
    const float *mean = fb_in_f32(a, 3), *rstd = fb_in_f32(a, 4);
    float *dx = fb_out_f32(a, 0), *dw = fb_out_f32(a, 1), *db = fb_out_f32(a, 2);
    const int64_t N = a->d[0], C = a->d[1];
    const int64_t nblk = (C + COLS - 1) / COLS;
    #pragma omp parallel PAR_IF(N * C)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t n = 0; n < N; n++) {
            const float *dyr = dy + n * C, *xr = x + n * C;
            float *dxr = dx + n * C;
            const fvec vm = fv_set1(mean[n]), vr = fv_set1(rstd[n]);
            fvec sg = fv_zero(), sgx = fv_zero();
            for (int64_t c = 0; c < C; c += FV_N) {
                int k = C - c < FV_N ? (int)(C - c) : FV_N;
                fvec xh = fv_mul(fv_sub(fv_loadn(xr + c, k), vm), vr);
                fvec g = fv_mul(fv_loadn(dyr + c, k), fv_loadn(w + c, k));
                sg = fv_add(sg, g);
                sgx = fv_fma(g, xh, sgx);
            }
            const fvec gm = fv_set1(fv_hsum(sg) / (float)C), gxm = fv_set1(fv_hsum(sgx) / (float)C);
            for (int64_t c = 0; c < C; c += FV_N) {
                int k = C - c < FV_N ? (int)(C - c) : FV_N;
                fvec xh = fv_mul(fv_sub(fv_loadn(xr + c, k), vm), vr);
                fvec g = fv_mul(fv_loadn(dyr + c, k), fv_loadn(w + c, k));
                fvec v = fv_mul(vr, fv_sub(fv_sub(g, gm), fv_mul(xh, gxm)));
                fv_storen(dxr + c, fv_add(fv_loadn(dxr + c, k), v), k);
            }
        }
        #pragma omp for schedule(static)
        for (int64_t blk = 0; blk < nblk; blk++) {
            const int64_t c0 = blk * COLS, c1 = c0 + COLS < C ? c0 + COLS : C;
            float aw[COLS] = {0}, ab[COLS] = {0};
            for (int64_t n = 0; n < N; n++) {
                const fvec vm = fv_set1(mean[n]), vr = fv_set1(rstd[n]);
                for (int64_t c = c0; c < c1; c += FV_N) {
                    int k = c1 - c < FV_N ? (int)(c1 - c) : FV_N;
                    fvec g = fv_loadn(dy + n * C + c, k);
                    fvec xh = fv_mul(fv_sub(fv_loadn(x + n * C + c, k), vm), vr);
                    fv_storen(aw + (c - c0), fv_fma(g, xh, fv_loadn(aw + (c - c0), k)), k);
                    fv_storen(ab + (c - c0), fv_add(g, fv_loadn(ab + (c - c0), k)), k);
                }
            }
            for (int64_t c = c0; c < c1; c++) {
                dw[c] += aw[c - c0];
                if (db) db[c] += ab[c - c0];
            }
        }
    }
    return FB_OK;
}

fb_status FB_SIMD(rmsnorm_backward)(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0), *x = fb_in_f32(a, 1), *w = fb_in_f32(a, 2), *rstd = fb_in_f32(a, 3);
    float *dx = fb_out_f32(a, 0), *dw = fb_out_f32(a, 1);
    const int64_t N = a->d[0], C = a->d[1];
    const int64_t nblk = (C + COLS - 1) / COLS;
    #pragma omp parallel PAR_IF(N * C)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t n = 0; n < N; n++) {
            const float *dyr = dy + n * C, *xr = x + n * C;
            float *dxr = dx + n * C;
            const fvec vr = fv_set1(rstd[n]);
            fvec sgx = fv_zero();
            for (int64_t c = 0; c < C; c += FV_N) {
                int k = C - c < FV_N ? (int)(C - c) : FV_N;
                fvec xh = fv_mul(fv_loadn(xr + c, k), vr);
                sgx = fv_fma(fv_mul(fv_loadn(dyr + c, k), fv_loadn(w + c, k)), xh, sgx);
            }
            const fvec gxm = fv_set1(fv_hsum(sgx) / (float)C);
            for (int64_t c = 0; c < C; c += FV_N) {
                int k = C - c < FV_N ? (int)(C - c) : FV_N;
                fvec xh = fv_mul(fv_loadn(xr + c, k), vr);
                fvec g = fv_mul(fv_loadn(dyr + c, k), fv_loadn(w + c, k));
                fvec v = fv_mul(vr, fv_sub(g, fv_mul(xh, gxm)));
                fv_storen(dxr + c, fv_add(fv_loadn(dxr + c, k), v), k);
            }
        }
        #pragma omp for schedule(static)
        for (int64_t blk = 0; blk < nblk; blk++) {
            const int64_t c0 = blk * COLS, c1 = c0 + COLS < C ? c0 + COLS : C;
            float aw[COLS] = {0};
            for (int64_t n = 0; n < N; n++) {
                const fvec vr = fv_set1(rstd[n]);
                for (int64_t c = c0; c < c1; c += FV_N) {
                    int k = c1 - c < FV_N ? (int)(c1 - c) : FV_N;
                    fvec xh = fv_mul(fv_loadn(x + n * C + c, k), vr);
                    fv_storen(aw + (c - c0), fv_fma(fv_loadn(dy + n * C + c, k), xh, fv_loadn(aw + (c - c0), k)), k);
                }
            }
            for (int64_t c = c0; c < c1; c++) dw[c] += aw[c - c0];
        }
    }
    return FB_OK;
}
