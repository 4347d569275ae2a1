/*
 * Loading straight into Q8_0 (fb_model_load_weights with FB_MODEL_Q8_0,
 * fb_llm_load_ex with FB_WEIGHTS_Q8_0) gives the same bits as the route it
 * replaces (load fp32, then quantize every matrix with fb_q8_0_quantize, as
 * the engine's build_q8 does), and holds no fp32 copy of the matrices.
 *
 * For random models (llama tied and untied with GQA, a d_ff that is not a
 * multiple of 32 so down stays fp32; gpt2 with learned positions and
 * biases, one with a d_model that is not a multiple of 32 so only down is
 * Q8_0) written as llama2.c v0, GGUF f32/f16/Q8_0, flashblock safetensors
 * and llm.c, each file is loaded both ways and:
 *   - every Q8_0 slot (per layer qkv, out, gate|up or up, down; the LM head;
 *     the token embedding) equals fb_q8_0_quantize of the fp32-loaded
 *     tensor, byte for byte (f16 sources: of the decoded f16 values);
 *   - for a Q8_0 GGUF the slots are the file's blocks exactly, and these
 *     equal what requantizing their dequantized values gives (the fp32
 *     route), because every block fb_q8_0_quantize writes has max |q| = 127
 *     (d·127 and d·q are exact in fp32, so requantizing returns d and q);
 *   - the tensors left in fp32 equal the fp32 load's, and Q8_0 tensors have
 *     no fp32 data (fb_model_tensor NULL);
 *   - fb_model_weight_bytes is the Q8_0 store plus those fp32 tensors, with
 *     at most alignment padding beyond them;
 *   - logits (a prefill chunk, then single-token decode) equal bit for bit
 *     those of the fp32 route with q8 on, once the only difference is taken
 *     out: the direct load reads the embedding through its Q8_0 row, so the
 *     fp32 model's embedding is first replaced by dequantize(quantize(row)).
 *     For a Q8_0 GGUF no replacement is needed: the fp32 route dequantizes
 *     the same blocks.
 * And the rules: an engine without q8 on a Q8_0-only model, fb_model_forward
 * on it, and a session with q8 = 0 on an FB_WEIGHTS_Q8_0 llm are
 * FB_ERR_UNSUPPORTED; through the public API a Q8_0 llm generates the same
 * tokens as the fp32 llm with q8 for a Q8_0 GGUF.
 * With "real": the same checks on stories260K.bin from the shared data.
 */
#include "core/error.h"
#include "core/q8_0.h"
#include "core/runtime.h"
#include "flashblock.h"
#include "flashblock_infer.h"
#include "infer/convert.h"
#include "infer/engine.h"
#include "infer/model_load.h"
#include "io/gguf.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "test_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- writers ------------------------------------------------------------ */

/* llm.c v3 (fp32, vocabulary unpadded): wte, wpe, each parameter kind for
 * all layers, lnf. */
static int write_llmc(const char *path, fb_model *m) {
    const fb_model_config *c = fb_model_get_config(m);
    const int C = c->block.d_model, L = c->n_layers, V = c->vocab_size;
    int32_t hdr[256] = {20240326, 3, c->max_seq, V, L, c->block.n_heads, C, V};
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(hdr, 4, 256, f);
#define PUT(name, n) fwrite(fb_model_tensor(m, fb_model_find_tensor(m, name), NULL, NULL), sizeof(float), (size_t)(n), f)
    PUT("token_embd.weight", (size_t)V * C);
    PUT("position_embd.weight", (size_t)c->max_seq * C);
    static const char *kinds[12] = {"attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias",
                                    "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias",
                                    "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias"};
    for (int k = 0; k < 12; k++)
        for (int l = 0; l < L; l++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s", l, kinds[k]);
            const int i = fb_model_find_tensor(m, name);
            fwrite(fb_model_tensor(m, i, NULL, NULL), sizeof(float), m->tensors[i].numel, f);
        }
    PUT("output_norm.weight", C);
    PUT("output_norm.bias", C);
#undef PUT
    return fclose(f) == 0;
}

