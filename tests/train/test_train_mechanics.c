/*
 * Training mechanics through the library:
 *  - gradient accumulation: k micro-batches of B/k (grad_scale 1/k) give the
 *    same gradients and the same AdamW update as one batch of B;
 *  - activation checkpointing: gradients with recompute are bitwise equal;
 *  - gradients are bitwise reproducible run to run;
 *  - a perturbed parameter changes the gradients (the checks can fail).
 */
#include "flashblock.h"
#include "model/model.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "ops/ops.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fb_model *make(const fb_model_config *c, uint64_t seed) {
    fb_model *m;
    if (fb_model_init(&m, c) != FB_OK) { fprintf(stderr, "init: %s\n", fb_last_error()); exit(1); }
    fb_model_init_random(m, seed);
    return m;
}

static void grads_of(fb_model *m, const int32_t *ids, const int32_t *tgt, int B, int T, int k, int recompute, float *out) {
    FB_CHECK(fb_model_alloc_training(m, B / k, T, recompute) == FB_OK, "alloc: %s", fb_last_error());
    fb_model_zero_grad(m);
    for (int i = 0; i < k; i++) {
        float l;
        size_t off = (size_t)i * (size_t)(B / k) * (size_t)T;
        FB_CHECK(fb_model_forward_backward(m, ids + off, tgt + off, B / k, T, 1.0f / (float)k, &l) == FB_OK, "fwd/bwd: %s",
                 fb_last_error());
    }
    memcpy(out, fb_model_grads(m), m->n_floats * sizeof(float));
}

static void run(const char *name, fb_model_config c, int B, int T) {
    fb_model *m = make(&c, 5);
    const size_t nf = m->n_floats, N = (size_t)B * (size_t)T;
    float *g1 = malloc(nf * 4), *g2 = malloc(nf * 4), *g3 = malloc(nf * 4);
    int32_t *ids = malloc(N * 4), *tgt = malloc(N * 4);
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 77);
    for (size_t i = 0; i < N; i++) {
        ids[i] = (int32_t)(fb_test_rng_u64(&rng) % (uint64_t)c.vocab_size);
        tgt[i] = (int32_t)(fb_test_rng_u64(&rng) % (uint64_t)c.vocab_size);
    }
    grads_of(m, ids, tgt, B, T, 1, 0, g1);
    grads_of(m, ids, tgt, B, T, 1, 0, g3);
    FB_CHECK(memcmp(g1, g3, nf * 4) == 0, "%s: gradients differ between two identical runs", name);
    grads_of(m, ids, tgt, B, T, 1, 1, g2);
    FB_CHECK(memcmp(g1, g2, nf * 4) == 0, "%s: gradients with --recompute are not bitwise equal", name);
    grads_of(m, ids, tgt, B, T, 4, 0, g2);
    double err = fb_test_max_rel_err(g2, g1, nf, 1e-12);
    printf("%s: accumulation 4 x B/4 vs B: max rel grad err %.3g\n", name, err);
    FB_CHECK(err < 1e-5, "%s: accumulated gradients differ: %.3g", name, err);
    grads_of(m, ids, tgt, B, T, 2, 1, g2);   /* accumulation and recompute together */
    FB_CHECK(fb_test_max_rel_err(g2, g1, nf, 1e-12) < 1e-5, "%s: accumulation with recompute differs", name);

    /* the same AdamW update from both gradient sets */
    fb_model *a = make(&c, 5), *b = make(&c, 5);
    fb_adamw oa, ob;
    fb_adamw_config ac = fb_adamw_defaults();
    fb_adamw_init(&oa, a, &ac);
    fb_adamw_init(&ob, b, &ac);
    grads_of(a, ids, tgt, B, T, 1, 0, g1);
    grads_of(b, ids, tgt, B, T, 4, 0, g2);
    fb_adamw_step(&oa, a, 1e-3f);
    fb_adamw_step(&ob, b, 1e-3f);
    double perr = fb_test_max_rel_err(fb_model_params(b), fb_model_params(a), nf, 1e-12);
    printf("%s: parameters after one AdamW step, accumulated vs whole batch: max rel err %.3g\n", name, perr);
    /* Adam normalises each gradient: elements whose gradient is ~0 amplify
     * rounding, so the bound is looser than for the gradients themselves. */
    FB_CHECK(perr < 1e-4, "%s: AdamW update differs with accumulation: %.3g", name, perr);

    /* sensitivity: a changed weight must show in the gradients */
    fb_model_params(m)[m->off_blocks + 3] += 0.5f;
    grads_of(m, ids, tgt, B, T, 1, 0, g2);
    grads_of(a, ids, tgt, B, T, 1, 0, g3);
    FB_CHECK(memcmp(g2, g1, nf * 4) != 0, "%s: perturbation invisible", name);
    fb_adamw_free(&oa);
    fb_adamw_free(&ob);
    fb_model_free(a);
    fb_model_free(b);
    fb_model_free(m);
    free(g1); free(g2); free(g3); free(ids); free(tgt);
}

