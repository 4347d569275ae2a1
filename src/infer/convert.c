#include "infer/convert.h"
#include "core/error.h"
#include "io/atomic_write.h"
#include "io/mapped_file.h"
#include "model/model.h"
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

/* llama2.c tokenizer.bin → pieces ("▁" for spaces, "<0xHH>" kept) and scores. */
static fb_status add_llama2c_vocab(fb_gguf_writer *w, const char *path, int vocab) {
    fb_mapped_file mf;
    FB_TRY(fb_mapped_file_open(&mf, path));
    fb_status s = FB_OK;
    char **pieces = calloc((size_t)vocab, sizeof *pieces);
    uint64_t *lens = calloc((size_t)vocab, sizeof *lens);
    float *scores = calloc((size_t)vocab, sizeof *scores);
    int32_t *types = calloc((size_t)vocab, sizeof *types);
    if (!pieces || !lens || !scores || !types) s = fb_fail(FB_ERR_OOM, "%s: out of memory", path);
    uint64_t off = 4;
    for (int i = 0; s == FB_OK && i < vocab; i++) {
        int32_t len;
        if (off + 8 > mf.size) { s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: truncated at token %d of %d", path, (unsigned long long)off, i, vocab); break; }
        memcpy(&scores[i], mf.data + off, 4);
        memcpy(&len, mf.data + off + 4, 4);
        off += 8;
        if (len < 0 || off + (uint64_t)len > mf.size) { s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: bad length %d for token %d", path, (unsigned long long)off - 4, len, i); break; }
        /* spaces become U+2581 as SentencePiece stores them */
        size_t cap = (size_t)len * 3 + 1, k = 0;
        pieces[i] = malloc(cap);
        if (!pieces[i]) { s = fb_fail(FB_ERR_OOM, "%s: out of memory", path); break; }
        for (int32_t j = 0; j < len; j++) {
            unsigned char ch = mf.data[off + (uint64_t)j];
            if (ch == ' ') { pieces[i][k++] = (char)0xE2; pieces[i][k++] = (char)0x96; pieces[i][k++] = (char)0x81; }
            else pieces[i][k++] = (char)ch;
        }
        lens[i] = k;
        off += (uint64_t)len;
        types[i] = (i < 3) ? (i == 0 ? 2 : 3) : (len == 6 && !memcmp(mf.data + off - 6, "<0x", 3) ? 6 : 1);
    }
    if (s == FB_OK) s = fb_gguf_writer_add_string(w, "tokenizer.ggml.model", "llama");
    if (s == FB_OK) s = fb_gguf_writer_add_string_array(w, "tokenizer.ggml.tokens", (const char *const *)pieces, lens, (uint64_t)vocab);
    if (s == FB_OK) s = fb_gguf_writer_add_f32_array(w, "tokenizer.ggml.scores", scores, (uint64_t)vocab);
    if (s == FB_OK) s = fb_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", types, (uint64_t)vocab);
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    for (int i = 0; pieces && i < vocab; i++) free(pieces[i]);
    free(pieces); free(lens); free(scores); free(types);
    fb_mapped_file_close(&mf);
    return s;
}

fb_status fb_export_gguf(const char *path, fb_model *m, fb_ggml_type mtype, const char *tokenizer_bin) {
    const fb_model_config *c = &m->cfg;
    const fb_block_config *b = &c->block;
    const int llama = b->positions == FB_POS_ROPE && b->norm == FB_NORM_RMSNORM && b->mlp == FB_MLP_SWIGLU && !b->bias;
    const int gpt2 = b->positions == FB_POS_LEARNED && b->norm == FB_NORM_LAYERNORM && b->mlp == FB_MLP_GELU_TANH &&
                     b->bias && b->n_kv_heads == b->n_heads;
    if (!llama && !gpt2)
        return fb_fail(FB_ERR_UNSUPPORTED, "GGUF export: the model is neither the llama nor the gpt2 preset (GGUF has no architecture for it)");
    fb_gguf_writer *w;
    FB_TRY(fb_gguf_writer_init(&w));
    const char *arch = llama ? "llama" : "gpt2";
    char key[128];
    fb_status s = fb_gguf_writer_add_string(w, "general.architecture", arch);
    if (s == FB_OK) s = fb_gguf_writer_add_string(w, "general.name", "flashblock");
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, "general.file_type", mtype == FB_GGML_Q8_0 ? 7 : mtype == FB_GGML_F16 ? 1 : 0);
#define KEY(k) (snprintf(key, sizeof key, "%s." k, arch), key)
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, KEY("context_length"), (uint32_t)c->max_seq);
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, KEY("embedding_length"), (uint32_t)b->d_model);
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, KEY("feed_forward_length"), (uint32_t)b->d_ff);
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, KEY("block_count"), (uint32_t)c->n_layers);
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, KEY("attention.head_count"), (uint32_t)b->n_heads);
    if (s == FB_OK) s = fb_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)b->n_kv_heads);
    if (llama) {
        if (s == FB_OK) s = fb_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), b->norm_eps);
        if (s == FB_OK) s = fb_gguf_writer_add_f32(w, KEY("rope.freq_base"), b->rope_theta);
        if (s == FB_OK) s = fb_gguf_writer_add_u32(w, KEY("rope.dimension_count"), (uint32_t)(b->d_model / b->n_heads));
    } else if (s == FB_OK) {
        s = fb_gguf_writer_add_f32(w, KEY("attention.layer_norm_epsilon"), b->norm_eps);
    }
