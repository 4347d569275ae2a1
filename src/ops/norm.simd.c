/* Fast LayerNorm and RMSNorm, vectorised, rows in parallel. */
#include "core/simd.h"
#include "ops/ops.h"

fb_status FB_SIMD(layernorm_forward)(const fb_op_args *a) {
    const float *x = fb_in_f32(a, 0), *w = fb_in_f32(a, 1), *b = fb_in_f32(a, 2);
    float *y = fb_out_f32(a, 0), *mean = fb_out_f32(a, 1), *rstd = fb_out_f32(a, 2);
    const int64_t N = a->d[0], C = a->d[1];
    const float eps = a->f[0];
    #pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        float *yr = y + n * C;
        /* Two passes over a row that sits in L1: the mean, then the centred
         * sum of squares (no cancellation, unlike E[x²] - E[x]²). */
        fvec s = fv_zero();
        int64_t c = 0;
        for (; c + FV_N <= C; c += FV_N) s = fv_add(s, fv_load(xr + c));
        float st = fv_hsum(s);
        for (; c < C; c++) st += xr[c];
        const float m = st / (float)C;
        const fvec vmean = fv_set1(m);
        fvec ss = fv_zero();
        for (c = 0; c + FV_N <= C; c += FV_N) {
            fvec v = fv_sub(fv_load(xr + c), vmean);
            ss = fv_fma(v, v, ss);
        }
        float sst = fv_hsum(ss);
        for (; c < C; c++) sst += (xr[c] - m) * (xr[c] - m);
        const float r = 1.0f / sqrtf(sst / (float)C + eps);
        const fvec vm = fv_set1(m), vr = fv_set1(r);
        for (c = 0; c < C; c += FV_N) {
            int k = C - c < FV_N ? (int)(C - c) : FV_N;
            fvec v = fv_mul(fv_sub(fv_loadn(xr + c, k), vm), vr);
            v = fv_mul(v, fv_loadn(w + c, k));
            if (b) v = fv_add(v, fv_loadn(b + c, k));
            fv_storen(yr + c, v, k);
        }
        mean[n] = m;
        rstd[n] = r;
    }
    return FB_OK;
}

fb_status FB_SIMD(rmsnorm_forward)(const fb_op_args *a) {
    const float *x = fb_in_f32(a, 0), *w = fb_in_f32(a, 1);
    float *y = fb_out_f32(a, 0), *rstd = fb_out_f32(a, 1);
    const int64_t N = a->d[0], C = a->d[1];
    const float eps = a->f[0];
    #pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        float *yr = y + n * C;
        fvec ss = fv_zero();
        int64_t c = 0;
        for (; c + FV_N <= C; c += FV_N) { fvec v = fv_load(xr + c); ss = fv_fma(v, v, ss); }
        float sst = fv_hsum(ss);
        for (; c < C; c++) sst += xr[c] * xr[c];
        const float r = 1.0f / sqrtf(sst / (float)C + eps);
        const fvec vr = fv_set1(r);
        for (c = 0; c < C; c += FV_N) {
            int k = C - c < FV_N ? (int)(C - c) : FV_N;
            fv_storen(yr + c, fv_mul(fv_mul(fv_loadn(xr + c, k), vr), fv_loadn(w + c, k)), k);
        }
        rstd[n] = r;
    }
    return FB_OK;
}
