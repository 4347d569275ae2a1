#include "infer/model_load.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/llama2c.h"
#include "io/llmc.h"
#include "model/model.h"
#include "model/checkpoint.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fb_model_format_name(fb_model_format f) {
    switch (f) {
    case FB_FMT_SAFETENSORS: return "safetensors";
    case FB_FMT_GGUF: return "gguf";
    case FB_FMT_LLMC: return "llm.c";
    case FB_FMT_LLAMA2C: return "llama2.c";
    }
    return "?";
}

/* Where a source tensor's rows go: model tensor i from its row row0, as
 * fp32 at f32, or (f32 NULL) as Q8_0 rows of the model's Q8_0 store. */
typedef struct { fb_model *m; int i; int64_t row0; float *f32; } dest;

static dest dest_index(fb_model *m, int i, int64_t row0) {
    dest d = {m, i, row0, NULL};
    if (i >= 0 && m->tensors[i].q8 < 0 && m->params) d.f32 = m->params + m->tensors[i].offset + (size_t)row0 * (size_t)m->tensors[i].shape[1];
    return d;
}
static dest dest_named(fb_model *m, const char *name) { return dest_index(m, fb_model_find_tensor(m, name), 0); }
static dest dest_block(fb_model *m, int l, fb_block_param p, int64_t row0) { return dest_index(m, fb_model_block_tensor(m, l, p), row0); }

/* ---- llama2.c ------------------------------------------------------------ */
typedef struct { const fb_llama2c *f; const fb_llama2c_tensor *t; } l2c_rows;

static fb_status l2c_row(const void *ctx, uint64_t r, float *out) {
    const l2c_rows *q = ctx;
    return fb_llama2c_row_f32(q->t, r, out, q->f->cfg.group_size);
}

static void l2c_done(const void *ctx, uint64_t r0, uint64_t r1) {
    const l2c_rows *q = ctx;
    (void)r0;   /* from the tensor's start: a page across two chunks goes with the second */
    if (q->t->f32) fb_mapped_file_done_with(&q->f->file, q->t->f32, r1 * q->t->cols * sizeof(float));
    else fb_mapped_file_done_with(&q->f->file, q->t->q, r1 * q->t->cols);
}

/* Rows are copied (dequantized for v2) in parallel: loading is page faults
 * on the source mapping and the destination, which both cores can serve.
 * Into a Q8_0 tensor, each row is quantized through a row buffer. */
static fb_status copy_l2c(const fb_llama2c *f, const fb_llama2c_tensor *t, dest d) {
    if (d.i < 0) return fb_fail(FB_ERR_FORMAT, "llama2.c: no model tensor for a %llux%llu tensor", (unsigned long long)t->rows,
                                (unsigned long long)t->cols);
    int failed = 0;
    if (!d.f32) {
        const l2c_rows q = {f, t};
        FB_TRY(fb_model_fill_q8(d.m, d.i, d.row0, (int64_t)t->rows, l2c_row, NULL, l2c_done, &q, NULL));
    } else {
        float *dst = d.f32;
        #pragma omp parallel for schedule(static) if (t->rows * t->cols > (1u << 16)) reduction(| : failed)
        for (int64_t r = 0; r < (int64_t)t->rows; r++)
            failed |= fb_llama2c_row_f32(t, (uint64_t)r, dst + (uint64_t)r * t->cols, f->cfg.group_size) != FB_OK;
    }
    if (t->f32) fb_mapped_file_done_with(&f->file, t->f32, t->rows * t->cols * sizeof(float));
    else fb_mapped_file_done_with(&f->file, t->q, t->rows * t->cols);
    return failed ? fb_fail(FB_ERR_FORMAT, "llama2.c: cannot read a %llux%llu tensor", (unsigned long long)t->rows,
                            (unsigned long long)t->cols)
                  : FB_OK;
}

