/*
 * flashblock inspect against an independent PyTorch computation
 * (tests/model/torch_inspect.py, float64): attention entropy, mean
 * distance, first/previous-token shares, losses with each block's attention
 * or MLP removed, residual norms and the attention maps, to 1e-5, for a
 * tied gpt2-preset model and an untied llama-preset GQA (RoPE) model; the
 * library on windows given here (the last batch partial), and the CLI's
 * --json on a data file. Also: the weights are bitwise unchanged afterwards
 * and the results do not depend on the thread count.
 */
#include "flashblock.h"
#include "model/inspect.h"
#include "model/model.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void put_array(FILE *f, const char *key, const double *v, size_t n) {
    fprintf(f, "%s", key);
    for (size_t i = 0; i < n; i++) fprintf(f, " %.17g", v[i]);
    fprintf(f, "\n");
}

static void run_case(const char *cli, const char *script, const char *work, const char *name, fb_model_config mc,
                     int W, int T, int batch, int S, uint64_t seed) {
    char dir[2048], path[2304], cmd[8192];
    snprintf(dir, sizeof dir, "%s/%s", work, name);
    mkdir(work, 0755);
    mkdir(dir, 0755);
    fb_model *m;
    if (fb_model_init(&m, &mc) != FB_OK) { FB_CHECK(0, "%s: init: %s", name, fb_last_error()); return; }
    fb_model_init_random(m, seed);
    fb_test_rng rng;
    fb_test_rng_seed(&rng, seed);
    for (int i = 0; i < fb_model_num_tensors(m); i++) {   /* sharper attention, norms/biases away from 1/0 */
        int nd;
        int64_t sh[2];
        float *t = fb_model_tensor(m, i, &nd, sh);
        const char *tn = fb_model_tensor_name(m, i);
        size_t n = (size_t)sh[0] * (size_t)sh[1];
        if (strstr(tn, "norm.weight")) for (size_t k = 0; k < n; k++) t[k] = 1.0f + 0.1f * fb_test_rng_normal(&rng);
        else if (strstr(tn, ".bias")) for (size_t k = 0; k < n; k++) t[k] = 0.05f * fb_test_rng_normal(&rng);
        else if (strstr(tn, "attn_qkv")) for (size_t k = 0; k < n; k++) t[k] *= 12.0f;
        else for (size_t k = 0; k < n; k++) t[k] *= 4.0f;
    }
    fb_train_state st = {0};
    snprintf(st.tokenizer, sizeof st.tokenizer, "byte");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FB_CHECK(fb_train_checkpoint_save(path, m, NULL, &st) == FB_OK, "%s: save: %s", name, fb_last_error());

    /* windows; some ids repeat so that attention has something to find */
    const size_t nw = (size_t)W * (size_t)(T + 1);
    int32_t *win = malloc(sizeof(int32_t) * nw);
    for (size_t i = 0; i < nw; i++)
        win[i] = (i % 5 == 4 && i > 8) ? win[i - 7] : (int32_t)(fb_test_rng_u64(&rng) % (uint64_t)mc.vocab_size);
    snprintf(path, sizeof path, "%s/windows.bin", dir);
    FILE *f = fopen(path, "wb");
    int32_t hdr[3] = {W, T, S};
    fwrite(hdr, 4, 3, f);
    fwrite(win, 4, nw, f);
    fclose(f);

    float *before = malloc(sizeof(float) * m->n_floats);
    memcpy(before, m->params, sizeof(float) * m->n_floats);
    fb_inspect_report r, r1;
    const fb_inspect_config ic = {.ctx = T, .batch = batch, .map_tokens = S};
    const int threads = fb_get_threads();
    FB_CHECK(fb_inspect_run(m, win, W, &ic, &r) == FB_OK, "%s: inspect: %s", name, fb_last_error());
    FB_CHECK(memcmp(before, m->params, sizeof(float) * m->n_floats) == 0, "%s: the weights changed", name);
    fb_set_threads(1);
    FB_CHECK(fb_inspect_run(m, win, W, &ic, &r1) == FB_OK, "%s: inspect (1 thread): %s", name, fb_last_error());
    fb_set_threads(threads);
    const size_t LH = (size_t)mc.n_layers * (size_t)mc.block.n_heads;
    FB_CHECK(memcmp(r.entropy, r1.entropy, LH * sizeof(double)) == 0 && memcmp(r.first, r1.first, LH * sizeof(double)) == 0,
             "%s: attention statistics depend on the thread count", name);
    fb_inspect_report_free(&r1);

    snprintf(path, sizeof path, "%s/c_results.txt", dir);
    f = fopen(path, "w");
    put_array(f, "loss", &r.loss, 1);
    put_array(f, "loss_no_attn", r.loss_no_attn, (size_t)mc.n_layers);
    put_array(f, "loss_no_mlp", r.loss_no_mlp, (size_t)mc.n_layers);
    put_array(f, "resid_norm", r.resid_norm, (size_t)mc.n_layers + 1);
    put_array(f, "entropy", r.entropy, LH);
    put_array(f, "distance", r.distance, LH);
    put_array(f, "first", r.first, LH);
    put_array(f, "prev", r.prev, LH);
    fclose(f);
    snprintf(path, sizeof path, "%s/c_maps.bin", dir);
    f = fopen(path, "wb");
    fwrite(r.maps, sizeof(float), LH * (size_t)S * (size_t)S, f);
    fclose(f);
    fb_inspect_report_free(&r);

    /* the CLI on a data file (byte tokens), --json */
    snprintf(path, sizeof path, "%s/data.txt", dir);
    f = fopen(path, "wb");
    for (int i = 0; i < 3000; i++) fputc(i % 9 == 8 ? 'e' : (int)('a' + fb_test_rng_u64(&rng) % 20), f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' inspect -m '%s/model.safetensors' --data '%s' --val-fraction 1 --windows %d --ctx %d "
             "--batch %d --map-tokens %d --json > '%s/cli.json'", cli, dir, path, W + 1, T, batch, S, dir);
    FB_CHECK(system(cmd) == 0, "%s: %s failed", name, cmd);
    free(before);
    free(win);
    fb_model_free(m);

    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, dir);
    printf("== %s\n", name);
    fflush(stdout);
    FB_CHECK(system(cmd) == 0, "%s: torch comparison failed", name);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: test_inspect_torch flashblock torch_inspect.py workdir\n"); return 2; }
    if (system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) {
        const char *ci = getenv("CI");
        if (ci && !strcmp(ci, "true")) { fprintf(stderr, "FAIL: /usr/bin/python3 lacks torch/numpy (CI=true)\n"); return 1; }
        fprintf(stderr, "SKIP: /usr/bin/python3 lacks torch/numpy\n");
        return FB_TEST_SKIP;
    }
    fb_model_config g = {0};
    g.block = fb_block_config_gpt2(64, 4);
    g.n_layers = 3; g.vocab_size = 256; g.max_seq = 48; g.tied = 1;
    run_case(argv[1], argv[2], argv[3], "gpt2_tied", g, 5, 40, 2, 12, 21);
    fb_model_config l = {0};
    l.block = fb_block_config_llama(64, 4, 2, 160);
    l.n_layers = 2; l.vocab_size = 256; l.max_seq = 40; l.tied = 0;
    run_case(argv[1], argv[2], argv[3], "llama_gqa_untied", l, 3, 33, 2, 33, 22);
    return fb_test_finish("test_inspect_torch");
}
