/*
 * Whole-block parity with PyTorch. For each config (gpt2 preset, llama
 * preset, a GQA llama, a GQA gpt2 variant with exact GELU) the C side draws
 * random weights and inputs, writes them to a file, runs
 * tests/core/torch_block.py (Debian's python3-torch, float64, written from
 * PyTorch's own layers, not from our code), reads torch's output back and
 * requires max |y - y_torch| / max |y_torch| <= 1e-5.
 *
 * Exchange file (little-endian): int32 magic 0x46424C4B, int32 fields
 * d_model n_heads n_kv_heads d_ff norm mlp positions bias B T pos0,
 * float32 norm_eps rope_theta, then for each of the FB_P_COUNT params an
 * int64 numel and that many float32, then x [B,T,C] float32.
 */
#include "flashblock.h"
#include "test_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int python_has_torch(void) {
    return system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

static int run_case(const char *script, const char *dir, const char *name, fb_block_config cfg, int B, int T,
                    int pos0, uint64_t seed) {
    fb_block *blk;
    if (fb_block_init(&blk, &cfg) != FB_OK) { FB_CHECK(0, "%s: init: %s", name, fb_last_error()); return 0; }
    fb_block_init_random(blk, seed);
    fb_test_rng rng;
    fb_test_rng_seed(&rng, seed + 99);
    /* Perturb norm weights and biases so every parameter matters. */
    for (int p = 0; p < FB_P_COUNT; p++) {
        size_t n;
        float *t = fb_block_param_ptr(blk, (fb_block_param)p, &n);
        if (!t) continue;
        if (p == FB_P_ATTN_NORM_W || p == FB_P_FFN_NORM_W)
            for (size_t i = 0; i < n; i++) t[i] = 1.0f + 0.2f * fb_test_rng_normal(&rng);
        else if (strstr(fb_block_param_name((fb_block_param)p), "bias"))
            for (size_t i = 0; i < n; i++) t[i] = 0.1f * fb_test_rng_normal(&rng);
        else
            for (size_t i = 0; i < n; i++) t[i] *= 3.0f;   /* larger than init: attention not uniform */
    }
    const size_t nx = (size_t)B * T * cfg.d_model;
    float *x = malloc(nx * 4), *y = malloc(nx * 4), *yt = malloc(nx * 4);
    fb_test_fill_normal(&rng, x, nx, 1.0f);
    FB_CHECK(fb_block_forward(blk, y, x, B, T, pos0) == FB_OK, "%s: forward: %s", name, fb_last_error());

    char in_path[1024], out_path[1024], cmd[4096];
    snprintf(in_path, sizeof in_path, "%s/%s.in", dir, name);
    snprintf(out_path, sizeof out_path, "%s/%s.out", dir, name);
    FILE *f = fopen(in_path, "wb");
    if (!f) { FB_CHECK(0, "cannot write %s", in_path); return 0; }
    int32_t hdr[12] = {0x46424C4B, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ff, (int)cfg.norm, (int)cfg.mlp,
                       (int)cfg.positions, cfg.bias, B, T, pos0};
    float fh[2] = {cfg.norm_eps, cfg.rope_theta};
    fwrite(hdr, 4, 12, f);
    fwrite(fh, 4, 2, f);
    for (int p = 0; p < FB_P_COUNT; p++) {
        size_t n;
        float *t = fb_block_param_ptr(blk, (fb_block_param)p, &n);
        int64_t n64 = (int64_t)n;
        fwrite(&n64, 8, 1, f);
        if (n) fwrite(t, 4, n, f);
    }
    fwrite(x, 4, nx, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s'", script, in_path, out_path);
    int rc = system(cmd);
    FB_CHECK(rc == 0, "%s: torch script failed (%d)", name, rc);
    f = fopen(out_path, "rb");
    size_t got = f ? fread(yt, 4, nx, f) : 0;
    if (f) fclose(f);
    FB_CHECK(got == nx, "%s: torch output has %zu of %zu values", name, got, nx);
    if (got == nx) {
        double err = fb_test_max_rel_err(y, yt, nx, 1e-6);
        printf("%-24s B=%d T=%-4d max rel err vs torch = %.3g\n", name, B, T, err);
        FB_CHECK(err <= 1e-5, "%s: max rel err %.3g > 1e-5", name, err);
        /* The test must be able to fail: a small change to one weight shows. */
        size_t n;
        float *w = fb_block_param_ptr(blk, FB_P_ATTN_QKV_W, &n);
        w[n / 2] += 0.05f;
        fb_block_forward(blk, y, x, B, T, pos0);
        FB_CHECK(fb_test_max_rel_err(y, yt, nx, 1e-6) > 1e-5, "%s: perturbed weight went unnoticed", name);
    }
    free(x); free(y); free(yt);
    fb_block_free(blk);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: test_block_torch torch_block.py workdir\n"); return 2; }
    if (!python_has_torch()) {
        const char *ci = getenv("CI");
        if (ci && !strcmp(ci, "true")) { fprintf(stderr, "FAIL: /usr/bin/python3 cannot import torch (CI=true)\n"); return 1; }
        fprintf(stderr, "SKIP: /usr/bin/python3 has no torch (apt-get install python3-torch)\n");
        return FB_TEST_SKIP;
    }
    mkdir(argv[2], 0755);
    fb_block_config gpt2 = fb_block_config_gpt2(128, 4);
    run_case(argv[1], argv[2], "gpt2", gpt2, 2, 77, 0, 1);
    fb_block_config llama = fb_block_config_llama(128, 4, 4, 344);
    run_case(argv[1], argv[2], "llama", llama, 2, 77, 0, 2);
    fb_block_config gqa = fb_block_config_llama(192, 6, 2, 512);
    run_case(argv[1], argv[2], "llama_gqa", gqa, 1, 150, 0, 3);
    fb_block_config mqa = fb_block_config_llama(96, 4, 1, 256);
    run_case(argv[1], argv[2], "llama_mqa_pos0", mqa, 1, 70, 13, 4);
    fb_block_config g2 = fb_block_config_gpt2(80, 2);
    g2.mlp = FB_MLP_GELU;
    g2.n_kv_heads = 1;
    g2.head_dim = 40;
    run_case(argv[1], argv[2], "gpt2_mqa_gelu_exact", g2, 3, 65, 0, 5);
    fb_block_config rl = fb_block_config_llama(64, 2, 2, 160);
    rl.bias = 1;
    rl.norm = FB_NORM_LAYERNORM;
    run_case(argv[1], argv[2], "llama_layernorm_bias", rl, 1, 33, 0, 6);
    return fb_test_finish("test_block_torch");
}
