/* Model checkpoints in safetensors: config <-> metadata, the weights, the
 * run state (see checkpoint.h and docs/FORMATS.md). */
#include "model/checkpoint.h"
#include "core/error.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_META 32          /* config and state entries written (19 today) */
#define MAX_NAME 160       /* prefix + tensor name */

struct fb_checkpoint {
    fb_safetensors st;
    char *path;            /* for messages */
    fb_model_config cfg;   /* what the shapes were planned from (messages) */
};

static const char *norm_name(fb_norm_kind k) { return k == FB_NORM_RMSNORM ? "rmsnorm" : "layernorm"; }
static const char *mlp_name(fb_mlp_kind k) { return k == FB_MLP_SWIGLU ? "swiglu" : k == FB_MLP_GELU ? "gelu" : "gelu_tanh"; }
static const char *pos_name(fb_pos_kind k) { return k == FB_POS_ROPE ? "rope" : "learned"; }

fb_status fb_checkpoint_save(const char *path, const fb_model *m, const fb_checkpoint_extra *extra,
                             const fb_train_state *st) {
    if (!path || !m) return fb_fail(FB_ERR_INVALID_ARG, "checkpoint save: NULL argument");
    if (m->n_q8) return fb_fail(FB_ERR_UNSUPPORTED, "checkpoint save: the model holds Q8_0 weights only (loaded for quantized inference)");
    const int n_arrays = extra ? extra->n_arrays : 0, n_extra_meta = extra ? extra->n_meta : 0;
    if (extra && (n_arrays < 0 || n_extra_meta < 0 || (n_arrays && (!extra->prefix || !extra->data)) ||
                  (n_extra_meta && !extra->meta)))
        return fb_fail(FB_ERR_INVALID_ARG, "checkpoint save: bad extra arrays or metadata");
    const fb_model_config *c = &m->cfg;
    const int nt = m->n_tensors, total = nt * (1 + n_arrays);
    fb_st_write_tensor *w = calloc((size_t)total, sizeof *w);
    uint64_t *shapes = calloc((size_t)total * 2, sizeof *shapes);
    char (*names)[MAX_NAME] = calloc((size_t)total, sizeof *names);
    char (*v)[64] = calloc(N_META, sizeof *v);
    fb_st_kv *meta = calloc((size_t)(N_META + n_extra_meta + 1), sizeof *meta);
    fb_status s = FB_OK;
    if (!w || !shapes || !names || !v || !meta) { s = fb_fail(FB_ERR_OOM, "checkpoint save: out of memory"); goto done; }
    for (int k = 0; k < total; k++) {
        const int i = k % nt, part = k / nt;
        const fb_model_tensor_info *t = &m->tensors[i];
        const char *prefix = part == 0 ? "" : extra->prefix[part - 1];
        const int len = snprintf(names[k], sizeof names[k], "%s%s", prefix, t->name);
        if (len < 0 || len >= MAX_NAME) {
            s = fb_fail(FB_ERR_INVALID_ARG, "checkpoint save: tensor name '%s%s' is too long", prefix, t->name);
            goto done;
        }
        shapes[2 * k] = (uint64_t)t->shape[0];
        shapes[2 * k + 1] = (uint64_t)t->shape[1];
        const float *base = part == 0 ? m->params : extra->data[part - 1];
        w[k] = (fb_st_write_tensor){names[k], FB_ST_F32, t->ndim, shapes + 2 * k, base + t->offset};
    }
    int n = 0;
#define META(key, ...) do { snprintf(v[n], sizeof v[n], __VA_ARGS__); meta[n] = (fb_st_kv){key, v[n]}; n++; } while (0)
    META("format", "flashblock");
    META("format_version", "1");
    META("d_model", "%d", c->block.d_model);
    META("n_heads", "%d", c->block.n_heads);
    META("n_kv_heads", "%d", c->block.n_kv_heads);
    META("d_ff", "%d", c->block.d_ff);
    META("n_layers", "%d", c->n_layers);
    META("vocab_size", "%d", c->vocab_size);
    META("max_seq", "%d", c->max_seq);
    META("norm", "%s", norm_name(c->block.norm));
    META("norm_eps", "%.9g", (double)c->block.norm_eps);
    META("mlp", "%s", mlp_name(c->block.mlp));
    META("positions", "%s", pos_name(c->block.positions));
    META("rope_theta", "%.9g", (double)c->block.rope_theta);
    META("bias", "%d", c->block.bias);
    META("tied", "%d", c->tied);
    if (st) {
        META("step", "%ld", st->step);
        META("rng", "%llu", (unsigned long long)st->rng);
        META("best_val", "%.9g", (double)st->best_val);
    }
#undef META
    for (int e = 0; e < n_extra_meta; e++) meta[n++] = extra->meta[e];
    if (st) meta[n++] = (fb_st_kv){"tokenizer", st->tokenizer};
    s = fb_safetensors_write(path, w, (size_t)total, meta, (size_t)n);
done:
    free(w);
    free(shapes);
    free(names);
    free(v);
    free(meta);
    return s;
}