static fb_status load_llama2c(const char *path, fb_model **out, int *q8, fb_model_weights w) {
    fb_llama2c f;
    FB_TRY(fb_llama2c_open(&f, path));
    const fb_llama2c_config *c = &f.cfg;
    fb_model_config mc = {0};
    mc.block = fb_block_config_llama(c->dim, c->n_heads, c->n_kv_heads, c->hidden_dim);
    mc.n_layers = c->n_layers;
    mc.vocab_size = c->vocab_size;
    mc.max_seq = c->seq_len;
    mc.tied = c->shared_classifier;
    fb_model *m = NULL;   /* sizes checked against the file size at open; inference: no gradients */
    fb_status s = fb_model_plan_weights(&m, &mc, w);
    if (s != FB_OK) { fb_llama2c_close(&f); return fb_fail(FB_ERR_FORMAT, "%s: unusable config: %s", path, fb_last_error()); }
    if ((s = fb_model_alloc(m, 0)) != FB_OK) { fb_model_free(m); fb_llama2c_close(&f); return s; }
    const int64_t dim = c->dim, kv = c->kv_dim;
    s = copy_l2c(&f, &f.token_embedding, dest_named(m, "token_embd.weight"));
    if (s == FB_OK) s = copy_l2c(&f, &f.rms_final, dest_named(m, "output_norm.weight"));
    if (s == FB_OK && !mc.tied) s = copy_l2c(&f, &f.wcls, dest_named(m, "output.weight"));
    for (int l = 0; s == FB_OK && l < c->n_layers; l++) {
        const fb_llama2c_layer *L = &f.layers[l];
        s = copy_l2c(&f, &L->rms_att, dest_block(m, l, FB_P_ATTN_NORM_W, 0));
        /* q, k, v fill consecutive rows of the fused qkv; gate and up are adjacent */
        if (s == FB_OK) s = copy_l2c(&f, &L->wq, dest_block(m, l, FB_P_ATTN_QKV_W, 0));
        if (s == FB_OK) s = copy_l2c(&f, &L->wk, dest_block(m, l, FB_P_ATTN_QKV_W, dim));
        if (s == FB_OK) s = copy_l2c(&f, &L->wv, dest_block(m, l, FB_P_ATTN_QKV_W, dim + kv));
        if (s == FB_OK) s = copy_l2c(&f, &L->wo, dest_block(m, l, FB_P_ATTN_OUT_W, 0));
        if (s == FB_OK) s = copy_l2c(&f, &L->rms_ffn, dest_block(m, l, FB_P_FFN_NORM_W, 0));
        if (s == FB_OK) s = copy_l2c(&f, &L->w1, dest_block(m, l, FB_P_FFN_GATE_W, 0));
        if (s == FB_OK) s = copy_l2c(&f, &L->w3, dest_block(m, l, FB_P_FFN_UP_W, 0));
        if (s == FB_OK) s = copy_l2c(&f, &L->w2, dest_block(m, l, FB_P_FFN_DOWN_W, 0));
    }
    *q8 = c->version == 2;
    fb_llama2c_close(&f);
    if (s != FB_OK) { fb_model_free(m); return s; }
    *out = m;
    return FB_OK;
}

/* ---- llm.c --------------------------------------------------------------- */
typedef struct { const fb_llmc *f; fb_llmc_param p; uint64_t start, cols; } llmc_rows;

static fb_status llmc_row(const void *ctx, uint64_t r, float *out) {
    const llmc_rows *q = ctx;
    return fb_llmc_read_f32(q->f, q->p, q->start + r * q->cols, q->cols, out);
}

static void llmc_drop(const fb_llmc *f, fb_llmc_param p, uint64_t start, uint64_t n) {
    fb_mapped_file_done_with(&f->file, (const uint8_t *)f->params[p].data + start * f->elem_size, n * f->elem_size);
}

static void llmc_done(const void *ctx, uint64_t r0, uint64_t r1) {
    const llmc_rows *q = ctx;
    (void)r0;
    llmc_drop(q->f, q->p, q->start, r1 * q->cols);
}

