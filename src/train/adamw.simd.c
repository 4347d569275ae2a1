/* The AdamW element update as an op (FB_OP_ADAMW, slots in ops/ops.h),
 * vectorised and compiled per ISA like the other kernels; the table picks
 * the variant. Same arithmetic, in the same order, as the scalar reference
 * (adamw.c) and as torch.optim.AdamW: decay first, then the bias-corrected
 * Adam step. Fixed chunks over threads: every element is updated by the same
 * code whatever the thread count. */
#include "core/simd.h"
#include "ops/ops.h"

#define CHUNK 16384

static void update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
                   const float *f) {
    const fvec decay = fv_set1(f[0]), gs = fv_set1(f[1]), b1 = fv_set1(f[2]), b2 = fv_set1(f[3]);
    const fvec nb1 = fv_set1(1.0f - f[2]), nb2 = fv_set1(1.0f - f[3]), inv_bc2 = fv_set1(f[5]);
    const fvec eps = fv_set1(f[4]), step = fv_set1(f[6]);
    for (int64_t k = 0; k < n; k += FV_N) {
        const int w = n - k < FV_N ? (int)(n - k) : FV_N;
        fvec gk = fv_mul(fv_loadn(g + k, w), gs);
        fvec pk = fv_mul(fv_loadn(p + k, w), decay);
        fvec mk = fv_fma(b1, fv_loadn(m + k, w), fv_mul(nb1, gk));
        fvec vk = fv_fma(b2, fv_loadn(v + k, w), fv_mul(nb2, fv_mul(gk, gk)));
        fvec denom = fv_add(fv_mul(fv_sqrt(vk), inv_bc2), eps);
        pk = fv_sub(pk, fv_div(fv_mul(step, mk), denom));
        fv_storen(p + k, pk, w);
        fv_storen(m + k, mk, w);
        fv_storen(v + k, vk, w);
    }
}

fb_status FB_SIMD(adamw_update)(const fb_op_args *a) {
    const float *g = fb_in_f32(a, 0);
    float *p = fb_out_f32(a, 0), *m = fb_out_f32(a, 1), *v = fb_out_f32(a, 2);
    const int64_t n = a->d[0];
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t k0 = 0; k0 < n; k0 += CHUNK)
        update(p + k0, g + k0, m + k0, v + k0, n - k0 < CHUNK ? n - k0 : CHUNK, a->f);
    return FB_OK;
}