/* ---- checks ------------------------------------------------------------- */

/* The fp32 matrix behind Q8_0 slot `slot` of model r (rows, cols), as the
 * engine's build_q8 finds it. */
static const float *slot_matrix(fb_model *r, int slot, int64_t *rows, int64_t *cols) {
    const fb_block_config *c = &r->cfg.block;
    const int L = r->cfg.n_layers;
    const int64_t C = c->d_model, D = C / c->n_heads, QKV = (c->n_heads + 2 * c->n_kv_heads) * D, F = c->d_ff;
    if (slot >= L * FB_BM_COUNT) {
        *rows = r->cfg.vocab_size;
        *cols = C;
        return r->params + (slot == fb_model_q8_slot_lm(r) ? r->off_lm : r->off_wte);
    }
    const float *p = fb_model_block_params(r, slot / FB_BM_COUNT);
    switch (slot % FB_BM_COUNT) {
    case FB_BM_QKV: *rows = QKV; *cols = C; return p + r->blk.offset[FB_P_ATTN_QKV_W];
    case FB_BM_OUT: *rows = C; *cols = C; return p + r->blk.offset[FB_P_ATTN_OUT_W];
    case FB_BM_UP:
        *rows = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
        *cols = C;
        return p + r->blk.offset[c->mlp == FB_MLP_SWIGLU ? FB_P_FFN_GATE_W : FB_P_FFN_UP_W];
    default: *rows = C; *cols = F; return p + r->blk.offset[FB_P_FFN_DOWN_W];
    }
}

/* Logits of the engine on m (q8 on): a 9-token prefill, then 6 decode steps. */
#define N_PRE 9
#define N_DEC 6
static float *run_logits(fb_model *m) {
    const int V = m->cfg.vocab_size, T = N_PRE + N_DEC;
    fb_engine e;
    if (fb_engine_init(&e, m, &(fb_engine_options){.n_seqs = 1, .max_T = T, .max_rows = N_PRE, .q8 = 1}) != FB_OK) {
        FB_CHECK(0, "engine: %s", fb_last_error());
        return NULL;
    }
    float *out = malloc(sizeof(float) * (size_t)V * T);
    int32_t ids[N_PRE + N_DEC];
    int seqs[N_PRE] = {0};
    for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 7 + 3) % V);
    fb_status s = fb_engine_step(&e, N_PRE, seqs, ids, NULL);
    if (s == FB_OK) memcpy(out, e.logits, sizeof(float) * (size_t)V * N_PRE);
    for (int i = N_PRE; s == FB_OK && i < T; i++) {
        s = fb_engine_step(&e, 1, seqs, ids + i, NULL);
        memcpy(out + (size_t)i * V, e.logits, sizeof(float) * (size_t)V);
    }
    FB_CHECK(s == FB_OK, "engine step: %s", fb_last_error());
    fb_engine_free(&e);
    return out;
}

/* Loads path both ways and checks everything listed at the top. q8_file:
 * the file stores Q8_0 matrices (GGUF). */
