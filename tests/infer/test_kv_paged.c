/*
 * The paged KV cache (src/infer/kv_cache.h) against the contiguous layout:
 *  - attention ops: flash forward and split-K decode reading K/V through a
 *    block table (blocks of 1, 3, 16, 64 tokens in shuffled pool order, two
 *    batches with their own tables, GQA, odd head dims) give exactly the bits
 *    of the same data laid out contiguously, and match the naive reference;
 *  - the engine: logits of three interleaved sequences (chunked prefill,
 *    then batched decode) are bitwise equal for blocks of 1, 3, 16 and 64
 *    tokens and for one block per sequence; a forked prefix (shared blocks,
 *    copy on write of the partial one) gives the bits of computing it fresh;
 *  - budget: a pool that runs dry returns FB_ERR_KV_FULL with nothing
 *    changed, and works again once a sequence is released;
 *  - churn: thousands of random new / grow / fork / publish / attach / reset
 *    operations keep every reference count and the free list exact
 *    (fb_kv_check) and leave no block in use at the end.
 */
#include "flashblock.h"
#include "infer/engine.h"
#include "infer/kv_cache.h"
#include "model/model.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "test_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- op level ---- */

static void shuffle(int32_t *a, int n, fb_test_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(fb_test_rng_u64(r) % (uint64_t)(i + 1));
        int32_t t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

static void op_case(int B, int Tq, int Tk, int H, int Hkv, int D, int bs, uint64_t seed) {
    fb_test_rng r;
    fb_test_rng_seed(&r, seed);
    const int64_t row = (int64_t)Hkv * D, qs = (int64_t)H * D;
    const int width = (Tk + bs - 1) / bs, pool_blocks = B * width + 3;   /* spare blocks: unused slots in the pool */
    float *q = malloc(sizeof(float) * (size_t)(B * Tq * qs));
    float *k = malloc(sizeof(float) * (size_t)(B * Tk * row)), *v = malloc(sizeof(float) * (size_t)(B * Tk * row));
    float *kp = calloc((size_t)(pool_blocks * bs * row), sizeof(float)), *vp = calloc((size_t)(pool_blocks * bs * row), sizeof(float));
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)pool_blocks), *table = malloc(sizeof(int32_t) * (size_t)(B * width));
    float *o[3], *lse[3];
    for (int i = 0; i < 3; i++) {
        o[i] = malloc(sizeof(float) * (size_t)(B * Tq * qs));
        lse[i] = malloc(sizeof(float) * (size_t)(B * H * Tq));
    }
    fb_test_fill_normal(&r, q, (size_t)(B * Tq * qs), 1.0f);
    fb_test_fill_normal(&r, k, (size_t)(B * Tk * row), 1.0f);
    fb_test_fill_normal(&r, v, (size_t)(B * Tk * row), 1.0f);
    for (int i = 0; i < pool_blocks; i++) perm[i] = i;
    shuffle(perm, pool_blocks, &r);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < width; i++) table[b * width + i] = perm[b * width + i];
    for (int b = 0; b < B; b++)
        for (int j = 0; j < Tk; j++) {
            const int64_t at = ((int64_t)table[b * width + j / bs] * bs + j % bs) * row;
            memcpy(kp + at, k + ((int64_t)b * Tk + j) * row, sizeof(float) * (size_t)row);
            memcpy(vp + at, v + ((int64_t)b * Tk + j) * row, sizeof(float) * (size_t)row);
        }
    const fb_op_id ops[2] = {FB_OP_ATTENTION_FWD, FB_OP_ATTENTION_DECODE};
    for (int oi = 0; oi < 2; oi++) {
        fb_workspace ws = {0};
        fb_op_args flat = fb_attention_args(NULL, o[0], lse[0], q, k, v, B, Tq, Tk, H, Hkv, D, 1, qs, row, qs);
        fb_op_args paged = fb_attention_args(NULL, o[1], lse[1], q, kp, vp, B, Tq, Tk, H, Hkv, D, 1, qs, row, qs);
        fb_attention_args_paged(&paged, table, bs, width, pool_blocks);
        const fb_op_def *def = fb_op_get(ops[oi]);
        size_t need = 0;
        fb_ws_plan(&need, ops[oi], &flat, fb_get_threads());
        fb_ws_plan(&need, ops[oi], &paged, fb_get_threads());
        if (def->reference.workspace) {
            const size_t r = def->reference.workspace(&paged, 1);
            if (r > need) need = r;
        }
        FB_CHECK(fb_workspace_reserve(&ws, need) == FB_OK, "workspace: %s", fb_last_error());
        flat.ws = paged.ws = ws;
        FB_CHECK(fb_op_run(ops[oi], &flat) == FB_OK && fb_op_run(ops[oi], &paged) == FB_OK, "%s: %s", def->name, fb_last_error());
        FB_CHECK(!memcmp(o[0], o[1], sizeof(float) * (size_t)(B * Tq * qs)) &&
                     !memcmp(lse[0], lse[1], sizeof(float) * (size_t)(B * H * Tq)),
                 "%s (%s) B=%d Tq=%d Tk=%d H=%d/%d D=%d bs=%d: paged output differs from contiguous", def->name,
                 fb_op_selected_variant(ops[oi]), B, Tq, Tk, H, Hkv, D, bs);
        paged.out[0].data = o[2];
        paged.out[1].data = lse[2];
        FB_CHECK(def->reference.fn(&paged) == FB_OK, "%s reference: %s", def->name, fb_last_error());
        const double err = fb_test_max_rel_err(o[1], o[2], (size_t)(B * Tq * qs), 1e-3);
        FB_CHECK(err <= 2e-5, "%s B=%d Tq=%d Tk=%d D=%d bs=%d: paged vs the reference with the same table: %.3g", def->name, B, Tq,
                 Tk, D, bs, err);
        fb_workspace_free(&ws);
    }
    for (int i = 0; i < 3; i++) { free(o[i]); free(lse[i]); }
    free(q); free(k); free(v); free(kp); free(vp); free(perm); free(table);
}