/* Elements [start, start + n) of parameter p into d (for Q8_0: n / cols
 * rows), then their file pages are dropped. */
static fb_status llmc_into(const fb_llmc *f, fb_llmc_param p, uint64_t start, uint64_t n, dest d) {
    if (d.i < 0) return fb_fail(FB_ERR_FORMAT, "llm.c: no model tensor for %s", fb_llmc_param_name(p));
    if (d.f32) FB_TRY(fb_llmc_read_f32(f, p, start, n, d.f32));
    else {
        const llmc_rows q = {f, p, start, (uint64_t)d.m->tensors[d.i].shape[1]};
        FB_TRY(fb_model_fill_q8(d.m, d.i, d.row0, (int64_t)(n / q.cols), llmc_row, NULL, llmc_done, &q, NULL));
    }
    llmc_drop(f, p, start, n);   /* peak memory: weights, not weights + file */
    return FB_OK;
}

static fb_status load_llmc(const char *path, fb_model **out, fb_model_weights w) {
    fb_llmc f;
    FB_TRY(fb_llmc_open(&f, path));
    const fb_llmc_config *c = &f.cfg;
    fb_model_config mc = {0};
    mc.block = fb_block_config_gpt2(c->channels, c->num_heads);
    mc.n_layers = c->num_layers;
    mc.vocab_size = c->vocab_size;
    mc.max_seq = c->max_seq_len;
    mc.tied = 1;
    fb_model *m = NULL;   /* sizes checked against the file size at open; inference: no gradients */
    fb_status s = fb_model_plan_weights(&m, &mc, w);
    if (s != FB_OK) { fb_llmc_close(&f); return fb_fail(FB_ERR_FORMAT, "%s: unusable config: %s", path, fb_last_error()); }
    if ((s = fb_model_alloc(m, 0)) != FB_OK) { fb_model_free(m); fb_llmc_close(&f); return s; }
    const uint64_t C = (uint64_t)c->channels;
    s = llmc_into(&f, FB_LLMC_WTE, 0, (uint64_t)c->vocab_size * C, dest_named(m, "token_embd.weight"));
    if (s == FB_OK) s = llmc_into(&f, FB_LLMC_WPE, 0, (uint64_t)c->max_seq_len * C, dest_named(m, "position_embd.weight"));
    if (s == FB_OK) s = llmc_into(&f, FB_LLMC_LNFW, 0, C, dest_named(m, "output_norm.weight"));
    if (s == FB_OK) s = llmc_into(&f, FB_LLMC_LNFB, 0, C, dest_named(m, "output_norm.bias"));
    static const struct { fb_llmc_param src; fb_block_param dst; } map[] = {
        {FB_LLMC_LN1W, FB_P_ATTN_NORM_W}, {FB_LLMC_LN1B, FB_P_ATTN_NORM_B}, {FB_LLMC_QKVW, FB_P_ATTN_QKV_W},
        {FB_LLMC_QKVB, FB_P_ATTN_QKV_B},  {FB_LLMC_ATTPROJW, FB_P_ATTN_OUT_W}, {FB_LLMC_ATTPROJB, FB_P_ATTN_OUT_B},
        {FB_LLMC_LN2W, FB_P_FFN_NORM_W},  {FB_LLMC_LN2B, FB_P_FFN_NORM_B},  {FB_LLMC_FCW, FB_P_FFN_UP_W},
        {FB_LLMC_FCB, FB_P_FFN_UP_B},     {FB_LLMC_FCPROJW, FB_P_FFN_DOWN_W}, {FB_LLMC_FCPROJB, FB_P_FFN_DOWN_B},
    };
    for (int l = 0; s == FB_OK && l < c->num_layers; l++) {
        for (size_t k = 0; s == FB_OK && k < sizeof map / sizeof map[0]; k++) {
            uint64_t n = m->blk.numel[map[k].dst];
            s = llmc_into(&f, map[k].src, (uint64_t)l * n, n, dest_block(m, l, map[k].dst, 0));
        }
    }
    fb_llmc_close(&f);
    if (s != FB_OK) { fb_model_free(m); return s; }
    *out = m;
    return FB_OK;
}