static void check_file(const char *what, const char *path, int q8_file) {
    fb_model *r = NULL, *q = NULL;
    fb_tokenizer *tok = NULL;
    fb_model_format fmt;
    if (fb_model_load_any(path, &r, &tok, &fmt, NULL) != FB_OK) { FB_CHECK(0, "%s: fp32 load: %s", what, fb_last_error()); return; }
    fb_tokenizer_free(tok);
    tok = NULL;
    double t0 = fb_now_sec();
    if (fb_model_load_weights(path, FB_MODEL_Q8_0, &q, &tok, NULL, NULL) != FB_OK) {
        FB_CHECK(0, "%s: Q8_0 load: %s", what, fb_last_error());
        fb_model_free(r);
        return;
    }
    const double load_s = fb_now_sec() - t0;
    fb_tokenizer_free(tok);
    int slots = 0, bad_slots = 0;
    size_t q8_need = 0;
    /* 1. every slot equals fb_q8_0_quantize of the fp32-loaded matrix */
    for (int sl = 0; sl < q->n_q8; sl++) {
        int64_t rows, cols;
        const float *W = slot_matrix(r, sl, &rows, &cols);
        const int expect_q8 = cols % FB_Q8_0_BLOCK == 0;
        FB_CHECK(!q->q8[sl] == !expect_q8, "%s: slot %d (cols %lld) is %s", what, sl, (long long)cols, q->q8[sl] ? "Q8_0" : "fp32");
        if (!q->q8[sl] || !expect_q8) continue;
        const size_t bytes = fb_q8_0_row_bytes(cols) * (size_t)rows;
        if (!(sl == fb_model_q8_slot_emb(q) && q->cfg.tied)) q8_need += bytes;
        uint8_t *want = malloc(bytes);
        fb_q8_0_quantize(want, W, rows, cols);
        slots++;
        if (memcmp(want, q->q8[sl], bytes)) {
            bad_slots++;
            FB_CHECK(0, "%s: Q8_0 slot %d differs from quantizing the fp32 load", what, sl);
        }
        free(want);
    }
    if (q->cfg.tied) FB_CHECK(q->q8[fb_model_q8_slot_emb(q)] == q->q8[fb_model_q8_slot_lm(q)], "%s: tied: two copies", what);
    /* 2. a Q8_0 file: the slots hold its blocks exactly */
    if (q8_file) {
        fb_gguf g;
        FB_CHECK(fb_gguf_open(&g, path) == FB_OK, "%s: %s", what, fb_last_error());
        int copied = 0;
        for (uint64_t k = 0; k < g.n_tensors; k++) {
            const fb_gguf_tensor *t = &g.tensors[k];
            if (t->type != FB_GGML_Q8_0) continue;
            /* where it went: llama q/k/v and gate/up are rows of fused tensors */
            char name[128];
            snprintf(name, sizeof name, "%s", t->name);
            int64_t row0 = 0;
            char *suf = strstr(name, "attn_");
            if (suf && (!strncmp(suf, "attn_q.", 7) || !strncmp(suf, "attn_k.", 7) || !strncmp(suf, "attn_v.", 7))) {
                const int64_t C = q->cfg.block.d_model, KV = (int64_t)q->cfg.block.n_kv_heads * (C / q->cfg.block.n_heads);
                row0 = suf[5] == 'q' ? 0 : suf[5] == 'k' ? C : C + KV;
                memcpy(suf, "attn_qkv.weight", 16);
            }
            const int i = fb_model_find_tensor(q, name);
            FB_CHECK(i >= 0, "%s: no model tensor for %s", what, t->name);
            if (i < 0 || q->tensors[i].q8 < 0) continue;   /* kept fp32 (learned positions): checked below */
            const uint8_t *dst = fb_model_tensor_q8_row(q, i, row0);
            FB_CHECK(dst && !memcmp(dst, t->data, t->nbytes), "%s: %s is not the file's blocks", what, t->name);
            copied++;
        }
        FB_CHECK(copied > 0, "%s: no Q8_0 tensor in the file", what);
        fb_gguf_close(&g);
    }
    /* 3. fp32 tensors equal; Q8_0 tensors have no fp32 data */
    size_t f32_need = 0;
    for (int i = 0; i < q->n_tensors; i++) {
        float *a = fb_model_tensor(q, i, NULL, NULL), *b = fb_model_tensor(r, i, NULL, NULL);
        FB_CHECK(!strcmp(q->tensors[i].name, r->tensors[i].name), "%s: tensor %d names differ", what, i);
        if (q->tensors[i].q8 >= 0) { FB_CHECK(!a, "%s: %s: Q8_0 tensor with fp32 data", what, q->tensors[i].name); continue; }
        f32_need += q->tensors[i].numel * sizeof(float);
        FB_CHECK(a && !memcmp(a, b, q->tensors[i].numel * sizeof(float)), "%s: fp32 tensor %s differs", what, q->tensors[i].name);
    }
    /* 4. bytes held: the Q8_0 matrices and the fp32 rest, plus alignment padding */
    const size_t held = fb_model_weight_bytes(q), need = q8_need + f32_need, slack = 64 * (size_t)(q->n_tensors + q->n_q8);
    FB_CHECK(held >= need && held <= need + slack, "%s: %zu weight bytes held for %zu needed", what, held, need);
    /* 5. logits equal bit for bit, the embedding's rounding taken out */
    float *got = run_logits(q);
    if (!q8_file) {
        const int64_t C = r->cfg.block.d_model;
        if (C % FB_Q8_0_BLOCK == 0) {
            uint8_t *row = malloc(fb_q8_0_row_bytes(C));
            for (int v = 0; v < r->cfg.vocab_size; v++) {
                float *x = r->params + r->off_wte + (size_t)v * C;
                fb_q8_0_quantize_row(row, x, C);
                fb_q8_0_dequantize_row(x, row, C);
            }
            free(row);
        }
    }
    float *want = run_logits(r);
    const size_t nl = (size_t)r->cfg.vocab_size * (N_PRE + N_DEC);
    FB_CHECK(got && want && !memcmp(got, want, nl * sizeof(float)), "%s: logits differ from the fp32 route's (max rel err %.3g)",
             what, got && want ? fb_test_max_rel_err(got, want, nl, 1e-6) : -1.0);
    printf("%-34s %-11s %2d Q8_0 slots equal, %zu B held (Q8_0 %zu + fp32 %zu), fp32 load %zu B, logits equal; Q8_0 load %.3f s\n",
           what, fb_model_format_name(fmt), slots, held, q8_need, f32_need, fb_model_weight_bytes(r), load_s);
    (void)bad_slots;
    free(got);
    free(want);
    /* 6. the rules */
    fb_engine e;
    FB_CHECK(fb_engine_init(&e, q, &(fb_engine_options){.n_seqs = 1, .max_T = 4, .max_rows = 4}) == FB_ERR_UNSUPPORTED,
             "%s: engine without q8 on a Q8_0-only model", what);
    FB_CHECK(fb_model_alloc_training(q, 1, 4, 0) == FB_ERR_UNSUPPORTED, "%s: training activations for a Q8_0 model", what);
    float loss;
    int32_t ids[2] = {1, 2};
    FB_CHECK(fb_model_forward(q, ids, ids, 1, 2, &loss) == FB_ERR_UNSUPPORTED, "%s: fb_model_forward on a Q8_0 model", what);
    FB_CHECK(fb_checkpoint_save("/nonexistent/x.safetensors", q, NULL, NULL) == FB_ERR_UNSUPPORTED, "%s: saving a Q8_0 model", what);
    fb_model_free(r);
    fb_model_free(q);
}

