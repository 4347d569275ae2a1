/* The training loop (see trainer.h for the order of one step and how the
 * data is shared between ranks). */
#include "train/trainer.h"
#include "core/error.h"
#include "core/runtime.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fb_trainer {
    fb_trainer_config cfg;
    fb_model *m;
    fb_adamw opt;
    fb_train_state st;
    fb_rng rng;
    fb_trainer_hooks hooks;
    const fb_data_split *data;
    int micro;              /* windows per micro-batch on this rank */
    size_t *starts;         /* [batch] window starts of the current step */
    int32_t *ids, *tgt;     /* [micro, T] */
};

static fb_status check_config(const fb_trainer_config *c) {
    if (!c) return fb_fail(FB_ERR_INVALID_ARG, "trainer: NULL config");
    if (c->world < 1 || c->rank < 0 || c->rank >= c->world)
        return fb_fail(FB_ERR_INVALID_ARG, "trainer: rank %d of %d ranks", c->rank, c->world);
    if (c->batch <= 0 || c->accum <= 0 || c->batch % (c->world * c->accum))
        return fb_fail(FB_ERR_INVALID_ARG, "trainer: batch %d must be a positive multiple of ranks x accum = %d x %d", c->batch,
                       c->world, c->accum);
    if (c->T <= 0) return fb_fail(FB_ERR_INVALID_ARG, "trainer: window length %d must be > 0", c->T);
    if (c->steps <= 0 || c->warmup < 0) return fb_fail(FB_ERR_INVALID_ARG, "trainer: steps %ld, warmup %ld", c->steps, c->warmup);
    if (!(c->lr > 0) || !(c->min_lr >= 0) || !(c->clip >= 0))
        return fb_fail(FB_ERR_INVALID_ARG, "trainer: lr %g, min_lr %g and clip %g must be > 0, >= 0, >= 0", (double)c->lr,
                       (double)c->min_lr, (double)c->clip);
    if (c->eval_windows <= 0) return fb_fail(FB_ERR_INVALID_ARG, "trainer: eval_windows %d must be > 0", c->eval_windows);
    return FB_OK;
}

/* Buffers and training activations, once the model is known. */
static fb_status setup(fb_trainer *t) {
    const fb_trainer_config *c = &t->cfg;
    if (c->T > t->m->cfg.max_seq)
        return fb_fail(FB_ERR_SHAPE, "trainer: window length %d exceeds the model's context %d", c->T, t->m->cfg.max_seq);
    t->micro = c->batch / c->world / c->accum;
    FB_TRY(fb_model_alloc_training(t->m, t->micro, c->T, c->recompute));
    t->starts = malloc(sizeof(size_t) * (size_t)c->batch);
    t->ids = malloc(sizeof(int32_t) * (size_t)t->micro * (size_t)c->T);
    t->tgt = malloc(sizeof(int32_t) * (size_t)t->micro * (size_t)c->T);
    if (!t->starts || !t->ids || !t->tgt) return fb_fail(FB_ERR_OOM, "trainer: out of memory");
    return FB_OK;
}

fb_status fb_trainer_create(fb_trainer **out, const fb_trainer_config *cfg, fb_model *m, const fb_adamw_config *adamw,
                            uint64_t seed, const char *tokenizer_spec) {
    if (!out || !m || !adamw) return fb_fail(FB_ERR_INVALID_ARG, "fb_trainer_create: NULL argument");
    *out = NULL;
    FB_TRY(check_config(cfg));
    fb_trainer *t = calloc(1, sizeof *t);
    if (!t) return fb_fail(FB_ERR_OOM, "trainer: out of memory");
    t->cfg = *cfg;
    t->m = m;
    t->st.best_val = NAN;
    snprintf(t->st.tokenizer, sizeof t->st.tokenizer, "%s", tokenizer_spec ? tokenizer_spec : "byte");
    fb_rng_seed(&t->rng, seed);
    fb_status s = fb_adamw_init(&t->opt, m, adamw);
    if (s == FB_OK) s = setup(t);
    if (s != FB_OK) { fb_trainer_free(t); return s; }
    *out = t;
    return FB_OK;
}

fb_status fb_trainer_load(fb_trainer **out, const fb_trainer_config *cfg, const char *checkpoint, float weight_decay) {
    if (!out || !checkpoint) return fb_fail(FB_ERR_INVALID_ARG, "fb_trainer_load: NULL argument");
    *out = NULL;
    FB_TRY(check_config(cfg));
    fb_trainer *t = calloc(1, sizeof *t);
    if (!t) return fb_fail(FB_ERR_OOM, "trainer: out of memory");
    t->cfg = *cfg;
    fb_status s = fb_train_checkpoint_load(checkpoint, &t->m, &t->opt, &t->st);
    if (s == FB_OK) {
        t->rng.s = t->st.rng;
        if (weight_decay >= 0) t->opt.cfg.weight_decay = weight_decay;
        s = setup(t);
    }
    if (s != FB_OK) { fb_trainer_free(t); return s; }
    *out = t;
    return FB_OK;
}

void fb_trainer_free(fb_trainer *t) {
    if (!t) return;
    fb_adamw_free(&t->opt);
    fb_model_free(t->m);
    free(t->starts);
    free(t->ids);
    free(t->tgt);
    free(t);
}

fb_status fb_trainer_set_data(fb_trainer *t, const fb_data_split *d) {
    if (!t || !d) return fb_fail(FB_ERR_INVALID_ARG, "fb_trainer_set_data: NULL argument");
    if (d->n_train <= (size_t)t->cfg.T || d->n_val <= (size_t)t->cfg.T)
        return fb_fail(FB_ERR_INVALID_ARG, "trainer: %zu training and %zu validation tokens; each split needs more than %d",
                       d->n_train, d->n_val, t->cfg.T);
    t->data = d;
    return FB_OK;
}