/* ---- GGUF (llama architecture) ------------------------------------------ */
static fb_status gguf_u32(const fb_gguf *g, const char *path, const char *key, uint32_t *v) {
    if (fb_gguf_get_u32(g, key, v) != FB_OK) {
        uint64_t u;
        if (fb_gguf_get_u64(g, key, &u) == FB_OK && u <= 0x7fffffff) { *v = (uint32_t)u; return FB_OK; }
        return fb_fail(FB_ERR_FORMAT, "%s: metadata key %s is missing or not an integer", path, key);
    }
    return FB_OK;
}

/* One dimension the header asks of a tensor, with the metadata key it comes
 * from, so a mismatch names the field that is wrong. */
typedef struct { uint64_t n; const char *key; } gguf_dim;

typedef struct { const fb_gguf *g; const fb_gguf_tensor *t; } gguf_rows;

static fb_status gguf_row(const void *ctx, uint64_t r, float *out) { return fb_gguf_tensor_row_f32(((const gguf_rows *)ctx)->t, r, out); }

static void gguf_done(const void *ctx, uint64_t r0, uint64_t r1) {
    const gguf_rows *q = ctx;
    (void)r0;
    fb_mapped_file_done_with(&q->g->file, q->t->data, r1 * q->t->row_bytes);
}

/* Checks tensor `name` against [rows, cols]; with d, also converts it: to
 * fp32, or into a Q8_0 tensor, where Q8_0 blocks are copied as they are
 * (exact) and other types quantized row by row. The loader runs every
 * tensor once without d before it allocates, so a header whose sizes its
 * tensors do not back is refused before any allocation. */
static fb_status gguf_tensor_into(const fb_gguf *g, const char *path, const char *name, const dest *d, gguf_dim rows,
                                  gguf_dim cols, int *q8) {
    const fb_gguf_tensor *t;
    FB_TRY(fb_gguf_get_tensor(g, name, &t));
    if (t->ne[0] != cols.n || t->n_rows != rows.n)
        return fb_fail(FB_ERR_SHAPE, "%s: tensor %s has shape [%llu, %llu] but the header needs [%llu, %llu] (%s = %llu, %s = %llu)",
                       path, name, (unsigned long long)t->n_rows, (unsigned long long)t->ne[0], (unsigned long long)rows.n,
                       (unsigned long long)cols.n, rows.key, (unsigned long long)rows.n, cols.key, (unsigned long long)cols.n);
    if (t->type == FB_GGML_Q8_0) *q8 = 1;
    if (!d) return FB_OK;
    if (d->i < 0) return fb_fail(FB_ERR_FORMAT, "%s: no model tensor for %s", path, name);
    if (d->f32) FB_TRY(fb_gguf_tensor_to_f32(t, d->f32));
    else {
        const gguf_rows q = {g, t};
        const int copy = t->type == FB_GGML_Q8_0;   /* same layout as ours, row for row */
        FB_TRY(fb_model_fill_q8(d->m, d->i, d->row0, (int64_t)t->n_rows, copy ? NULL : gguf_row, copy ? t->data : NULL,
                                gguf_done, &q, NULL));
    }
    fb_mapped_file_done_with(&g->file, t->data, t->nbytes);   /* peak memory: weights, not weights + file */
    return FB_OK;
}

/* Header sizes of a GGUF model, with their key names for messages. */
typedef struct {
    int is_gpt2;
    gguf_dim C, ff, KV, V, ctx, one;
    uint32_t layers;
    char kC[64], kff[64], kKV[96], kctx[64];
} gguf_sizes;

/* A layer's tensor that is absent means block_count is wrong (or the file
 * is incomplete): say both. */
