/* Training checkpoints: the model checkpoint plus AdamW's state (see
 * checkpoint.h). */
#include "train/checkpoint.h"
#include "core/error.h"
#include <stdio.h>

fb_status fb_train_checkpoint_save(const char *path, const fb_model *m, const fb_adamw *opt, const fb_train_state *st) {
    if (!opt) return fb_checkpoint_save(path, m, NULL, st);
    char v[6][64];
    fb_st_kv meta[6];
    int n = 0;
#define META(key, ...) do { snprintf(v[n], sizeof v[n], __VA_ARGS__); meta[n] = (fb_st_kv){key, v[n]}; n++; } while (0)
    META("adamw.step", "%ld", opt->step);
    META("adamw.beta1", "%.9g", (double)opt->cfg.beta1);
    META("adamw.beta2", "%.9g", (double)opt->cfg.beta2);
    META("adamw.eps", "%.9g", (double)opt->cfg.eps);
    META("adamw.weight_decay", "%.9g", (double)opt->cfg.weight_decay);
    META("adamw.decay_all", "%d", opt->cfg.decay_all);
#undef META
    const char *const prefix[2] = {"optim.m.", "optim.v."};
    const float *const data[2] = {opt->m, opt->v};
    const fb_checkpoint_extra extra = {2, prefix, data, n, meta};
    return fb_checkpoint_save(path, m, &extra, st);
}

fb_status fb_train_checkpoint_load(const char *path, fb_model **out, fb_adamw *opt, fb_train_state *ts) {
    fb_checkpoint *f = NULL;
    FB_TRY(fb_checkpoint_load_for_training(path, out, opt ? &f : NULL, ts));
    if (!opt) return FB_OK;
    fb_model *m = *out;
    fb_adamw_config ac = fb_adamw_defaults();
    long step = 0;
    /* hyper-parameters missing from older files keep their defaults */
    fb_checkpoint_meta_float(f, "adamw.beta1", &ac.beta1);
    fb_checkpoint_meta_float(f, "adamw.beta2", &ac.beta2);
    fb_checkpoint_meta_float(f, "adamw.eps", &ac.eps);
    fb_checkpoint_meta_float(f, "adamw.weight_decay", &ac.weight_decay);
    long decay_all = 0;
    if (fb_checkpoint_meta(f, "adamw.decay_all")) fb_checkpoint_meta_long(f, "adamw.decay_all", 0, 1, &decay_all);
    ac.decay_all = (int)decay_all;
    fb_status s = fb_checkpoint_meta_long(f, "adamw.step", 0, 1L << 40, &step);
    if (s != FB_OK) s = fb_fail(FB_ERR_FORMAT, "%s: holds no optimizer state (a weights-only checkpoint cannot resume)", path);
    int opt_ready = 0;
    if (s == FB_OK) s = fb_adamw_init(opt, m, &ac);
    if (s == FB_OK) { opt->step = step; opt_ready = 1; }
    char name[112];
    for (int i = 0; s == FB_OK && i < m->n_tensors; i++) {
        snprintf(name, sizeof name, "optim.m.%s", m->tensors[i].name);
        s = fb_checkpoint_read_tensor(f, name, &m->tensors[i], opt->m + m->tensors[i].offset);
        snprintf(name, sizeof name, "optim.v.%s", m->tensors[i].name);
        if (s == FB_OK) s = fb_checkpoint_read_tensor(f, name, &m->tensors[i], opt->v + m->tensors[i].offset);
    }
    fb_checkpoint_close(f);
    if (s != FB_OK) {
        if (opt_ready) fb_adamw_free(opt);
        fb_model_free(m);
        *out = NULL;
        return s;
    }
    return FB_OK;
}