static void test_ops_paged(void) {
    const int bss[4] = {1, 3, 16, 64};
    int cases = 0;
    for (int i = 0; i < 4; i++) {
        op_case(1, 1, 1, 4, 4, 64, bss[i], 1 + (uint64_t)i);
        op_case(1, 1, 300, 8, 2, 64, bss[i], 2 + (uint64_t)i);
        op_case(2, 3, 77, 6, 3, 40, bss[i], 3 + (uint64_t)i);
        op_case(1, 37, 200, 4, 1, 33, bss[i], 4 + (uint64_t)i);
        op_case(2, 70, 70, 4, 2, 128, bss[i], 5 + (uint64_t)i);
        cases += 5;
    }
    printf("attention ops: %d paged cases bitwise equal to contiguous, and within 2e-5 of the reference\n", cases);
}

/* ---- engine level ---- */

#define MAXT 160
#define NSEQ 3

static fb_model *make_model(void) {
    fb_model_config c = {0};
    c.block = fb_block_config_llama(96, 6, 2, 256);
    c.n_layers = 2; c.vocab_size = 199; c.max_seq = MAXT; c.tied = 0;
    fb_model *m = NULL;
    FB_CHECK(fb_model_init(&m, &c) == FB_OK, "model: %s", fb_last_error());
    fb_model_init_random(m, 9);
    for (size_t i = 0; i < m->n_floats; i++) m->params[i] *= 3.0f;
    return m;
}

/* Logits of every step of an interleaved schedule: prompts of 23, 5 and 61
 * tokens prefilled in chunks of 16, then 40 batched decode steps. */
static float *schedule(fb_model *m, int bs, const int32_t *ids, size_t *n_out) {
    fb_engine e;
    const int V = m->cfg.vocab_size;
    FB_CHECK(fb_engine_init(&e, m, &(fb_engine_options){.n_seqs = NSEQ, .max_T = MAXT, .max_rows = 16, .kv_block_size = bs}) == FB_OK,
             "engine: %s", fb_last_error());
    const int plen[NSEQ] = {23, 5, 61};
    float *out = malloc(sizeof(float) * (size_t)V * 200), *p = out;
    int seqs[16];
    for (int s = 0; s < NSEQ; s++)
        for (int i0 = 0; i0 < plen[s]; i0 += 16) {   /* alternate: chunk of seq 0, of seq 1, ... */
            const int k = plen[s] - i0 < 16 ? plen[s] - i0 : 16;
            for (int i = 0; i < k; i++) seqs[i] = s;
            unsigned char want[16] = {0};
            want[k - 1] = 1;
            FB_CHECK(fb_engine_step(&e, k, seqs, ids + s * 50 + i0, want) == FB_OK, "prefill: %s", fb_last_error());
            memcpy(p, e.logits, sizeof(float) * (size_t)V);
            p += V;
        }
    for (int t = 0; t < 40; t++) {
        int rs[NSEQ] = {0, 1, 2};
        int32_t rt[NSEQ] = {ids[t], ids[t + 1], ids[t + 2]};
        FB_CHECK(fb_engine_step(&e, NSEQ, rs, rt, NULL) == FB_OK, "decode: %s", fb_last_error());
        memcpy(p, e.logits, sizeof(float) * (size_t)V * NSEQ);
        p += (size_t)V * NSEQ;
    }
    FB_CHECK(fb_kv_check(&e.kv) == FB_OK, "kv: %s", fb_last_error());
    *n_out = (size_t)(p - out);
    fb_engine_free(&e);
    return out;
}

