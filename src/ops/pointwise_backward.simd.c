/* Fast backward of RoPE, GELU, SwiGLU and the residual add: vectorised,
 * parallel over elements or tokens (every output element is written by one
 * thread, so results do not depend on the thread count). */
#include "core/simd.h"
#include "ops/ops.h"
#include "ops/rope.h"
#include <math.h>
#include <stdlib.h>

#define PAR_IF(n) if ((n) > 65536)

/* Inverse rotation of each interleaved pair; angles in double as in the
 * forward, cos/sin shared by the heads of a token. In place allowed. */
fb_status FB_SIMD(rope_backward)(const fb_op_args *a) { return fb_rope_rotate(a, -1.0f); }

fb_status FB_SIMD(gelu_tanh_backward)(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0), *x = fb_in_f32(a, 1);
    float *dx = fb_out_f32(a, 0);
    const int64_t N = a->d[0];
    const fvec k0 = fv_set1(0.7978845608028654f), k1 = fv_set1(0.044715f), k3 = fv_set1(3.0f * 0.044715f);
    const fvec half = fv_set1(0.5f), one = fv_set1(1.0f);
    #pragma omp parallel for schedule(static) PAR_IF(N)
    for (int64_t i = 0; i < N; i += FV_N) {
        int k = N - i < FV_N ? (int)(N - i) : FV_N;
        fvec v = fv_loadn(x + i, k), v2 = fv_mul(v, v);
        fvec t = fv_tanh(fv_mul(k0, fv_fma(fv_mul(k1, v), v2, v)));
        fvec sech2 = fv_sub(one, fv_mul(t, t));
        fvec dinner = fv_mul(k0, fv_fma(k3, v2, one));
        fvec grad = fv_fma(fv_mul(half, v), fv_mul(sech2, dinner), fv_mul(half, fv_add(one, t)));
        fv_storen(dx + i, fv_mul(fv_loadn(dy + i, k), grad), k);
    }
    return FB_OK;
}

fb_status FB_SIMD(gelu_backward)(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0), *x = fb_in_f32(a, 1);
    float *dx = fb_out_f32(a, 0);
    const int64_t N = a->d[0];
    #pragma omp parallel for schedule(static) PAR_IF(N)
    for (int64_t i = 0; i < N; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        float pdf = expf(-0.5f * v * v) * 0.39894228040143268f;
        dx[i] = dy[i] * (cdf + v * pdf);
    }
    return FB_OK;
}

fb_status FB_SIMD(swiglu_backward)(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0), *h = fb_in_f32(a, 1);
    float *dh = fb_out_f32(a, 0);
    const int64_t N = a->d[0], F = a->d[1];
    const fvec one = fv_set1(1.0f);
    #pragma omp parallel for schedule(static) PAR_IF(N * F)
    for (int64_t n = 0; n < N; n++) {
        const float *g = h + n * 2 * F, *u = g + F, *d = dy + n * F;
        float *dg = dh + n * 2 * F, *du = dg + F;
        for (int64_t i = 0; i < F; i += FV_N) {
            int k = F - i < FV_N ? (int)(F - i) : FV_N;
            fvec gv = fv_loadn(g + i, k), dv = fv_loadn(d + i, k);
            fvec sg = fv_div(one, fv_add(one, fv_exp(fv_sub(fv_zero(), gv))));
            fvec silu = fv_mul(gv, sg);
            fvec dsilu = fv_mul(sg, fv_fma(gv, fv_sub(one, sg), one));
            fv_storen(dg + i, fv_mul(fv_mul(dv, fv_loadn(u + i, k)), dsilu), k);
            fv_storen(du + i, fv_mul(dv, silu), k);
        }
    }
    return FB_OK;
}

fb_status FB_SIMD(residual_backward)(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0);
    float *da = fb_out_f32(a, 0), *db = fb_out_f32(a, 1);
    const int64_t N = a->d[0];
    #pragma omp parallel for schedule(static) PAR_IF(N)
    for (int64_t i = 0; i < N; i += FV_N) {
        int k = N - i < FV_N ? (int)(N - i) : FV_N;
        fvec g = fv_loadn(dy + i, k);
        fv_storen(da + i, fv_add(fv_loadn(da + i, k), g), k);
        fv_storen(db + i, fv_add(fv_loadn(db + i, k), g), k);
    }
    return FB_OK;
}
