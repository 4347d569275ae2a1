/*
 * Whole-model parity with PyTorch (tests/train/torch_model.py, float64):
 * loss, logits (through the inference engine), every parameter gradient,
 * and the losses of 10 AdamW steps, for a tied gpt2-preset model and an
 * untied llama-preset GQA model, with some targets ignored (-1).
 */
#include "flashblock.h"
#include "infer/engine.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run_case(const char *script, const char *work, const char *name, fb_model_config mc, int B, int T, uint64_t seed) {
    char dir[2048], path[2304], cmd[4096];
    snprintf(dir, sizeof dir, "%s/%s", work, name);
    mkdir(work, 0755);
    mkdir(dir, 0755);
    fb_model *m;
    if (fb_model_init(&m, &mc) != FB_OK) { FB_CHECK(0, "%s: init: %s", name, fb_last_error()); return 0; }
    fb_model_init_random(m, seed);
    fb_test_rng rng;
    fb_test_rng_seed(&rng, seed);
    for (int i = 0; i < fb_model_num_tensors(m); i++) {   /* norms and biases away from 1 and 0 */
        int nd;
        int64_t sh[2];
        float *t = fb_model_tensor(m, i, &nd, sh);
        const char *tn = fb_model_tensor_name(m, i);
        size_t n = (size_t)sh[0] * (size_t)sh[1];
        if (strstr(tn, "norm.weight")) for (size_t k = 0; k < n; k++) t[k] = 1.0f + 0.1f * fb_test_rng_normal(&rng);
        else if (strstr(tn, ".bias")) for (size_t k = 0; k < n; k++) t[k] = 0.05f * fb_test_rng_normal(&rng);
        else for (size_t k = 0; k < n; k++) t[k] *= 4.0f;
    }
    fb_train_state st = {0};
    snprintf(st.tokenizer, sizeof st.tokenizer, "byte");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FB_CHECK(fb_train_checkpoint_save(path, m, NULL, &st) == FB_OK, "%s: save: %s", name, fb_last_error());

    const int N = B * T, steps = 10;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)N), *tgt = malloc(sizeof(int32_t) * (size_t)N);
    for (int i = 0; i < N; i++) {
        ids[i] = (int32_t)(fb_test_rng_u64(&rng) % (uint64_t)mc.vocab_size);
        tgt[i] = (i % 7 == 3) ? -1 : (int32_t)(fb_test_rng_u64(&rng) % (uint64_t)mc.vocab_size);
    }
    const float lr = 1e-3f, wd = 0.1f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f;
    snprintf(path, sizeof path, "%s/batch.bin", dir);
    FILE *f = fopen(path, "wb");
    int32_t hdr[3] = {B, T, steps};
    float hp[5] = {lr, wd, b1, b2, eps};
    fwrite(hdr, 4, 3, f); fwrite(hp, 4, 5, f); fwrite(ids, 4, (size_t)N, f); fwrite(tgt, 4, (size_t)N, f);
    fclose(f);

    /* loss and gradients */
    float loss = 0;
    FB_CHECK(fb_model_alloc_training(m, B, T, 0) == FB_OK, "%s: alloc: %s", name, fb_last_error());
    fb_model_zero_grad(m);
    FB_CHECK(fb_model_forward_backward(m, ids, tgt, B, T, 1.0f, &loss) == FB_OK, "%s: fwd/bwd: %s", name, fb_last_error());
    int nt = fb_model_num_tensors(m);
    fb_st_write_tensor *w = calloc((size_t)nt, sizeof *w);
    uint64_t (*shapes)[2] = calloc((size_t)nt, sizeof *shapes);
    for (int i = 0; i < nt; i++) {
        int nd;
        int64_t sh[2];
        fb_model_tensor(m, i, &nd, sh);
        shapes[i][0] = (uint64_t)sh[0];
        shapes[i][1] = (uint64_t)sh[1];
        w[i] = (fb_st_write_tensor){fb_model_tensor_name(m, i), FB_ST_F32, nd, shapes[i], fb_model_tensor_grad(m, i)};
    }
    snprintf(path, sizeof path, "%s/c_grads.safetensors", dir);
    FB_CHECK(fb_safetensors_write(path, w, (size_t)nt, NULL, 0) == FB_OK, "%s: grads: %s", name, fb_last_error());
    free(w);
    free(shapes);

    /* logits through the inference engine (KV cache path), all rows */
    fb_engine e;
    FB_CHECK(fb_engine_init(&e, m, &(fb_engine_options){.n_seqs = B, .max_T = T, .max_rows = T}) == FB_OK, "%s: engine: %s", name, fb_last_error());
    snprintf(path, sizeof path, "%s/c_logits.bin", dir);
    f = fopen(path, "wb");
    int *seqs = malloc(sizeof(int) * (size_t)T);
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) seqs[t] = b;
        FB_CHECK(fb_engine_step(&e, T, seqs, ids + (size_t)b * T, NULL) == FB_OK, "%s: engine step: %s", name, fb_last_error());
        fwrite(e.logits, sizeof(float), (size_t)T * (size_t)mc.vocab_size, f);
    }
    fclose(f);
    free(seqs);
    fb_engine_free(&e);

    /* 10 AdamW steps on the same batch */
    snprintf(path, sizeof path, "%s/c_results.txt", dir);
    f = fopen(path, "w");
    fprintf(f, "loss %.9g\n", (double)loss);
    fb_adamw opt;
    fb_adamw_config ac = {lr, b1, b2, eps, wd, 0};
    FB_CHECK(fb_adamw_init(&opt, m, &ac) == FB_OK, "%s: adamw: %s", name, fb_last_error());
    snprintf(cmd, sizeof cmd, "%s/model.safetensors", dir);
    fb_model *m2;
    FB_CHECK(fb_train_checkpoint_load(cmd, &m2, NULL, NULL) == FB_OK, "%s: reload: %s", name, fb_last_error());
    for (int i = 0; i < fb_model_num_tensors(m); i++) {
        int nd;
        int64_t sh[2];
        const float *a = fb_model_tensor(m, i, &nd, sh), *b = fb_model_tensor(m2, i, NULL, NULL);
        FB_CHECK(memcmp(a, b, sizeof(float) * (size_t)(sh[0] * sh[1])) == 0, "%s: %s differs after a save/load round trip", name,
                 fb_model_tensor_name(m, i));
    }
    fb_model_alloc_training(m2, B, T, 0);
    for (int s = 0; s < steps; s++) {
        fb_model_zero_grad(m2);
        float l;
        FB_CHECK(fb_model_forward_backward(m2, ids, tgt, B, T, 1.0f, &l) == FB_OK, "%s: step %d: %s", name, s, fb_last_error());
        fb_adamw_step(&opt, m2, lr);
        fprintf(f, "step%d %.9g\n", s, (double)l);
    }
    fclose(f);
    fb_adamw_free(&opt);
    fb_model_free(m2);
    fb_model_free(m);
    free(ids);
    free(tgt);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, dir);
    printf("== %s\n", name);
    fflush(stdout);
    int rc = system(cmd);
    FB_CHECK(rc == 0, "%s: torch comparison failed", name);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: test_model_torch torch_model.py workdir\n"); return 2; }
    if (system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) {
        const char *ci = getenv("CI");
        if (ci && !strcmp(ci, "true")) { fprintf(stderr, "FAIL: /usr/bin/python3 lacks torch/numpy (CI=true)\n"); return 1; }
        fprintf(stderr, "SKIP: /usr/bin/python3 lacks torch/numpy\n");
        return FB_TEST_SKIP;
    }
    fb_model_config g = {0};
    g.block = fb_block_config_gpt2(64, 4);
    g.n_layers = 2; g.vocab_size = 97; g.max_seq = 24; g.tied = 1;
    run_case(argv[1], argv[2], "gpt2_tied", g, 3, 24, 11);
    fb_model_config l = {0};
    l.block = fb_block_config_llama(64, 4, 2, 160);
    l.n_layers = 2; l.vocab_size = 101; l.max_seq = 40; l.tied = 0;
    run_case(argv[1], argv[2], "llama_gqa_untied", l, 2, 37, 12);
    return fb_test_finish("test_model_torch");
}