static void test_engine_bitwise(fb_model *m, const int32_t *ids) {
    size_t n_ref, n;
    float *ref = schedule(m, MAXT, ids, &n_ref);   /* one block per sequence: the contiguous layout */
    const int bss[4] = {1, 3, 16, 64};
    for (int i = 0; i < 4; i++) {
        float *got = schedule(m, bss[i], ids, &n);
        FB_CHECK(n == n_ref && !memcmp(ref, got, sizeof(float) * n), "engine: blocks of %d tokens change the logits", bss[i]);
        free(got);
    }
    free(ref);
    printf("engine: interleaved prefill + batched decode bitwise equal for blocks of 1, 3, 16, 64 and %d tokens\n", MAXT);
}

/* Fork after a 37-token prefix (blocks of 8: the last one is partial), then
 * both sequences decode different tokens; each equals a fresh computation. */
static void test_fork(fb_model *m, const int32_t *ids) {
    const int V = m->cfg.vocab_size, P = 37;
    fb_engine e;
    FB_CHECK(fb_engine_init(&e, m, &(fb_engine_options){.n_seqs = 2, .max_T = MAXT, .max_rows = 64, .kv_block_size = 8}) == FB_OK,
             "engine: %s", fb_last_error());
    FB_CHECK(fb_engine_prefill(&e, 0, ids, P, 64) == FB_OK, "prefill: %s", fb_last_error());
    FB_CHECK(fb_kv_fork(&e.kv, 0, 1) == FB_OK, "fork: %s", fb_last_error());
    const int used_after_fork = fb_kv_get_stats(&e.kv).blocks_used;
    float *got = malloc(sizeof(float) * (size_t)V * 2 * 10);
    for (int t = 0; t < 10; t++) {
        int rs[2] = {0, 1};
        int32_t rt[2] = {ids[100 + t], ids[120 + t]};
        FB_CHECK(fb_engine_step(&e, 2, rs, rt, NULL) == FB_OK, "decode: %s", fb_last_error());
        memcpy(got + (size_t)t * 2 * V, e.logits, sizeof(float) * 2 * (size_t)V);
    }
    /* shared: 5 blocks for the prefix; writing copied the partial 5th once */
    FB_CHECK(used_after_fork == 5, "fork: %d blocks in use after fork, want 5 (shared)", used_after_fork);
    FB_CHECK(fb_kv_check(&e.kv) == FB_OK, "kv: %s", fb_last_error());
    for (int s = 0; s < 2; s++) {
        fb_engine f;
        FB_CHECK(fb_engine_init(&f, m, &(fb_engine_options){.n_seqs = 1, .max_T = MAXT, .max_rows = 64, .kv_block_size = 8}) == FB_OK,
                 "engine: %s", fb_last_error());
        fb_engine_prefill(&f, 0, ids, P, 64);
        int same = 1;
        for (int t = 0; t < 10; t++) {
            int z = 0;
            int32_t tok = ids[(s ? 120 : 100) + t];
            fb_engine_step(&f, 1, &z, &tok, NULL);
            same &= !memcmp(f.logits, got + ((size_t)t * 2 + (size_t)s) * V, sizeof(float) * (size_t)V);
        }
        FB_CHECK(same, "fork: sequence %d differs from computing its tokens fresh", s);
        fb_engine_free(&f);
    }
    free(got);
    fb_engine_free(&e);
    printf("fork: shared prefix blocks, copy on write, both branches bitwise equal to fresh runs\n");
}

static void test_budget(fb_model *m, const int32_t *ids) {
    fb_engine e;   /* 6 blocks of 8 tokens = 48 positions for everyone */
    FB_CHECK(fb_engine_init(&e, m, &(fb_engine_options){.n_seqs = 2, .max_T = MAXT, .max_rows = 64, .kv_block_size = 8,
                                                         .kv_blocks = 6}) == FB_OK, "engine: %s", fb_last_error());
    FB_CHECK(fb_engine_prefill(&e, 0, ids, 40, 64) == FB_OK, "prefill 40: %s", fb_last_error());
    FB_CHECK(fb_engine_prefill(&e, 1, ids, 20, 64) == FB_ERR_KV_FULL, "a prompt beyond the pool was accepted");
    FB_CHECK(fb_kv_len(&e.kv, 1) == 0 && fb_kv_len(&e.kv, 0) == 40, "KV_FULL changed lengths");
    FB_CHECK(fb_kv_check(&e.kv) == FB_OK, "kv: %s", fb_last_error());
    fb_kv_reset(&e.kv, 0);
    FB_CHECK(fb_engine_prefill(&e, 1, ids, 20, 64) == FB_OK, "after freeing: %s", fb_last_error());
    FB_CHECK(fb_kv_check(&e.kv) == FB_OK, "kv: %s", fb_last_error());
    fb_engine_free(&e);
    printf("budget: FB_ERR_KV_FULL when the pool is dry, nothing changed, fine after a release\n");
}