static fb_status meta_long(const fb_safetensors *st, const char *path, const char *key, long lo, long hi, long *out) {
    const char *v = fb_safetensors_meta(st, key);
    if (!v) return fb_fail(FB_ERR_FORMAT, "%s: metadata key '%s' is missing", path, key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return fb_fail(FB_ERR_FORMAT, "%s: metadata '%s' = '%s' is not an integer in [%ld, %ld]", path, key, v, lo, hi);
    *out = x;
    return FB_OK;
}

static fb_status meta_float(const fb_safetensors *st, const char *path, const char *key, float *out) {
    const char *v = fb_safetensors_meta(st, key);
    if (!v) return fb_fail(FB_ERR_FORMAT, "%s: metadata key '%s' is missing", path, key);
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) return fb_fail(FB_ERR_FORMAT, "%s: metadata '%s' = '%s' is not a number", path, key, v);
    *out = (float)x;
    return FB_OK;
}

static fb_status read_config(const fb_safetensors *st, const char *path, fb_model_config *c, fb_train_state *ts) {
    const char *fmt = fb_safetensors_meta(st, "format");
    if (!fmt || strcmp(fmt, "flashblock") != 0)
        return fb_fail(FB_ERR_FORMAT, "%s: not a flashblock checkpoint (metadata 'format' is %s)", path, fmt ? fmt : "missing");
    long v = 0;
    memset(c, 0, sizeof *c);
    FB_TRY(meta_long(st, path, "d_model", 1, 1 << 20, &v)); c->block.d_model = (int)v;
    FB_TRY(meta_long(st, path, "n_heads", 1, 1 << 16, &v)); c->block.n_heads = (int)v;
    FB_TRY(meta_long(st, path, "n_kv_heads", 1, 1 << 16, &v)); c->block.n_kv_heads = (int)v;
    FB_TRY(meta_long(st, path, "d_ff", 1, 1 << 24, &v)); c->block.d_ff = (int)v;
    FB_TRY(meta_long(st, path, "n_layers", 1, 4096, &v)); c->n_layers = (int)v;
    FB_TRY(meta_long(st, path, "vocab_size", 1, 1 << 24, &v)); c->vocab_size = (int)v;
    FB_TRY(meta_long(st, path, "max_seq", 1, 1 << 22, &v)); c->max_seq = (int)v;
    FB_TRY(meta_long(st, path, "bias", 0, 1, &v)); c->block.bias = (int)v;
    FB_TRY(meta_long(st, path, "tied", 0, 1, &v)); c->tied = (int)v;
    FB_TRY(meta_float(st, path, "norm_eps", &c->block.norm_eps));
    FB_TRY(meta_float(st, path, "rope_theta", &c->block.rope_theta));
    const char *s;
    if (!(s = fb_safetensors_meta(st, "norm")) || fb_norm_from_name(s, &c->block.norm) != FB_OK)
        return fb_fail(FB_ERR_FORMAT, "%s: metadata 'norm' missing or unknown", path);
    if (!(s = fb_safetensors_meta(st, "mlp")) || fb_mlp_from_name(s, &c->block.mlp) != FB_OK)
        return fb_fail(FB_ERR_FORMAT, "%s: metadata 'mlp' missing or unknown", path);
    if (!(s = fb_safetensors_meta(st, "positions")) || fb_pos_from_name(s, &c->block.positions) != FB_OK)
        return fb_fail(FB_ERR_FORMAT, "%s: metadata 'positions' missing or unknown", path);
    c->block.head_dim = c->block.d_model / c->block.n_heads;
    if (fb_model_config_validate(c) != FB_OK)
        return fb_fail(FB_ERR_FORMAT, "%s: invalid model config: %s", path, fb_last_error());
    if (ts) {
        memset(ts, 0, sizeof *ts);
        ts->best_val = NAN;
        const char *tok = fb_safetensors_meta(st, "tokenizer");
        snprintf(ts->tokenizer, sizeof ts->tokenizer, "%s", tok ? tok : "byte");
        if (fb_safetensors_meta(st, "step")) {
            FB_TRY(meta_long(st, path, "step", 0, 1L << 40, &ts->step));
            const char *r = fb_safetensors_meta(st, "rng");
            ts->rng = r ? strtoull(r, NULL, 10) : 0;
            meta_float(st, path, "best_val", &ts->best_val);
        }
    }
    return FB_OK;
}

