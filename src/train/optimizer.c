#include "train/optimizer.h"
#include "core/error.h"
#include "core/runtime.h"
#include "model/model.h"
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

fb_adamw_config fb_adamw_defaults(void) {
    fb_adamw_config c = {3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 0};
    return c;
}

fb_status fb_adamw_init(fb_adamw *opt, const fb_model *m, const fb_adamw_config *cfg) {
    if (!opt || !m || !cfg) return fb_fail(FB_ERR_INVALID_ARG, "adamw: NULL argument");
    if (!fb_model_grads((fb_model *)m)) return fb_fail(FB_ERR_INVALID_ARG, "adamw: the model has no gradients (loaded for inference)");
    if (!(cfg->lr >= 0) || !isfinite(cfg->lr)) return fb_fail(FB_ERR_INVALID_ARG, "lr: must be a finite number >= 0");
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1)) return fb_fail(FB_ERR_INVALID_ARG, "beta1: must be in [0, 1)");
    if (!(cfg->beta2 >= 0 && cfg->beta2 < 1)) return fb_fail(FB_ERR_INVALID_ARG, "beta2: must be in [0, 1)");
    if (!(cfg->eps > 0)) return fb_fail(FB_ERR_INVALID_ARG, "eps: must be > 0");
    if (!(cfg->weight_decay >= 0) || !isfinite(cfg->weight_decay))
        return fb_fail(FB_ERR_INVALID_ARG, "weight_decay: must be a finite number >= 0");
    memset(opt, 0, sizeof *opt);
    opt->cfg = *cfg;
    opt->n = m->n_floats;
    opt->m = fb_aligned_alloc(2 * opt->n * sizeof(float));
    if (!opt->m) return fb_fail(FB_ERR_OOM, "adamw: cannot allocate optimizer state (%zu floats)", 2 * opt->n);
    memset(opt->m, 0, 2 * opt->n * sizeof(float));
    opt->v = opt->m + opt->n;
    return FB_OK;
}

void fb_adamw_free(fb_adamw *opt) {
    if (!opt) return;
    free(opt->m);
    opt->m = opt->v = NULL;
}

fb_status fb_adamw_step(fb_adamw *opt, fb_model *m, float lr) { return fb_adamw_step_scaled(opt, m, lr, 1.0f); }

/* One FB_OP_ADAMW per tensor (its weight decay is per tensor). */
fb_status fb_adamw_step_scaled(fb_adamw *opt, fb_model *m, float lr, float gs) {
    opt->step++;
    const float b1 = opt->cfg.beta1, b2 = opt->cfg.beta2;
    const float bc1 = 1.0f - powf(b1, (float)opt->step), bc2 = 1.0f - powf(b2, (float)opt->step);
    for (int i = 0; i < m->n_tensors; i++) {
        const fb_model_tensor_info *t = &m->tensors[i];
        const float wd = (t->decay || opt->cfg.decay_all) ? opt->cfg.weight_decay : 0.0f;
        const int64_t n = (int64_t)t->numel;
        fb_op_args a = {
            .in = {fb_src_f32(m->grads + t->offset, 1, n, n)},
            .out = {fb_dst_f32(m->params + t->offset, 1, n, n), fb_dst_f32(opt->m + t->offset, 1, n, n),
                    fb_dst_f32(opt->v + t->offset, 1, n, n)},
            .d = {n},
            .f = {1.0f - lr * wd, gs, b1, b2, opt->cfg.eps, 1.0f / sqrtf(bc2), lr / bc1},
        };
        FB_TRY(fb_op_run(FB_OP_ADAMW, &a));
    }
    return FB_OK;
}

/* Blocks of fixed size summed in double in parallel, then added in block
 * order: the same result for any thread count. */
#define NORM_BLOCK 65536
double fb_grad_norm(fb_model *m) {
    const float *g = m->grads;
    const int64_t n = (int64_t)m->n_floats, nb = (n + NORM_BLOCK - 1) / NORM_BLOCK;
    double *part = malloc(sizeof(double) * (size_t)(nb > 0 ? nb : 1));
    if (!part) return NAN;
    #pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t k0 = b * NORM_BLOCK, k1 = k0 + NORM_BLOCK < n ? k0 + NORM_BLOCK : n;
        double s = 0;
        for (int64_t k = k0; k < k1; k++) s += (double)g[k] * g[k];
        part[b] = s;
    }
    double ss = 0;   /* padding between tensors is zero in the gradient buffer */
    for (int64_t b = 0; b < nb; b++) ss += part[b];
    free(part);
    return sqrt(ss);
}

float fb_clip_coef(double norm, double max_norm) {
    if (!(max_norm > 0) || !isfinite(norm)) return 1.0f;
    double coef = max_norm / (norm + 1e-6);
    return coef < 1.0 ? (float)coef : 1.0f;
}

double fb_clip_grad_norm(fb_model *m, double max_norm) {
    double norm = fb_grad_norm(m);
    if (max_norm > 0 && isfinite(norm)) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float *g = m->grads;
            const int64_t n = (int64_t)m->n_floats;
            #pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < n; k++) g[k] = (float)(g[k] * coef);
        }
    }
    return norm;
}

float fb_lr_schedule(long step, long warmup, long total, float max_lr, float min_lr) {
    if (warmup > 0 && step < warmup) return max_lr * (float)(step + 1) / (float)warmup;
    if (step >= total) return min_lr;
    double progress = (double)(step - warmup) / (double)(total - warmup > 0 ? total - warmup : 1);
    return min_lr + 0.5f * (max_lr - min_lr) * (float)(1.0 + cos(M_PI * progress));
}

fb_status fb_adamw_update_range(const fb_adamw *opt, fb_model *m, float lr, float gs, size_t begin, size_t end,
                                float *m1, float *m2) {
    const float b1 = opt->cfg.beta1, b2 = opt->cfg.beta2;
    const float bc1 = 1.0f - powf(b1, (float)opt->step), bc2 = 1.0f - powf(b2, (float)opt->step);
    for (int i = 0; i < m->n_tensors; i++) {
        const fb_model_tensor_info *t = &m->tensors[i];
        const size_t lo = t->offset > begin ? t->offset : begin, hi = t->offset + t->numel < end ? t->offset + t->numel : end;
        if (lo >= hi) continue;
        const float wd = (t->decay || opt->cfg.decay_all) ? opt->cfg.weight_decay : 0.0f;
        const int64_t n = (int64_t)(hi - lo);
        fb_op_args a = {
            .in = {fb_src_f32(m->grads + lo, 1, n, n)},
            .out = {fb_dst_f32(m->params + lo, 1, n, n), fb_dst_f32(m1 + (lo - begin), 1, n, n),
                    fb_dst_f32(m2 + (lo - begin), 1, n, n)},
            .d = {n},
            .f = {1.0f - lr * wd, gs, b1, b2, opt->cfg.eps, 1.0f / sqrtf(bc2), lr / bc1},
        };
        FB_TRY(fb_op_run(FB_OP_ADAMW, &a));
    }
    return FB_OK;
}
