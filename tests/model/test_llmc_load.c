/*
 * llm.c GPT-2 checkpoints load into the gpt2 preset: a model written in
 * llm.c's layout (version 3 fp32 and version 5 bf16, padded vocabulary) by
 * this test comes back through fb_model_load_any with every tensor equal
 * (bf16: within bf16 rounding) and the same logits.
 */
#include "flashblock.h"
#include "infer/engine.h"
#include "infer/model_load.h"
#include "model/model.h"
#include "test_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFF + ((u >> 16) & 1);   /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static void put(FILE *f, const float *x, size_t n, int bf16) {
    for (size_t i = 0; i < n; i++) {
        if (bf16) { uint16_t h = to_bf16(x[i]); fwrite(&h, 2, 1, f); }
        else fwrite(&x[i], 4, 1, f);
    }
}

static float *T(fb_model *m, const char *name) { return fb_model_tensor(m, fb_model_find_tensor(m, name), NULL, NULL); }

/* llm.c order: wte, wpe, then each parameter kind for all layers, then lnf. */
static void write_llmc(const char *path, fb_model *m, int Vp, int bf16) {
    const fb_model_config *c = fb_model_get_config(m);
    const int C = c->block.d_model, L = c->n_layers, V = c->vocab_size;
    int32_t hdr[256] = {20240326, bf16 ? 5 : 3, c->max_seq, V, L, c->block.n_heads, C, Vp};
    FILE *f = fopen(path, "wb");
    fwrite(hdr, 4, 256, f);
    float *wte = calloc((size_t)Vp * C, 4);
    memcpy(wte, T(m, "token_embd.weight"), sizeof(float) * (size_t)V * C);
    put(f, wte, (size_t)Vp * C, bf16);
    free(wte);
    put(f, T(m, "position_embd.weight"), (size_t)c->max_seq * C, bf16);
    const char *kinds[12] = {"attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias", "attn_output.weight",
                             "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight", "ffn_up.bias",
                             "ffn_down.weight", "ffn_down.bias"};
    for (int k = 0; k < 12; k++)
        for (int l = 0; l < L; l++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s", l, kinds[k]);
            int i = fb_model_find_tensor(m, name);
            int nd;
            int64_t sh[2];
            float *t = fb_model_tensor(m, i, &nd, sh);
            put(f, t, (size_t)(sh[0] * sh[1]), bf16);
        }
    put(f, T(m, "output_norm.weight"), (size_t)C, bf16);
    put(f, T(m, "output_norm.bias"), (size_t)C, bf16);
    fclose(f);
}

int main(void) {
    fb_model_config c = {0};
    c.block = fb_block_config_gpt2(64, 4);
    c.n_layers = 2; c.vocab_size = 100; c.max_seq = 32; c.tied = 1;
    fb_model *m;
    if (fb_model_init(&m, &c) != FB_OK) return 1;
    fb_model_init_random(m, 9);
    for (int i = 0; i < fb_model_num_tensors(m); i++) {   /* non-trivial norms and biases */
        int nd;
        int64_t sh[2];
        float *t = fb_model_tensor(m, i, &nd, sh);
        for (int64_t k = 0; k < sh[0] * sh[1]; k++) t[k] += 0.01f * (float)((k * 37 + i) % 11);
    }
    char path[] = "/tmp/fb_llmc_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    for (int bf16 = 0; bf16 <= 1; bf16++) {
        write_llmc(path, m, 128, bf16);
        fb_model *r = NULL;
        fb_tokenizer *tok = NULL;
        fb_model_format fmt;
        FB_CHECK(fb_model_load_any(path, &r, &tok, &fmt, NULL) == FB_OK, "load v%d: %s", bf16 ? 5 : 3, fb_last_error());
        if (!r) continue;
        FB_CHECK(fmt == FB_FMT_LLMC && tok == NULL, "format detection");
        FB_CHECK(fb_model_num_tensors(r) == fb_model_num_tensors(m), "tensor count");
        double worst = 0;
        for (int i = 0; i < fb_model_num_tensors(m); i++) {
            int nd;
            int64_t sh[2];
            const float *a = fb_model_tensor(m, i, &nd, sh);
            int j = fb_model_find_tensor(r, fb_model_tensor_name(m, i));
            FB_CHECK(j >= 0, "missing %s", fb_model_tensor_name(m, i));
            if (j < 0) continue;
            double e = fb_test_max_rel_err(fb_model_tensor(r, j, NULL, NULL), a, (size_t)(sh[0] * sh[1]), 1e-6);
            if (e > worst) worst = e;
        }
        printf("llm.c v%d: worst tensor rel err %.3g\n", bf16 ? 5 : 3, worst);
        FB_CHECK(worst <= (bf16 ? 8e-3 : 0.0), "v%d tensors differ: %.3g", bf16 ? 5 : 3, worst);
        /* the same next-token logits */
        fb_engine e1, e2;
        fb_engine_init(&e1, m, &(fb_engine_options){.n_seqs = 1, .max_T = 32, .max_rows = 32});
        fb_engine_init(&e2, r, &(fb_engine_options){.n_seqs = 1, .max_T = 32, .max_rows = 32});
        int32_t ids[16];
        int seq[16] = {0};
        for (int i = 0; i < 16; i++) ids[i] = (i * 13) % 100;
        fb_engine_step(&e1, 16, seq, ids, NULL);
        fb_engine_step(&e2, 16, seq, ids, NULL);
        double le = fb_test_max_rel_err(e2.logits, e1.logits, 16 * 100, 1e-6);
        FB_CHECK(le <= (bf16 ? 5e-2 : 1e-6), "v%d logits differ: %.3g", bf16 ? 5 : 3, le);
        fb_engine_free(&e1);
        fb_engine_free(&e2);
        fb_model_free(r);
    }
    /* a truncated file is an error, not a crash */
    FILE *f = fopen(path, "r+b");
    if (f) { fclose(f); if (truncate(path, 5000) != 0) perror("truncate"); }
    fb_model *r = NULL;
    fb_tokenizer *tok = NULL;
    FB_CHECK(fb_model_load_any(path, &r, &tok, NULL, NULL) == FB_ERR_FORMAT, "truncated llm.c file accepted");
    remove(path);
    fb_model_free(m);
    return fb_test_finish("test_llmc_load");
}