fb_status fb_checkpoint_peek(const char *path, fb_model_config *cfg, fb_train_state *ts) {
    fb_safetensors st;
    FB_TRY(fb_safetensors_open(&st, path));
    fb_status s = read_config(&st, path, cfg, ts);
    fb_safetensors_close(&st);
    return s;
}

const char *fb_checkpoint_meta(const fb_checkpoint *f, const char *key) {
    return f ? fb_safetensors_meta(&f->st, key) : NULL;
}

fb_status fb_checkpoint_meta_long(const fb_checkpoint *f, const char *key, long lo, long hi, long *out) {
    if (!f || !key || !out) return fb_fail(FB_ERR_INVALID_ARG, "checkpoint metadata: NULL argument");
    return meta_long(&f->st, f->path, key, lo, hi, out);
}

fb_status fb_checkpoint_meta_float(const fb_checkpoint *f, const char *key, float *out) {
    if (!f || !key || !out) return fb_fail(FB_ERR_INVALID_ARG, "checkpoint metadata: NULL argument");
    return meta_float(&f->st, f->path, key, out);
}

/* Checks tensor `name` against the planned shape t (and, with dst, converts
 * it); a mismatch names the metadata fields the shape comes from. */
static fb_status copy_tensor(const fb_safetensors *st, const char *path, const char *name, const fb_model_tensor_info *t,
                             const fb_model_config *c, float *dst) {
    const fb_st_tensor *x = fb_safetensors_find(st, name);
    if (!x)
        return fb_fail(FB_ERR_FORMAT, "%s: tensor %s is missing (metadata n_layers = %d, tied = %d, positions = %s)", path,
                       name, c->n_layers, c->tied, c->block.positions == FB_POS_LEARNED ? "learned" : "rope");
    uint64_t want0 = (uint64_t)t->shape[0], want1 = (uint64_t)t->shape[1];
    int ok = (t->ndim == 1 && x->ndim == 1 && x->shape[0] == want0) ||
             (t->ndim == 2 && x->ndim == 2 && x->shape[0] == want0 && x->shape[1] == want1);
    if (!ok)
        return fb_fail(FB_ERR_SHAPE,
                       "%s: tensor %s has shape [%llu%s%llu], the metadata needs [%llu, %llu] (d_model = %d, d_ff = %d, "
                       "n_heads = %d, n_kv_heads = %d, vocab_size = %d, max_seq = %d)",
                       path, name, (unsigned long long)x->shape[0], x->ndim > 1 ? ", " : " ndim=1 ",
                       (unsigned long long)(x->ndim > 1 ? x->shape[1] : 1), (unsigned long long)want0, (unsigned long long)want1,
                       c->block.d_model, c->block.d_ff, c->block.n_heads, c->block.n_kv_heads, c->vocab_size, c->max_seq);
    if (!dst) return FB_OK;   /* shape check only */
    FB_TRY(fb_st_tensor_to_f32(x, dst));
    fb_mapped_file_done_with(&st->file, x->data, x->nbytes);   /* peak memory: weights, not weights + file */
    for (size_t k = 0; k < t->numel; k++)
        if (!isfinite(dst[k])) return fb_fail(FB_ERR_NUMERIC, "%s: tensor %s holds a non-finite value at %zu", path, name, k);
    return FB_OK;
}

/* Rows of a checkpoint tensor for a Q8_0 model tensor (fb_model_fill_q8). */
typedef struct {
    const fb_safetensors *st;
    const fb_st_tensor *x;
    const char *path;
    uint64_t cols;
} q8_rows;

