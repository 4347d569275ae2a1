/*
 * KV-cache inference equals the training forward — two different paths
 * through the one block sequence: for random models of both presets (and a
 * GQA llama), the logits at every position of a 300-token sequence computed
 * incrementally by the engine (prefill chunks of 1, 7 and 64 tokens, then
 * single-token decode steps through split-K attention over paged blocks of
 * 16, 7 and 300 tokens) match the training forward over all 300 tokens
 * (fb_model_forward, whose final hidden states are multiplied by the LM head
 * here in double; rel. error <= 2e-5). Also: batched decode of several
 * sequences in one step equals decoding each alone, and a full context is
 * an error, not a crash.
 */
#include "flashblock.h"
#include "infer/engine.h"
#include "model/model.h"
#include "test_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLEN 300

static fb_status engine(fb_engine *e, fb_model *m, int n_seqs, int rows, int block) {
    return fb_engine_init(e, m, &(fb_engine_options){.n_seqs = n_seqs, .max_T = TLEN, .max_rows = rows, .kv_block_size = block});
}

static void run(const char *name, fb_model_config c, uint64_t seed) {
    fb_model *m;
    if (fb_model_init(&m, &c) != FB_OK) { FB_CHECK(0, "%s: %s", name, fb_last_error()); return; }
    fb_model_init_random(m, seed);
    for (size_t i = 0; i < m->n_floats; i++) m->params[i] *= 3.0f;   /* sharper attention than init */
    const int V = c.vocab_size, C = c.block.d_model;
    int32_t ids[TLEN], targets[TLEN];
    fb_test_rng rng;
    fb_test_rng_seed(&rng, seed);
    for (int i = 0; i < TLEN; i++) ids[i] = (int32_t)(fb_test_rng_u64(&rng) % (uint64_t)V);
    for (int i = 0; i < TLEN; i++) targets[i] = ids[(i + 1) % TLEN];
    /* reference: the training forward over the whole sequence; logits of
     * every row from its final hidden states, in double */
    float loss, *ref = malloc(sizeof(float) * (size_t)TLEN * (size_t)V);
    FB_CHECK(ref && fb_model_alloc_training(m, 1, TLEN, 0) == FB_OK, "%s: %s", name, fb_last_error());
    FB_CHECK(fb_model_forward(m, ids, targets, 1, TLEN, &loss) == FB_OK, "%s: forward: %s", name, fb_last_error());
    const float *W = m->params + m->off_lm;
    for (int t = 0; t < TLEN; t++)
        for (int v = 0; v < V; v++) {
            double acc = 0;
            for (int k = 0; k < C; k++) acc += (double)m->lnf[(size_t)t * C + k] * W[(size_t)v * C + k];
            ref[(size_t)t * V + v] = (float)acc;
        }
    int seqs[TLEN];
    memset(seqs, 0, sizeof seqs);
    const int chunks[3] = {1, 7, 64}, blocks[3] = {16, 7, TLEN};
    for (int ci = 0; ci < 3; ci++) {
        const int chunk = chunks[ci];
        fb_engine e;
        FB_CHECK(engine(&e, m, 1, chunk, blocks[ci]) == FB_OK, "%s: %s", name, fb_last_error());
        double worst = 0;
        /* prefill the first 100 tokens in chunks (all rows' logits), then decode one by one */
        int pos = 0;
        while (pos < TLEN) {
            int k = pos < 100 ? (100 - pos < chunk ? 100 - pos : chunk) : 1;
            FB_CHECK(fb_engine_step(&e, k, seqs, ids + pos, NULL) == FB_OK, "%s: step: %s", name, fb_last_error());
            for (int r = 0; r < k; r++) {
                double err = fb_test_max_rel_err(e.logits + (size_t)r * V, ref + (size_t)(pos + r) * V, (size_t)V, 1e-6);
                if (err > worst) worst = err;
            }
            pos += k;
        }
        printf("%-12s prefill chunk %2d, KV blocks of %3d: max rel err of logits vs the training forward over %d positions: %.3g\n",
               name, chunk, blocks[ci], TLEN, worst);
        FB_CHECK(worst <= 2e-5, "%s chunk %d: rel err %.3g", name, chunk, worst);
        /* the context is full now: one more token is a clear error */
        FB_CHECK(fb_engine_step(&e, 1, seqs, ids, NULL) == FB_ERR_SHAPE, "%s: full context accepted", name);
        fb_engine_free(&e);
    }
    /* batched decode: 3 sequences of different lengths in one step */
    fb_engine b;
    FB_CHECK(engine(&b, m, 3, 64, 16) == FB_OK, "%s: %s", name, fb_last_error());
    const int lens[3] = {10, 57, 200};
    for (int s = 0; s < 3; s++) FB_CHECK(fb_engine_prefill(&b, s, ids + 50 * s, lens[s], 64) == FB_OK, "%s: prefill", name);
    int rs[3] = {0, 1, 2};
    int32_t rt[3] = {ids[7], ids[8], ids[9]};
    FB_CHECK(fb_engine_step(&b, 3, rs, rt, NULL) == FB_OK, "%s: batched step: %s", name, fb_last_error());
    for (int s = 0; s < 3; s++) {
        fb_engine one;
        FB_CHECK(engine(&one, m, 1, 64, 16) == FB_OK, "%s: %s", name, fb_last_error());
        fb_engine_prefill(&one, 0, ids + 50 * s, lens[s], 64);
        int z = 0;
        fb_engine_step(&one, 1, &z, &rt[s], NULL);
        double err = fb_test_max_rel_err(b.logits + (size_t)s * V, one.logits, (size_t)V, 1e-6);
        FB_CHECK(err <= 1e-5, "%s: batched decode of sequence %d differs: %.3g", name, s, err);
        fb_engine_free(&one);
    }
    int bad[2] = {0, 0};
    int32_t bt[2] = {1, V};
    FB_CHECK(fb_engine_step(&b, 2, bad, bt, NULL) == FB_ERR_INVALID_ARG, "%s: out-of-vocabulary id accepted", name);
    fb_engine_free(&b);
    free(ref);
    fb_model_free(m);
}

int main(void) {
    fb_model_config g = {0};
    g.block = fb_block_config_gpt2(96, 6);
    g.n_layers = 2; g.vocab_size = 211; g.max_seq = TLEN; g.tied = 1;
    run("gpt2", g, 3);
    fb_model_config l = {0};
    l.block = fb_block_config_llama(128, 8, 8, 352);
    l.n_layers = 2; l.vocab_size = 257; l.max_seq = 512; l.tied = 0;
    run("llama", l, 4);
    fb_model_config q = {0};
    q.block = fb_block_config_llama(160, 8, 2, 416);
    q.n_layers = 2; q.vocab_size = 300; q.max_seq = 512; q.tied = 1;
    run("llama_gqa", q, 5);
    return fb_test_finish("test_kv_decode");
}