/* Greedy tokens of the public API: the fp32 llm with q8 vs the Q8_0 llm. */
#define API_CTX 256
static void check_api(const char *what, const char *path, const char *tokenizer, int expect_equal, int max_tokens) {
    fb_llm *a = NULL, *b = NULL;
    FB_CHECK(fb_llm_load(&a, path, tokenizer) == FB_OK, "%s: %s", what, fb_last_error());
    FB_CHECK(fb_llm_load_ex(&b, path, tokenizer, &(fb_llm_load_options){.weights = FB_WEIGHTS_Q8_0}) == FB_OK, "%s: %s", what,
             fb_last_error());
    fb_llm *bad = NULL;
    FB_CHECK(fb_llm_load_ex(&bad, path, tokenizer, &(fb_llm_load_options){.weights = (fb_weights)7}) == FB_ERR_INVALID_ARG && !bad,
             "%s: unknown weights accepted", what);
    if (!a || !b) { fb_llm_free(a); fb_llm_free(b); return; }
    FB_CHECK(fb_llm_weights(a) == FB_WEIGHTS_F32 && fb_llm_weights(b) == FB_WEIGHTS_Q8_0, "%s: fb_llm_weights", what);
    /* the exact count is checked by check_file; here only that the API reports it */
    FB_CHECK(fb_llm_weight_bytes(b) < fb_llm_weight_bytes(a) / 2, "%s: Q8_0 llm holds %zu bytes, the fp32 one %zu", what,
             fb_llm_weight_bytes(b), fb_llm_weight_bytes(a));
    fb_session_options o = fb_session_options_default();
    o.ctx = API_CTX;
    fb_session *s = NULL;
    FB_CHECK(fb_session_create(&s, b, &o) == FB_ERR_UNSUPPORTED && !s, "%s: session without q8 on a Q8_0 llm", what);
    FB_CHECK(strstr(fb_last_error(), "q8 = 1") != NULL, "%s: message: %s", what, fb_last_error());
    o.q8 = 1;
    int32_t out[2][API_CTX];
    int n[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        fb_session *ss = NULL;
        FB_CHECK(fb_session_create(&ss, k ? b : a, &o) == FB_OK, "%s: %s", what, fb_last_error());
        if (!ss) return;
        fb_gen_params gp = fb_gen_params_default();
        gp.temperature = 0;
        gp.max_tokens = max_tokens;
        gp.stop_at_eos = 0;
        int seq;
        FB_CHECK(fb_seq_new(ss, &gp, &seq) == FB_OK && fb_seq_add_text(ss, seq, "Once upon", 9, 0) == FB_OK, "%s: %s", what,
                 fb_last_error());
        fb_seq_event ev[1];
        while (fb_session_active(ss) > 0) {
            int ne;
            if (fb_session_step(ss, ev, 1, &ne) != FB_OK) { FB_CHECK(0, "%s: step: %s", what, fb_last_error()); break; }
        }
        const int32_t *t = fb_seq_tokens(ss, seq, &n[k]);
        if (n[k] > API_CTX) n[k] = API_CTX;
        memcpy(out[k], t, sizeof(int32_t) * (size_t)n[k]);
        fb_session_free(ss);
    }
    const int same = n[0] == n[1] && !memcmp(out[0], out[1], sizeof(int32_t) * (size_t)n[0]);
    if (expect_equal) FB_CHECK(same, "%s: the Q8_0 llm generates other tokens than the fp32 llm with q8", what);
    printf("%-34s API: %d tokens, %s the fp32 llm with q8's\n", what, n[1], same ? "equal to" : "not equal to");
    fb_llm_free(a);
    fb_llm_free(b);
}