static fb_status gguf_layer_tensor_present(const fb_gguf *g, const char *path, const char *name, const gguf_sizes *z) {
    if (fb_gguf_find_tensor(g, name)) return FB_OK;
    return fb_fail(FB_ERR_FORMAT, "%s: tensor %s is missing (the header says block_count = %u)", path, name, z->layers);
}

/* The header field behind one gpt2 dimension (d_model, d_ff or 3·d_model). */
static gguf_dim gpt2_dim(const gguf_sizes *z, uint64_t n) {
    if (n == z->C.n) return z->C;
    if (n == z->ff.n) return z->ff;
    return (gguf_dim){n, "3 x embedding_length"};
}

/* Every tensor of the model: checked only while m has no parameters yet,
 * checked and converted once it has. */
static fb_status gguf_tensors(const fb_gguf *g, const char *path, fb_model *m, const gguf_sizes *z, int *q8) {
    fb_status s = FB_OK;
    const int fill = m->params != NULL;
    if (z->is_gpt2) {
        /* gpt2 architecture: our tensor names are GGUF's, one to one */
        for (int i = 0; s == FB_OK && i < m->n_tensors; i++) {
            const fb_model_tensor_info *t = &m->tensors[i];
            gguf_dim rows = z->one, cols = gpt2_dim(z, (uint64_t)t->shape[0]);
            if (t->ndim == 2) {
                cols = gpt2_dim(z, (uint64_t)t->shape[1]);
                if (!strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "output.weight")) rows = z->V;
                else if (!strcmp(t->name, "position_embd.weight")) rows = z->ctx;
                else rows = gpt2_dim(z, (uint64_t)t->shape[0]);
            }
            if (!strncmp(t->name, "blk.", 4)) FB_TRY(gguf_layer_tensor_present(g, path, t->name, z));
            const dest d = dest_index(m, i, 0);
            s = gguf_tensor_into(g, path, t->name, fill ? &d : NULL, rows, cols, q8);
        }
        return s;
    }
    const int64_t C = (int64_t)z->C.n, KV = (int64_t)z->KV.n;
    dest d = {0};
    s = gguf_tensor_into(g, path, "token_embd.weight", fill ? (d = dest_named(m, "token_embd.weight"), &d) : NULL, z->V, z->C, q8);
    if (s == FB_OK) s = gguf_tensor_into(g, path, "output_norm.weight", fill ? (d = dest_named(m, "output_norm.weight"), &d) : NULL, z->one, z->C, q8);
    if (s == FB_OK && !m->cfg.tied) s = gguf_tensor_into(g, path, "output.weight", fill ? (d = dest_named(m, "output.weight"), &d) : NULL, z->V, z->C, q8);
    for (uint32_t l = 0; s == FB_OK && l < z->layers; l++) {
        char name[96];
        /* q, k, v fill consecutive rows of the fused qkv; gate and up are adjacent */
#define T(suffix, param, row0, rows, cols) \
    if (s == FB_OK) {                                                                                                   \
        snprintf(name, sizeof name, "blk.%u." suffix, l);                                                               \
        FB_TRY(gguf_layer_tensor_present(g, path, name, z));                                                           \
        if (fill) d = dest_block(m, (int)l, param, row0);                                                               \
        s = gguf_tensor_into(g, path, name, fill ? &d : NULL, rows, cols, q8);                                          \
    }
        T("attn_norm.weight", FB_P_ATTN_NORM_W, 0, z->one, z->C)
        T("attn_q.weight", FB_P_ATTN_QKV_W, 0, z->C, z->C)
        T("attn_k.weight", FB_P_ATTN_QKV_W, C, z->KV, z->C)
        T("attn_v.weight", FB_P_ATTN_QKV_W, C + KV, z->KV, z->C)
        T("attn_output.weight", FB_P_ATTN_OUT_W, 0, z->C, z->C)
        T("ffn_norm.weight", FB_P_FFN_NORM_W, 0, z->one, z->C)
        T("ffn_gate.weight", FB_P_FFN_GATE_W, 0, z->ff, z->C)
        T("ffn_up.weight", FB_P_FFN_UP_W, 0, z->ff, z->C)
        T("ffn_down.weight", FB_P_FFN_DOWN_W, 0, z->C, z->ff)
#undef T
    }
    return s;
}