#undef KEY
    if (s == FB_OK && tokenizer_bin) s = add_llama2c_vocab(w, tokenizer_bin, c->vocab_size);
    const int64_t C = b->d_model, D = C / b->n_heads, KV = (int64_t)b->n_kv_heads * D;
    for (int i = 0; s == FB_OK && i < m->n_tensors; i++) {
        const fb_model_tensor_info *t = &m->tensors[i];
        const float *data = m->params + t->offset;
        uint64_t ne[2] = {(uint64_t)(t->ndim == 2 ? t->shape[1] : t->shape[0]), (uint64_t)t->shape[0]};   /* ne[0] = row length */
        fb_ggml_type ty = (t->ndim == 2 && t->shape[1] % 32 == 0) ? mtype : FB_GGML_F32;
        if (t->ndim == 2 && mtype == FB_GGML_F16) ty = FB_GGML_F16;
        const char *qkv = strstr(t->name, "attn_qkv.weight");
        if (llama && qkv) {   /* llama.cpp's llama architecture wants Q, K, V separately */
            char nm[96];
            int layer = atoi(t->name + 4);
            uint64_t neq[2] = {(uint64_t)C, (uint64_t)C}, nek[2] = {(uint64_t)C, (uint64_t)KV};
            snprintf(nm, sizeof nm, "blk.%d.attn_q.weight", layer);
            s = fb_gguf_writer_add_tensor_f32(w, nm, ty, 2, neq, data);
            snprintf(nm, sizeof nm, "blk.%d.attn_k.weight", layer);
            if (s == FB_OK) s = fb_gguf_writer_add_tensor_f32(w, nm, ty, 2, nek, data + C * C);
            snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", layer);
            if (s == FB_OK) s = fb_gguf_writer_add_tensor_f32(w, nm, ty, 2, nek, data + C * C + KV * C);
            continue;
        }
        s = fb_gguf_writer_add_tensor_f32(w, t->name, ty, (uint32_t)t->ndim, ne, data);
    }
    if (s == FB_OK) s = fb_gguf_writer_write(w, path);
    fb_gguf_writer_free(w);
    return s;
}

fb_status fb_export_llama2c(const char *path, fb_model *m) {
    const fb_model_config *c = &m->cfg;
    const fb_block_config *b = &c->block;
    if (!(b->positions == FB_POS_ROPE && b->norm == FB_NORM_RMSNORM && b->mlp == FB_MLP_SWIGLU && !b->bias))
        return fb_fail(FB_ERR_UNSUPPORTED, "llama2.c export: only llama-preset models (RMSNorm, SwiGLU, RoPE, no biases)");
    const int L = c->n_layers;
    const size_t C = (size_t)b->d_model, D = C / (size_t)b->n_heads, KV = (size_t)b->n_kv_heads * D, F = (size_t)b->d_ff;
    int32_t hdr[7] = {b->d_model, b->d_ff, L, b->n_heads, b->n_kv_heads, c->tied ? c->vocab_size : -c->vocab_size, c->max_seq};
    fb_atomic_file af;
    FB_TRY(fb_atomic_open(&af, path));
    fb_status s = fb_atomic_write(&af, hdr, sizeof hdr);
#define W(ptr, n) do { if (s == FB_OK) s = fb_atomic_write(&af, (ptr), sizeof(float) * (size_t)(n)); } while (0)
    W(m->params + m->off_wte, (size_t)c->vocab_size * C);
    const fb_block_layout *BL = &m->blk;
#define EACH(expr, n) for (int l = 0; l < L; l++) { const float *p = fb_model_block_params(m, l); (void)p; W(expr, n); }
    EACH(p + BL->offset[FB_P_ATTN_NORM_W], C);
    EACH(p + BL->offset[FB_P_ATTN_QKV_W], C * C);
    EACH(p + BL->offset[FB_P_ATTN_QKV_W] + C * C, KV * C);
    EACH(p + BL->offset[FB_P_ATTN_QKV_W] + C * C + KV * C, KV * C);
    EACH(p + BL->offset[FB_P_ATTN_OUT_W], C * C);
    EACH(p + BL->offset[FB_P_FFN_NORM_W], C);
    EACH(p + BL->offset[FB_P_FFN_GATE_W], F * C);
    EACH(p + BL->offset[FB_P_FFN_DOWN_W], C * F);
    EACH(p + BL->offset[FB_P_FFN_UP_W], F * C);
#undef EACH
    W(m->params + m->off_normf_w, C);
    /* freq_cis_real / imag tables (run.c skips them; written for completeness) */
    const size_t half = D / 2;
    float *tab = malloc(sizeof(float) * (size_t)c->max_seq * half * 2);
    if (!tab && s == FB_OK) s = fb_fail(FB_ERR_OOM, "llama2.c export: out of memory");
    if (tab) {
        for (int pos = 0; pos < c->max_seq; pos++)
            for (size_t i = 0; i < half; i++) {
                double ang = pos * pow(b->rope_theta, -(double)(2 * i) / (double)D);
                tab[(size_t)pos * half + i] = (float)cos(ang);
                tab[(size_t)c->max_seq * half + (size_t)pos * half + i] = (float)sin(ang);
            }
        W(tab, (size_t)c->max_seq * half * 2);
        free(tab);
    }
    if (!c->tied) W(m->params + m->off_lm, (size_t)c->vocab_size * C);
#undef W
    if (s != FB_OK) { fb_atomic_abort(&af); return s; }
    return fb_atomic_commit(&af);
}
