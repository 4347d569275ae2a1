/* Fast RoPE, GELU, SwiGLU and residual add: vectorised, parallel over
 * elements or tokens. */
#include "core/simd.h"
#include "ops/ops.h"
#include "ops/rope.h"
#include <math.h>
#include <stdlib.h>

#define PAR_IF(n) if ((n) > 65536)

fb_status FB_SIMD(rope_forward)(const fb_op_args *a) { return fb_rope_rotate(a, 1.0f); }

fb_status FB_SIMD(gelu_tanh_forward)(const fb_op_args *a) {
    const float *x = fb_in_f32(a, 0);
    float *y = fb_out_f32(a, 0);
    const int64_t N = a->d[0];
    const fvec k0 = fv_set1(0.7978845608028654f), k1 = fv_set1(0.044715f), half = fv_set1(0.5f), one = fv_set1(1.0f);
    #pragma omp parallel for schedule(static) PAR_IF(N)
    for (int64_t i = 0; i < N; i += FV_N) {
        int k = N - i < FV_N ? (int)(N - i) : FV_N;
        fvec v = fv_loadn(x + i, k);
        fvec inner = fv_mul(k0, fv_fma(fv_mul(k1, v), fv_mul(v, v), v));
        fv_storen(y + i, fv_mul(fv_mul(half, v), fv_add(one, fv_tanh(inner))), k);
    }
    return FB_OK;
}

fb_status FB_SIMD(gelu_forward)(const fb_op_args *a) {
    const float *x = fb_in_f32(a, 0);
    float *y = fb_out_f32(a, 0);
    const int64_t N = a->d[0];
    #pragma omp parallel for schedule(static) PAR_IF(N)
    for (int64_t i = 0; i < N; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
    return FB_OK;
}

fb_status FB_SIMD(swiglu_forward)(const fb_op_args *a) {
    const float *h = fb_in_f32(a, 0);
    float *y = fb_out_f32(a, 0);
    const int64_t N = a->d[0], F = a->d[1];
    const fvec one = fv_set1(1.0f);
    #pragma omp parallel for schedule(static) PAR_IF(N * F)
    for (int64_t n = 0; n < N; n++) {
        const float *g = h + n * 2 * F, *u = g + F;
        for (int64_t i = 0; i < F; i += FV_N) {
            int k = F - i < FV_N ? (int)(F - i) : FV_N;
            fvec gv = fv_loadn(g + i, k);
            fvec silu = fv_div(gv, fv_add(one, fv_exp(fv_sub(fv_zero(), gv))));
            fv_storen(y + n * F + i, fv_mul(silu, fv_loadn(u + i, k)), k);
        }
    }
    return FB_OK;
}

fb_status FB_SIMD(residual_forward)(const fb_op_args *a) {
    const float *p = fb_in_f32(a, 0), *q = fb_in_f32(a, 1);
    float *y = fb_out_f32(a, 0);
    const int64_t N = a->d[0];
    #pragma omp parallel for schedule(static) PAR_IF(N)
    for (int64_t i = 0; i < N; i += FV_N) {
        int k = N - i < FV_N ? (int)(N - i) : FV_N;
        fv_storen(y + i, fv_add(fv_loadn(p + i, k), fv_loadn(q + i, k)), k);
    }
    return FB_OK;
}
