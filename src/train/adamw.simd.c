/* The AdamW element update, vectorised (compiled per ISA like the op
 * kernels; optimizer.c picks the variant for the CPU). Same arithmetic, in
 * the same order, as the scalar reference in optimizer.c and as
 * torch.optim.AdamW: decay first, then the bias-corrected Adam step. */
#include "core/simd.h"
#include "train/adamw_kernel.h"

void FB_SIMD(fb_adamw_update)(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
                              const fb_adamw_coefs *c) {
    const fvec decay = fv_set1(c->decay), gs = fv_set1(c->grad_scale), b1 = fv_set1(c->beta1), b2 = fv_set1(c->beta2);
    const fvec nb1 = fv_set1(1.0f - c->beta1), nb2 = fv_set1(1.0f - c->beta2), inv_bc2 = fv_set1(c->inv_sqrt_bc2);
    const fvec eps = fv_set1(c->eps), step = fv_set1(c->step_size);
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