static fb_status gguf_tokenizer(const fb_gguf *g, const char *path, fb_tokenizer **tok) {
    *tok = NULL;
    const char *model;
    uint64_t mlen;
    if (fb_gguf_get_string(g, "tokenizer.ggml.model", &model, &mlen) != FB_OK) return FB_OK;   /* no vocabulary inside */
    const fb_gguf_value *toks;
    FB_TRY(fb_gguf_get_array(g, "tokenizer.ggml.tokens", FB_GGUF_STRING, &toks));
    uint64_t n = toks->v.arr.count;
    if (n == 0 || n > (1u << 24)) return fb_fail(FB_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", path, (unsigned long long)n);
    char **strs = calloc(n, sizeof *strs);
    if (!strs) return fb_fail(FB_ERR_OOM, "%s: out of memory", path);
    fb_status s = FB_OK;
    for (uint64_t i = 0; s == FB_OK && i < n; i++) {
        const char *p;
        uint64_t len;
        s = fb_gguf_array_string(toks, i, &p, &len);
        if (s == FB_OK && !(strs[i] = malloc(len + 1))) s = fb_fail(FB_ERR_OOM, "%s: out of memory", path);
        if (s == FB_OK) { memcpy(strs[i], p, len); strs[i][len] = '\0'; }
    }
    if (s == FB_OK && mlen == 5 && !memcmp(model, "llama", 5)) {
        const fb_gguf_value *sc;
        float *scores = calloc(n, sizeof(float));
        uint32_t bos = 1, eos = 2;
        gguf_u32(g, path, "tokenizer.ggml.bos_token_id", &bos);
        gguf_u32(g, path, "tokenizer.ggml.eos_token_id", &eos);
        if (!scores) s = fb_fail(FB_ERR_OOM, "%s: out of memory", path);
        if (s == FB_OK && fb_gguf_get_array(g, "tokenizer.ggml.scores", FB_GGUF_F32, &sc) == FB_OK)
            for (uint64_t i = 0; s == FB_OK && i < n && i < sc->v.arr.count; i++) s = fb_gguf_array_f32(sc, i, &scores[i]);
        if (s == FB_OK) s = fb_tokenizer_from_sentencepiece(tok, (const char *const *)strs, scores, (int)n, (int)bos, (int)eos);
        free(scores);
    } else if (s == FB_OK && mlen == 4 && !memcmp(model, "gpt2", 4)) {
        const fb_gguf_value *mg;
        s = fb_gguf_get_array(g, "tokenizer.ggml.merges", FB_GGUF_STRING, &mg);
        char **merges = s == FB_OK ? calloc(mg->v.arr.count + 1, sizeof *merges) : NULL;
        if (s == FB_OK && !merges) s = fb_fail(FB_ERR_OOM, "%s: out of memory", path);
        for (uint64_t i = 0; s == FB_OK && i < mg->v.arr.count; i++) {
            const char *p;
            uint64_t len;
            s = fb_gguf_array_string(mg, i, &p, &len);
            if (s == FB_OK && !(merges[i] = malloc(len + 1))) s = fb_fail(FB_ERR_OOM, "%s: out of memory", path);
            if (s == FB_OK) { memcpy(merges[i], p, len); merges[i][len] = '\0'; }
        }
        if (s == FB_OK) s = fb_tokenizer_from_gpt2(tok, (const char *const *)strs, (int)n, (const char *const *)merges, (int)mg->v.arr.count);
        for (uint64_t i = 0; merges && i < mg->v.arr.count; i++) free(merges[i]);
        free(merges);
    } else if (s == FB_OK) {
        s = fb_fail(FB_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' is not supported (llama, gpt2)", path, (int)mlen, model);
    }
    for (uint64_t i = 0; i < n; i++) free(strs[i]);
    free(strs);
    return s;
}

static fb_status load_gguf(const char *path, fb_model **out, fb_tokenizer **tok, int *q8, fb_model_weights w) {
    fb_gguf g;
    FB_TRY(fb_gguf_open(&g, path));
    fb_model *m = NULL;
    const char *arch;
    uint64_t alen;
    fb_status s = fb_gguf_get_string(&g, "general.architecture", &arch, &alen);
    const int is_gpt2 = s == FB_OK && alen == 4 && !memcmp(arch, "gpt2", 4);
    if (s == FB_OK && !is_gpt2 && !(alen == 5 && !memcmp(arch, "llama", 5)))
        s = fb_fail(FB_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not supported (llama, gpt2)", path, (int)alen, arch);
    const char *A = is_gpt2 ? "gpt2" : "llama";
    char key[96];
#define KEY(k) (snprintf(key, sizeof key, "%s." k, A), key)
    uint32_t dim = 0, layers = 0, heads = 0, kvh = 0, ff = 0, ctx = 0;
    float eps = 1e-5f, theta = 10000.0f;
    if (s == FB_OK) s = gguf_u32(&g, path, KEY("embedding_length"), &dim);
    if (s == FB_OK) s = gguf_u32(&g, path, KEY("block_count"), &layers);
    if (s == FB_OK) s = gguf_u32(&g, path, KEY("attention.head_count"), &heads);
    if (s == FB_OK && gguf_u32(&g, path, KEY("attention.head_count_kv"), &kvh) != FB_OK) kvh = heads;
    if (s == FB_OK) s = gguf_u32(&g, path, KEY("feed_forward_length"), &ff);
    if (s == FB_OK) s = gguf_u32(&g, path, KEY("context_length"), &ctx);
    if (s == FB_OK) {
        fb_gguf_get_f32(&g, is_gpt2 ? KEY("attention.layer_norm_epsilon") : KEY("attention.layer_norm_rms_epsilon"), &eps);
        if (!is_gpt2) fb_gguf_get_f32(&g, KEY("rope.freq_base"), &theta);
    }
#undef KEY
    const fb_gguf_tensor *emb = s == FB_OK ? fb_gguf_find_tensor(&g, "token_embd.weight") : NULL;
    if (s == FB_OK && !emb) s = fb_fail(FB_ERR_FORMAT, "%s: tensor token_embd.weight is missing", path);
    gguf_sizes z = {0};
    if (s == FB_OK) {
        z.is_gpt2 = is_gpt2;
        z.layers = layers;
        snprintf(z.kC, sizeof z.kC, "%s.embedding_length", A);
        snprintf(z.kff, sizeof z.kff, "%s.feed_forward_length", A);
        snprintf(z.kKV, sizeof z.kKV, "%s.attention.head_count_kv x head_dim", A);
        snprintf(z.kctx, sizeof z.kctx, "%s.context_length", A);
        z.C = (gguf_dim){dim, z.kC};
        z.ff = (gguf_dim){ff, z.kff};
        z.KV = (gguf_dim){heads ? (uint64_t)kvh * (dim / heads) : 0, z.kKV};
        z.V = (gguf_dim){emb->n_rows, "vocabulary size"};
        z.ctx = (gguf_dim){ctx, z.kctx};
        z.one = (gguf_dim){1, "1"};
        /* each layer has at least 6 tensors: a block_count the file cannot
         * hold is refused before anything is sized by it */
        if ((uint64_t)layers * 6 > g.n_tensors)
            s = fb_fail(FB_ERR_FORMAT, "%s: %s.block_count = %u, but the file has only %llu tensors", path, A, layers,
                        (unsigned long long)g.n_tensors);
    }
    if (s == FB_OK) {
        fb_model_config mc = {0};
        if (is_gpt2) {
            mc.block = fb_block_config_gpt2((int)dim, (int)heads);
            mc.block.d_ff = (int)ff;
        } else {
            mc.block = fb_block_config_llama((int)dim, (int)heads, (int)kvh, (int)ff);
            mc.block.rope_theta = theta;
        }
        mc.block.norm_eps = eps;
        mc.n_layers = (int)layers;
        mc.vocab_size = (int)emb->n_rows;
        mc.max_seq = (int)ctx;
        mc.tied = fb_gguf_find_tensor(&g, "output.weight") == NULL;
        s = fb_model_plan_weights(&m, &mc, w);
        if (s != FB_OK) s = fb_fail(FB_ERR_FORMAT, "%s: unusable config: %s", path, fb_last_error());
    }
    if (s == FB_OK) s = gguf_tensors(&g, path, m, &z, q8);   /* shapes only */
    if (s == FB_OK) s = fb_model_alloc(m, 0);   /* inference: no gradients */
    if (s == FB_OK) s = gguf_tensors(&g, path, m, &z, q8);   /* and the data */
    if (s == FB_OK) s = gguf_tokenizer(&g, path, tok);
    fb_gguf_close(&g);
    if (s != FB_OK) { fb_model_free(m); return s; }
    *out = m;
    return FB_OK;
}

fb_status fb_tokenizer_load_for_model(fb_tokenizer **out, const char *spec, int vocab_size) {
    if (!out || !spec) return fb_fail(FB_ERR_INVALID_ARG, "tokenizer: NULL argument");
    if (strchr(spec, ':') || !strcmp(spec, "byte")) return fb_tokenizer_load(out, spec);
    FILE *f = fopen(spec, "rb");
    if (!f) return fb_fail(FB_ERR_IO, "%s: cannot open", spec);
    char head[14] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got == sizeof head && !memcmp(head, "flashblock-bpe", sizeof head)) return fb_tokenizer_load(out, spec);
    return fb_tokenizer_load_llama2c(out, spec, vocab_size);
}

fb_status fb_model_load_any(const char *path, fb_model **m, fb_tokenizer **tok, fb_model_format *fmt, int *q8) {
    return fb_model_load_weights(path, FB_MODEL_F32, m, tok, fmt, q8);
}

fb_status fb_model_load_weights(const char *path, fb_model_weights w, fb_model **m, fb_tokenizer **tok,
                                fb_model_format *fmt, int *q8) {
    if (!path || !m || !tok) return fb_fail(FB_ERR_INVALID_ARG, "model load: NULL argument");
    *m = NULL;
    *tok = NULL;
    int q8_local = 0;
    if (!q8) q8 = &q8_local;
    *q8 = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fb_fail(FB_ERR_IO, "%s: cannot open", path);
    unsigned char h[9] = {0};
    size_t got = fread(h, 1, 9, f);
    fclose(f);
    if (got < 4) return fb_fail(FB_ERR_FORMAT, "%s: file too short (%zu bytes) to be a model", path, got);
    uint32_t magic;
    memcpy(&magic, h, 4);
    fb_model_format kind;
    if (!memcmp(h, "GGUF", 4)) kind = FB_FMT_GGUF;
    else if (got == 9 && h[8] == '{') kind = FB_FMT_SAFETENSORS;
    else if (magic == 20240326u) kind = FB_FMT_LLMC;
    else kind = FB_FMT_LLAMA2C;
    if (fmt) *fmt = kind;
    switch (kind) {
    case FB_FMT_GGUF: return load_gguf(path, m, tok, q8, w);
    case FB_FMT_LLMC: return load_llmc(path, m, w);
    case FB_FMT_LLAMA2C: return load_llama2c(path, m, q8, w);
    case FB_FMT_SAFETENSORS: {
        fb_train_state st;
        FB_TRY(fb_checkpoint_load_weights(path, w, m, NULL, &st));
        if (fb_tokenizer_load(tok, st.tokenizer) != FB_OK) *tok = NULL;   /* the caller may give -z */
        return FB_OK;
    }
    }
    return FB_OK;
}