/* The vectorised AdamW updates (variants of FB_OP_ADAMW) equal the scalar
 * reference bit for bit up to the rounding of vector sqrt/div (<= 1 ulp):
 * checked to 1e-6 relative. */
static void adamw_kernels(void) {
    const int64_t n = 1000 + 37;
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 5);
    float *p0 = malloc(n * 4), *g = malloc(n * 4), *m0 = malloc(n * 4), *v0 = malloc(n * 4);
    fb_test_fill_normal(&rng, p0, (size_t)n, 1.0f);
    fb_test_fill_normal(&rng, g, (size_t)n, 0.1f);
    fb_test_fill_normal(&rng, m0, (size_t)n, 0.01f);
    for (int64_t k = 0; k < n; k++) v0[k] = fabsf(fb_test_rng_normal(&rng)) * 1e-4f;
    const fb_op_def *def = fb_op_get(FB_OP_ADAMW);
    const fb_kernel *ks[8] = {&def->reference};
    int nk = 1;
    for (const fb_kernel *k = def->variants; k->fn && nk < 8; k++)
        if (fb_kernel_runnable(k)) ks[nk++] = k;
    float *p[8], *m[8], *v[8];
    for (int f = 0; f < nk; f++) {
        p[f] = malloc(n * 4); m[f] = malloc(n * 4); v[f] = malloc(n * 4);
        memcpy(p[f], p0, n * 4); memcpy(m[f], m0, n * 4); memcpy(v[f], v0, n * 4);
        fb_op_args a = {.in = {fb_src_f32(g, 1, n, n)},
                        .out = {fb_dst_f32(p[f], 1, n, n), fb_dst_f32(m[f], 1, n, n), fb_dst_f32(v[f], 1, n, n)},
                        .d = {n}, .f = {0.9999f, 0.7f, 0.9f, 0.95f, 1e-8f, 1.0f / sqrtf(0.0975f), 1e-3f / 0.271f}};
        FB_CHECK(ks[f]->fn(&a) == FB_OK, "adamw[%s] failed", ks[f]->name);
        if (f)
            FB_CHECK(fb_test_max_rel_err(p[f], p[0], (size_t)n, 1e-12) < 1e-6 && fb_test_max_rel_err(m[f], m[0], (size_t)n, 1e-12) < 1e-6 &&
                         fb_test_max_rel_err(v[f], v[0], (size_t)n, 1e-12) < 1e-6,
                     "adamw kernel %s differs from the reference", ks[f]->name);
    }
    FB_CHECK(nk > 1, "no AdamW variant runs here");
    FB_CHECK(fb_test_max_rel_err(p[0], p0, (size_t)n, 1e-12) > 1e-6, "adamw reference did not move the parameters");
    for (int f = 0; f < nk; f++) { free(p[f]); free(m[f]); free(v[f]); }
    free(p0); free(g); free(m0); free(v0);
}

int main(void) {
    adamw_kernels();
    fb_model_config g = {0};
    g.block = fb_block_config_gpt2(64, 4);
    g.n_layers = 2; g.vocab_size = 80; g.max_seq = 33; g.tied = 1;
    run("gpt2", g, 8, 33);
    fb_model_config l = {0};
    l.block = fb_block_config_llama(96, 6, 2, 256);
    l.n_layers = 3; l.vocab_size = 300; l.max_seq = 70; l.tied = 0;
    run("llama", l, 4, 70);
    /* bad input */
    fb_model *m = make(&g, 1);
    int32_t ids[4] = {1, 2, 3, 500}, tgt[4] = {1, 2, 3, 4};
    float loss;
    FB_CHECK(fb_model_forward(m, ids, tgt, 1, 4, &loss) == FB_ERR_INVALID_ARG, "forward before alloc");
    fb_model_alloc_training(m, 1, 4, 0);
    FB_CHECK(fb_model_forward(m, ids, tgt, 1, 4, &loss) == FB_ERR_INVALID_ARG, "id out of range accepted");
    ids[3] = 4;
    FB_CHECK(fb_model_forward(m, ids, tgt, 2, 4, &loss) == FB_ERR_SHAPE, "B above allocation accepted");
    int32_t none[4] = {-1, -1, -1, -1};
    FB_CHECK(fb_model_forward(m, ids, none, 1, 4, &loss) == FB_ERR_INVALID_ARG, "no targets accepted");
    FB_CHECK(fb_model_alloc_training(m, 1, 34, 0) == FB_ERR_SHAPE, "T above max_seq accepted");
    fb_model_free(m);
    fb_model_config bad = g;
    bad.vocab_size = 0;
    FB_CHECK(fb_model_init(&m, &bad) == FB_ERR_CONFIG && strstr(fb_last_error(), "vocab_size"), "vocab 0 accepted");
    return fb_test_finish("test_train_mechanics");
}