static fb_status q8_row(const void *ctx, uint64_t r, float *out) {
    const q8_rows *q = ctx;
    FB_TRY(fb_st_tensor_range_f32(q->x, r * q->cols, q->cols, out));
    for (uint64_t k = 0; k < q->cols; k++)
        if (!isfinite(out[k]))
            return fb_fail(FB_ERR_NUMERIC, "%s: tensor %s holds a non-finite value at %llu", q->path, q->x->name,
                           (unsigned long long)(r * q->cols + k));
    return FB_OK;
}

static void q8_rows_done(const void *ctx, uint64_t r0, uint64_t r1) {
    const q8_rows *q = ctx;
    (void)r0;   /* from the tensor's start: a page across two chunks goes with the second */
    const size_t es = fb_st_dtype_size(q->x->dtype);
    fb_mapped_file_done_with(&q->st->file, q->x->data, r1 * q->cols * es);
}

/* Tensor `name` (shape already checked) into model tensor i, held as Q8_0:
 * quantized row by row from the file, never whole as fp32. */
static fb_status quantize_tensor(const fb_safetensors *st, const char *path, const char *name, fb_model *m, int i) {
    const fb_st_tensor *x = fb_safetensors_find(st, name);
    if (!x) return fb_fail(FB_ERR_FORMAT, "%s: tensor %s is missing", path, name);
    const q8_rows q = {st, x, path, (uint64_t)m->tensors[i].shape[1]};
    FB_TRY(fb_model_fill_q8(m, i, 0, m->tensors[i].shape[0], q8_row, NULL, q8_rows_done, &q, NULL));
    fb_mapped_file_done_with(&st->file, x->data, x->nbytes);
    return FB_OK;
}

fb_status fb_checkpoint_read_tensor(const fb_checkpoint *f, const char *name, const fb_model_tensor_info *t, float *dst) {
    if (!f || !name || !t || !dst) return fb_fail(FB_ERR_INVALID_ARG, "checkpoint read: NULL argument");
    return copy_tensor(&f->st, f->path, name, t, &f->cfg, dst);
}

void fb_checkpoint_close(fb_checkpoint *f) {
    if (!f) return;
    fb_safetensors_close(&f->st);
    free(f->path);
    free(f);
}

static fb_status load(const char *path, int with_grads, fb_model_weights w, fb_model **out, fb_checkpoint **file,
                      fb_train_state *ts) {
    if (!path || !out) return fb_fail(FB_ERR_INVALID_ARG, "checkpoint load: NULL argument");
    *out = NULL;
    if (file) *file = NULL;
    fb_checkpoint *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) { free(f); return fb_fail(FB_ERR_OOM, "checkpoint load: out of memory"); }
    fb_status s = fb_safetensors_open(&f->st, path);
    if (s != FB_OK) { free(f->path); free(f); return s; }
    fb_model *m = NULL;
    s = read_config(&f->st, path, &f->cfg, ts);
    /* every tensor's shape is checked before the header's sizes are trusted
     * with an allocation */
    if (s == FB_OK) s = fb_model_plan_weights(&m, &f->cfg, w);
    for (int i = 0; s == FB_OK && i < m->n_tensors; i++)
        s = copy_tensor(&f->st, path, m->tensors[i].name, &m->tensors[i], &f->cfg, NULL);
    if (s == FB_OK) s = fb_model_alloc(m, with_grads);
    for (int i = 0; s == FB_OK && i < m->n_tensors; i++)
        s = m->tensors[i].q8 >= 0
                ? quantize_tensor(&f->st, path, m->tensors[i].name, m, i)
                : copy_tensor(&f->st, path, m->tensors[i].name, &m->tensors[i], &f->cfg, m->params + m->tensors[i].offset);
    if (s != FB_OK || !file) fb_checkpoint_close(f);
    if (s != FB_OK) { fb_model_free(m); return s; }
    if (file) *file = f;
    *out = m;
    return FB_OK;
}

fb_status fb_checkpoint_load(const char *path, fb_model **m, fb_checkpoint **file, fb_train_state *st) {
    return load(path, 0, FB_MODEL_F32, m, file, st);
}

fb_status fb_checkpoint_load_weights(const char *path, fb_model_weights w, fb_model **m, fb_checkpoint **file,
                                     fb_train_state *st) {
    return load(path, 0, w, m, file, st);
}

fb_status fb_checkpoint_load_for_training(const char *path, fb_model **m, fb_checkpoint **file, fb_train_state *st) {
    return load(path, 1, FB_MODEL_F32, m, file, st);
}