void fb_trainer_set_hooks(fb_trainer *t, const fb_trainer_hooks *h) {
    if (!t) return;
    if (h) t->hooks = *h;
    else memset(&t->hooks, 0, sizeof t->hooks);
}

fb_model *fb_trainer_model(fb_trainer *t) { return t ? t->m : NULL; }
const fb_train_state *fb_trainer_state(const fb_trainer *t) { return t ? &t->st : NULL; }
const fb_trainer_config *fb_trainer_get_config(const fb_trainer *t) { return t ? &t->cfg : NULL; }

fb_status fb_trainer_step(fb_trainer *t, fb_step_info *info) {
    if (!t || !t->data) return fb_fail(FB_ERR_INVALID_ARG, "fb_trainer_step: no trainer or no data");
    const fb_trainer_config *c = &t->cfg;
    if (t->st.step >= c->steps) return fb_fail(FB_ERR_INVALID_ARG, "trainer: all %ld steps are done", c->steps);
    const double t0 = fb_now_sec();
    const long step = t->st.step;
    /* the global batch, drawn the same way on every rank */
    fb_data_window_starts(t->data->n_train, c->T, &t->rng, c->batch, t->starts);
    const int mine = c->rank * (c->batch / c->world);
    fb_model_zero_grad(t->m);
    double loss_sum = 0;
    for (int k = 0; k < c->accum; k++) {
        fb_data_windows(t->data->train, c->T, t->starts + mine + k * t->micro, t->micro, t->ids, t->tgt);
        float l;
        if (k == c->accum - 1 && t->hooks.grads_ready) fb_model_set_grad_ready(t->m, t->hooks.grads_ready, t->hooks.user);
        fb_status s = fb_model_forward_backward(t->m, t->ids, t->tgt, t->micro, c->T, 1.0f / (float)(c->accum * c->world), &l);
        fb_model_set_grad_ready(t->m, NULL, NULL);
        FB_TRY(s);
        loss_sum += l;
    }
    if (t->hooks.after_backward) FB_TRY(t->hooks.after_backward(t->hooks.user, t->m, step));
    const float lr = fb_lr_schedule(step, c->warmup, c->steps, c->lr, c->min_lr);
    double norm;
    if (t->hooks.optimizer_step) {
        FB_TRY(t->hooks.optimizer_step(t->hooks.user, t->m, &t->opt, step, lr, c->clip, &norm));
    } else {
        norm = fb_grad_norm(t->m);
        if (!isfinite(norm)) return fb_fail(FB_ERR_NUMERIC, "gradient norm is not finite");
        FB_TRY(fb_adamw_step_scaled(&t->opt, t->m, lr, fb_clip_coef(norm, c->clip)));   /* clipping fused into the update */
    }
    t->st.step = step + 1;
    t->st.rng = t->rng.s;
    if (t->hooks.after_update) FB_TRY(t->hooks.after_update(t->hooks.user, t->m, step));
    if (info) {
        info->step = t->st.step;
        info->loss = loss_sum / (double)c->accum;
        info->grad_norm = norm;
        info->lr = lr;
        info->seconds = fb_now_sec() - t0;
        info->tokens = (long)c->accum * t->micro * c->T;
    }
    return FB_OK;
}

fb_status fb_trainer_evaluate(fb_trainer *t, float *val_loss) {
    if (!t || !t->data || !val_loss) return fb_fail(FB_ERR_INVALID_ARG, "fb_trainer_evaluate: no trainer, data or output");
    const int B = t->micro, T = t->cfg.T, n_windows = t->cfg.eval_windows;
    const size_t span = t->data->n_val - (size_t)T;
    double sum = 0;
    for (int done = 0; done < n_windows;) {
        const int b = n_windows - done < B ? n_windows - done : B;
        for (int i = 0; i < b; i++) {
            const size_t start = (size_t)(((double)(done + i) / (double)n_windows) * (double)span);
            memcpy(t->ids + (size_t)i * T, t->data->val + start, sizeof(int32_t) * (size_t)T);
            memcpy(t->tgt + (size_t)i * T, t->data->val + start + 1, sizeof(int32_t) * (size_t)T);
        }
        float l;
        FB_TRY(fb_model_forward(t->m, t->ids, t->tgt, b, T, &l));
        sum += (double)l * b;
        done += b;
    }
    *val_loss = (float)(sum / n_windows);
    if (!(t->st.best_val <= *val_loss)) t->st.best_val = *val_loss;
    return FB_OK;
}

fb_status fb_trainer_save(fb_trainer *t, const char *path) {
    if (!t || !path) return fb_fail(FB_ERR_INVALID_ARG, "fb_trainer_save: NULL argument");
    if (!t->opt.m) return fb_fail(FB_ERR_INVALID_ARG, "fb_trainer_save: the AdamW moments are sharded (use fb_trainer_save_moments)");
    t->st.rng = t->rng.s;
    return fb_train_checkpoint_save(path, t->m, &t->opt, &t->st);
}

fb_status fb_trainer_save_moments(fb_trainer *t, const char *path, float *m1, float *m2) {
    if (!t || !path || !m1 || !m2) return fb_fail(FB_ERR_INVALID_ARG, "fb_trainer_save_moments: NULL argument");
    t->st.rng = t->rng.s;
    fb_adamw full = t->opt;
    full.m = m1;
    full.v = m2;
    return fb_train_checkpoint_save(path, t->m, &full, &t->st);
}

fb_adamw *fb_trainer_adamw(fb_trainer *t) { return t ? &t->opt : NULL; }