/* ---- churn ---- */

static void test_churn(void) {
    enum { S = 24, T = 300, BS = 8 };
    fb_kv_cache kv;
    const fb_kv_cache_config c = {.n_seqs = S, .n_layers = 2, .max_T = T, .n_kv_heads = 1, .head_dim = 4, .block_size = BS,
                                  .n_blocks = 120, .prefix_cache = 1};
    FB_CHECK(fb_kv_cache_init(&kv, &c) == FB_OK, "kv: %s", fb_last_error());
    fb_test_rng r;
    fb_test_rng_seed(&r, 77);
    int32_t toks[S][T];
    int full = 0, forks = 0, attached = 0;
    const float row[4] = {1, 2, 3, 4};
    for (int step = 0; step < 20000; step++) {
        const int s = (int)(fb_test_rng_u64(&r) % S), op = (int)(fb_test_rng_u64(&r) % 10);
        const int len = fb_kv_len(&kv, s);
        if (op < 5) {   /* grow by 1..40 tokens drawn from 3 "prompts" so prefixes repeat */
            const int add = 1 + (int)(fb_test_rng_u64(&r) % 40), to = len + add > T ? T : len + add;
            if (to <= len) continue;
            if (len == 0) {
                const int which = (int)(fb_test_rng_u64(&r) % 3);
                for (int i = 0; i < T; i++) toks[s][i] = (int32_t)((i * 7 + which * 13) % 50 + (i > 100 ? (int)(fb_test_rng_u64(&r) % 5) : 0));
                attached += fb_kv_prefix_attach(&kv, s, toks[s], to) > 0;
            }
            const int from = fb_kv_len(&kv, s);
            if (from >= to) continue;
            if (fb_kv_reserve(&kv, s, to) != FB_OK) { full++; continue; }
            for (int l = 0; l < 2; l++)
                for (int p = from; p < to; p++) fb_kv_write(&kv, s, l, p, 1, row, row, 4);
            fb_kv_set_len(&kv, s, to);
            fb_kv_prefix_publish(&kv, s, toks[s], to);
        } else if (op < 7) {
            fb_kv_reset(&kv, s);
        } else if (op < 8) {
            const int d = (int)(fb_test_rng_u64(&r) % S);
            if (d != s) { fb_kv_fork(&kv, s, d); memcpy(toks[d], toks[s], sizeof toks[s]); forks++; }
        }
        if (step % 500 == 0) FB_CHECK(fb_kv_check(&kv) == FB_OK, "churn step %d: %s", step, fb_last_error());
    }
    for (int s = 0; s < S; s++) fb_kv_reset(&kv, s);
    const fb_kv_stats st = fb_kv_get_stats(&kv);
    FB_CHECK(fb_kv_check(&kv) == FB_OK, "churn end: %s", fb_last_error());
    FB_CHECK(st.blocks_used == 0 && st.blocks_free + st.blocks_cached == st.blocks_total,
             "churn: %d blocks still used, %d free + %d cached of %d", st.blocks_used, st.blocks_free, st.blocks_cached, st.blocks_total);
    FB_CHECK(full > 0 && forks > 0 && attached > 0 && st.evictions > 0, "churn did not reach every path (full %d forks %d attached %d evictions %ld)",
             full, forks, attached, st.evictions);
    printf("churn: 20000 operations (%d KV_FULL, %d forks, %d prefix hits, %ld evictions), no block leaked\n", full, forks, attached,
           st.evictions);
    fb_kv_cache_free(&kv);
}

int main(void) {
    test_ops_paged();
    fb_model *m = make_model();
    int32_t ids[200];
    fb_test_rng r;
    fb_test_rng_seed(&r, 5);
    for (int i = 0; i < 200; i++) ids[i] = (int32_t)(fb_test_rng_u64(&r) % (uint64_t)m->cfg.vocab_size);
    test_engine_bitwise(m, ids);
    test_fork(m, ids);
    test_budget(m, ids);
    fb_model_free(m);
    test_churn();
    return fb_test_finish("test_kv_paged");
}