static fb_model *random_model(fb_model_config c, uint64_t seed) {
    fb_model *m = NULL;
    if (fb_model_init(&m, &c) != FB_OK) { FB_CHECK(0, "model: %s", fb_last_error()); return NULL; }
    fb_model_init_random(m, seed);
    for (size_t i = 0; i < m->n_floats; i++) m->params[i] *= 4.0f;   /* logits far from flat */
    return m;
}

static void synthetic(const char *dir) {
    char path[512];
    struct { const char *name; fb_model_config c; } cases[4];
    memset(cases, 0, sizeof cases);
    cases[0].name = "llama GQA tied";
    cases[0].c.block = fb_block_config_llama(64, 4, 2, 96);
    cases[0].c.tied = 1;
    cases[1].name = "llama untied, d_ff 88";
    cases[1].c.block = fb_block_config_llama(64, 4, 4, 88);
    cases[2].name = "gpt2";
    cases[2].c.block = fb_block_config_gpt2(64, 4);
    cases[2].c.tied = 1;
    cases[3].name = "gpt2, d_model 48";
    cases[3].c.block = fb_block_config_gpt2(48, 4);
    cases[3].c.tied = 1;
    for (int k = 0; k < 4; k++) {
        fb_model_config c = cases[k].c;
        c.n_layers = 2;
        c.vocab_size = 300;   /* >= the byte tokenizer's */
        c.max_seq = 32;
        fb_model *m = random_model(c, 11 + (uint64_t)k);
        if (!m) continue;
        const int llama = c.block.positions == FB_POS_ROPE;
        char what[128];
        static const struct { fb_ggml_type t; const char *n; } types[3] = {{FB_GGML_F32, "f32"}, {FB_GGML_F16, "f16"}, {FB_GGML_Q8_0, "q8_0"}};
        for (int t = 0; t < 3; t++) {
            snprintf(path, sizeof path, "%s/m%d_%s.gguf", dir, k, types[t].n);
            snprintf(what, sizeof what, "%s, GGUF %s", cases[k].name, types[t].n);
            FB_CHECK(fb_export_gguf(path, m, types[t].t, NULL) == FB_OK, "%s: %s", what, fb_last_error());
            check_file(what, path, types[t].t == FB_GGML_Q8_0);
            if (k == 0) check_api(what, path, "byte", types[t].t == FB_GGML_Q8_0, 24);
            unlink(path);
        }
        snprintf(path, sizeof path, "%s/m%d.safetensors", dir, k);
        snprintf(what, sizeof what, "%s, safetensors", cases[k].name);
        FB_CHECK(fb_checkpoint_save(path, m, NULL, NULL) == FB_OK, "%s: %s", what, fb_last_error());
        check_file(what, path, 0);
        unlink(path);
        if (llama) {
            snprintf(path, sizeof path, "%s/m%d.bin", dir, k);
            snprintf(what, sizeof what, "%s, llama2.c v0", cases[k].name);
            FB_CHECK(fb_export_llama2c(path, m) == FB_OK, "%s: %s", what, fb_last_error());
            check_file(what, path, 0);
            unlink(path);
        } else {
            snprintf(path, sizeof path, "%s/m%d_llmc.bin", dir, k);
            snprintf(what, sizeof what, "%s, llm.c v3", cases[k].name);
            FB_CHECK(write_llmc(path, m), "%s: cannot write", what);
            check_file(what, path, 0);
            unlink(path);
        }
        fb_model_free(m);
    }
}

/* stories260K.bin, and its Q8_0 GGUF written by our converter. */
static void real(const char *dir) {
    char bin[1024], tokp[1024], q[512];
    snprintf(bin, sizeof bin, "%s", fb_test_data_path("llama2c/stories260K.bin"));
    snprintf(tokp, sizeof tokp, "%s", fb_test_data_path("llama2c/tok512.bin"));
    check_file("stories260K.bin", bin, 0);
    check_api("stories260K.bin", bin, tokp, 0, 240);
    fb_model *m = NULL;
    fb_tokenizer *tok = NULL;
    FB_CHECK(fb_model_load_any(bin, &m, &tok, NULL, NULL) == FB_OK, "%s", fb_last_error());
    snprintf(q, sizeof q, "%s/s260q.gguf", dir);
    FB_CHECK(m && fb_export_gguf(q, m, FB_GGML_Q8_0, tokp) == FB_OK, "quantize: %s", fb_last_error());
    fb_model_free(m);
    check_file("stories260K Q8_0 GGUF", q, 1);
    check_api("stories260K Q8_0 GGUF", q, NULL, 1, 240);
    unlink(q);
}

int main(int argc, char **argv) {
    char dir[] = "/tmp/fb_q8_load_XXXXXX";
    if (!mkdtemp(dir)) { fprintf(stderr, "cannot create a temp dir\n"); return 1; }
    if (argc > 1 && !strcmp(argv[1], "real")) real(dir);
    else synthetic(dir);
    rmdir(dir);
    return fb_test_finish("test_q8_load");
}
