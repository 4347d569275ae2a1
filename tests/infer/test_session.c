/* The public inference API (include/flashblock_infer.h) on a small random
 * model saved as a checkpoint with the byte tokenizer:
 *  - batch invariance: each of 5 prompts, greedy and seeded-sampled, gives
 *    byte-identical text alone and decoded together with the others;
 *  - fork: a forked sequence continues exactly as the original would, and
 *    with its own params it draws its own stream;
 *  - logits and log-probabilities: top_logprobs is sorted, normalised and
 *    agrees with the sampled token's event logprob;
 *  - stop rules: max_tokens, max_positions, stop strings (generated text
 *    only), EOS, a full context with and without sliding;
 *  - errors: no free slot, bad ids, a prompt longer than the context,
 *    stepping with too few event slots; slot churn leaks nothing (ASan). */
#include "flashblock.h"
#include "flashblock_infer.h"
#include "model/checkpoint.h"
#include "test_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_path[256];

static void make_model(void) {
    fb_model_config mc = {0};
    mc.block = fb_block_config_llama(64, 4, 2, 128);
    mc.n_layers = 2;
    mc.vocab_size = 256;
    mc.max_seq = 96;
    mc.tied = 0;
    fb_model *m = NULL;
    FB_CHECK(fb_model_init(&m, &mc) == FB_OK, "model: %s", fb_last_error());
    fb_model_init_random(m, 11);
    /* larger weights than the init so that greedy text is not one repeated byte */
    float *p = fb_model_params(m);
    size_t n = fb_model_num_params(m);
    for (size_t i = 0; i < n; i++) p[i] *= 6.0f;
    fb_train_state st = {0};
    snprintf(st.tokenizer, sizeof st.tokenizer, "byte");
    st.best_val = NAN;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_path, sizeof g_path, "%s/fb_session_%ld.safetensors", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    FB_CHECK(fb_checkpoint_save(g_path, m, NULL, &st) == FB_OK, "save: %s", fb_last_error());
    fb_model_free(m);
}

static const char *PROMPTS[] = {"The quick brown fox", "a", "Once upon a time, in a land far away,", "0123456789", "Z"};
#define NP 5

/* Tokens of one finished sequence (the text may hold any byte, NUL too). */
typedef struct { int n; int32_t t[160]; } toks;

static void grab(const fb_session *s, int seq, toks *out) {
    const int32_t *t = fb_seq_tokens(s, seq, &out->n);
    if (out->n > 160) out->n = 160;
    memcpy(out->t, t, sizeof(int32_t) * (size_t)out->n);
}

static int same(const toks *a, const toks *b) { return a->n == b->n && !memcmp(a->t, b->t, sizeof(int32_t) * (size_t)a->n); }

/* Runs prompts[idx[0..k)] together (one session of k sequences); writes
 * each sequence's tokens into out[idx[j]]. */
static void run_together(fb_llm *llm, const int *idx, int k, float temp, toks *out) {
    fb_session_options so = fb_session_options_default();
    so.max_seqs = k;
    so.max_batch = 7;   /* prompts longer than 7 tokens are prefilled in chunks */
    fb_session *s = NULL;
    FB_CHECK(fb_session_create(&s, llm, &so) == FB_OK, "session: %s", fb_last_error());
    if (!s) return;
    int seq[NP] = {0};
    for (int j = 0; j < k; j++) {
        fb_gen_params p = fb_gen_params_default();
        p.temperature = temp;
        p.top_p = 0.95f;
        p.seed = 1000 + (uint64_t)idx[j];
        p.max_tokens = 40 + 3 * idx[j];   /* different lengths: sequences finish at different steps */
        FB_CHECK(fb_seq_new(s, &p, &seq[j]) == FB_OK, "seq_new: %s", fb_last_error());
        const char *t = PROMPTS[idx[j]];
        FB_CHECK(fb_seq_add_text(s, seq[j], t, strlen(t), 0) == FB_OK, "add_text: %s", fb_last_error());
    }
    fb_seq_event ev[NP];
    int guard = 0;
    while (fb_session_active(s) > 0 && guard++ < 1000) {
        int n;
        FB_CHECK(fb_session_step(s, ev, NP, &n) == FB_OK, "step: %s", fb_last_error());
    }
    for (int j = 0; j < k; j++) grab(s, seq[j], &out[idx[j]]);
    fb_session_free(s);
}

static void test_batch_invariance(fb_llm *llm) {
    for (int mode = 0; mode < 2; mode++) {
        const float temp = mode ? 0.9f : 0.0f;
        static toks alone[NP], together[NP], reversed[NP];
        for (int i = 0; i < NP; i++) run_together(llm, &i, 1, temp, alone);
        int all[NP] = {0, 1, 2, 3, 4}, rev[NP] = {4, 3, 2, 1, 0};
        run_together(llm, all, NP, temp, together);
        run_together(llm, rev, NP, temp, reversed);
        for (int i = 0; i < NP; i++) {
            FB_CHECK(alone[i].n == (int)strlen(PROMPTS[i]) + 40 + 3 * i, "prompt %d: %d tokens", i, alone[i].n);
            FB_CHECK(same(&alone[i], &together[i]), "%s prompt %d: alone and batched differ", mode ? "sampled" : "greedy", i);
            FB_CHECK(same(&alone[i], &reversed[i]), "%s prompt %d: alone and batched in another order differ", mode ? "sampled" : "greedy", i);
        }
    }
}

/* Steps s until seq finishes; returns its last event. */
static fb_seq_event finish(fb_session *s, int seq) {
    fb_seq_event ev[4], last = {0};
    for (int guard = 0; guard < 1000; guard++) {
        int n;
        if (fb_session_step(s, ev, 4, &n) != FB_OK) { FB_CHECK(0, "step: %s", fb_last_error()); break; }
        int done = 0;
        for (int i = 0; i < n; i++)
            if (ev[i].seq == seq) { last = ev[i]; done = ev[i].finish != FB_FINISH_NONE; }
        if (done) break;
    }
    return last;
}

static void test_fork_and_logprobs(fb_llm *llm) {
    fb_session_options so = fb_session_options_default();
    so.max_seqs = 4;
    fb_session *s = NULL;
    FB_CHECK(fb_session_create(&s, llm, &so) == FB_OK, "session: %s", fb_last_error());
    if (!s) return;
    fb_gen_params p = fb_gen_params_default();
    p.temperature = 0.8f;
    p.seed = 5;
    p.max_tokens = 30;
    p.logprobs = 1;
    int a = -1, b = -1, c = -1;
    FB_CHECK(fb_seq_new(s, &p, &a) == FB_OK, "seq a");
    FB_CHECK(fb_seq_add_text(s, a, "fork here", 9, 0) == FB_OK, "text a");
    fb_seq_event ev[4];
    int n;
    FB_CHECK(fb_session_step(s, ev, 4, &n) == FB_OK && n == 1, "first step: %s", fb_last_error());
    /* logits and log-probabilities of a's next position */
    int32_t ids[256];
    float lp[256];
    const int k = fb_seq_top_logprobs(s, a, 256, ids, lp);
    FB_CHECK(k == 256, "top_logprobs over the whole vocabulary gave %d", k);
    double total = 0;
    int sorted = 1;
    for (int i = 0; i < k; i++) { total += exp((double)lp[i]); if (i && lp[i] > lp[i - 1]) sorted = 0; }
    FB_CHECK(fabs(total - 1.0) < 1e-4, "probabilities sum to %.6f", total);
    FB_CHECK(sorted, "top_logprobs not in descending order");
    const float *lg = fb_seq_logits(s, a);
    FB_CHECK(lg != NULL, "no logits after a step");
    for (int i = 0; lg && i < 256; i++) FB_CHECK(lg[ids[0]] >= lg[i], "top_logprobs[0] is not the argmax");
    /* fork with the same params: a and b continue identically */
    FB_CHECK(fb_seq_fork(s, a, NULL, &b) == FB_OK, "fork: %s", fb_last_error());
    fb_gen_params q = p;
    q.seed = 99;
    FB_CHECK(fb_seq_fork(s, a, &q, &c) == FB_OK, "fork with params: %s", fb_last_error());
    for (int guard = 0; fb_session_active(s) > 0 && guard < 200; guard++) {
        FB_CHECK(fb_session_step(s, ev, 4, &n) == FB_OK, "step: %s", fb_last_error());
        for (int i = 0; i < n; i++) {
            if (ev[i].token < 0) continue;
            FB_CHECK(isfinite(ev[i].logprob) && ev[i].logprob <= 0.0f, "event logprob %g", (double)ev[i].logprob);
            if (guard == 0 && ev[i].seq == a)   /* sampled from the logits top_logprobs read above */
                for (int j = 0; j < k; j++)
                    if (ids[j] == ev[i].token)
                        FB_CHECK(ev[i].logprob == lp[j], "event logprob %g, top_logprobs says %g", (double)ev[i].logprob, (double)lp[j]);
        }
    }
    static toks ta, tb, tc, td;
    grab(s, a, &ta);
    grab(s, b, &tb);
    grab(s, c, &tc);
    FB_CHECK(ta.n == 9 + 30 && same(&ta, &tb), "fork (same stream) diverged (%d and %d tokens)", ta.n, tb.n);
    FB_CHECK(tc.n == 9 + 30 && !same(&ta, &tc), "fork with another seed gave the same tokens");
    FB_CHECK(tc.n >= 9 && !memcmp(tc.t, ta.t, 9 * sizeof(int32_t)), "fork lost the prompt");
    /* the fork equals a sequence that never forked */
    fb_session_free(s);
    s = NULL;
    FB_CHECK(fb_session_create(&s, llm, &so) == FB_OK, "session 2");
    int d = -1;
    FB_CHECK(fb_seq_new(s, &p, &d) == FB_OK && fb_seq_add_text(s, d, "fork here", 9, 0) == FB_OK, "seq d");
    finish(s, d);
    grab(s, d, &td);
    FB_CHECK(same(&td, &tb), "the fork differs from a run that never forked");
    fb_session_free(s);
}

static void test_stop_rules(fb_llm *llm) {
    fb_session_options so = fb_session_options_default();
    so.max_seqs = 2;
    so.ctx = 40;
    fb_session *s = NULL;
    FB_CHECK(fb_session_create(&s, llm, &so) == FB_OK, "session: %s", fb_last_error());
    if (!s) return;
    fb_gen_params p = fb_gen_params_default();
    p.temperature = 0.0f;
    int a = -1;
    /* max_tokens */
    p.max_tokens = 7;
    FB_CHECK(fb_seq_new(s, &p, &a) == FB_OK && fb_seq_add_text(s, a, "abc", 3, 0) == FB_OK, "seq");
    fb_seq_event e = finish(s, a);
    FB_CHECK(isnan(e.logprob), "logprob filled without params.logprobs: %g", (double)e.logprob);
    int n;
    fb_seq_tokens(s, a, &n);
    FB_CHECK(e.finish == FB_FINISH_LENGTH && n == 3 + 7, "max_tokens 7: finish %d, %d tokens", (int)e.finish, n);
    FB_CHECK(fb_seq_add_text(s, a, "x", 1, 0) != FB_OK, "text added to a finished sequence");
    fb_seq_free(s, a);
    /* the greedy continuation, then a stop string taken from it: the first
     * ASCII letter or digit it produces (one byte, so it is complete the
     * moment its token is sampled). "abc" is only in the prompt: no stop. */
    p.max_tokens = 60;
    FB_CHECK(fb_seq_new(s, &p, &a) == FB_OK && fb_seq_add_text(s, a, "abc", 3, 0) == FB_OK, "seq");
    finish(s, a);
    int ng;
    const int32_t *g = fb_seq_tokens(s, a, &ng);
    int32_t greedy[64];
    memcpy(greedy, g, sizeof(int32_t) * (size_t)ng);
    fb_seq_free(s, a);
    int j = -1;
    for (int i = 3; i < ng && j < 0; i++)
        if ((greedy[i] >= '0' && greedy[i] <= '9') || (greedy[i] >= 'a' && greedy[i] <= 'z') || (greedy[i] >= 'A' && greedy[i] <= 'Z')) j = i;
    FB_CHECK(j >= 0, "the greedy continuation has no ASCII letter or digit to stop at");
    if (j >= 0) {
        char stop[2] = {(char)greedy[j], 0};
        p.max_tokens = 0;
        p.n_stops = 2;
        p.stops[0] = stop;
        p.stops[1] = "abc";
        FB_CHECK(fb_seq_new(s, &p, &a) == FB_OK && fb_seq_add_text(s, a, "abc", 3, 0) == FB_OK, "seq");
        e = finish(s, a);
        fb_seq_tokens(s, a, &n);
        FB_CHECK(e.finish == FB_FINISH_STOP && n == j + 1, "stop '%s': finish %d after %d tokens, want %d", stop, (int)e.finish, n, j + 1);
        fb_seq_free(s, a);
    }
    /* a two-byte stop string made of two consecutive generated tokens (the
     * match spans tokens): it ends at the first place the pair appears */
    int m = -1;
    for (int i = 3; i + 1 < ng && m < 0; i++)
        if (greedy[i] >= 0x20 && greedy[i] < 0x7f && greedy[i + 1] >= 0x20 && greedy[i + 1] < 0x7f) m = i;
    FB_CHECK(m >= 0, "the greedy continuation has no two printable ASCII bytes in a row");
    if (m >= 0) {
        char stop2[3] = {(char)greedy[m], (char)greedy[m + 1], 0};
        int first = m;
        for (int i = 3; i < m; i++)
            if (greedy[i] == greedy[m] && greedy[i + 1] == greedy[m + 1]) { first = i; break; }
        p.max_tokens = 0;
        p.n_stops = 1;
        p.stops[0] = stop2;
        FB_CHECK(fb_seq_new(s, &p, &a) == FB_OK && fb_seq_add_text(s, a, "abc", 3, 0) == FB_OK, "seq");
        e = finish(s, a);
        fb_seq_tokens(s, a, &n);
        FB_CHECK(e.finish == FB_FINISH_STOP && n == first + 2, "stop '%s' across tokens: finish %d after %d tokens, want %d", stop2,
                 (int)e.finish, n, first + 2);
        fb_seq_free(s, a);
    }
    /* the context: slide 0 finishes, slide 1 goes on to max_positions */
    p.n_stops = 0;
    p.slide = 0;
    FB_CHECK(fb_seq_new(s, &p, &a) == FB_OK && fb_seq_add_text(s, a, "abc", 3, 0) == FB_OK, "seq");
    e = finish(s, a);
    FB_CHECK(e.finish == FB_FINISH_CONTEXT, "full context without sliding: finish %d", (int)e.finish);
    fb_seq_free(s, a);
    p.slide = 1;
    p.max_positions = 100;
    FB_CHECK(fb_seq_new(s, &p, &a) == FB_OK && fb_seq_add_text(s, a, "abc", 3, 0) == FB_OK, "seq");
    e = finish(s, a);
    fb_seq_tokens(s, a, &n);
    FB_CHECK(e.finish == FB_FINISH_LENGTH && n == 101, "sliding to max_positions 100: finish %d, %d tokens", (int)e.finish, n);
    fb_seq_free(s, a);
    /* errors */
    int b = -1, c = -1;
    FB_CHECK(fb_seq_new(s, &p, &a) == FB_OK && fb_seq_new(s, &p, &b) == FB_OK, "two slots");
    FB_CHECK(fb_seq_new(s, &p, &c) == FB_ERR_UNSUPPORTED, "a third sequence in a 2-slot session");
    char longp[64];
    memset(longp, 'z', sizeof longp - 1);
    longp[63] = 0;
    FB_CHECK(fb_seq_add_text(s, a, longp, 63, 0) == FB_ERR_SHAPE, "63 tokens into a 40-token context accepted");
    FB_CHECK(strstr(fb_last_error(), "context") != NULL, "message: %s", fb_last_error());
    FB_CHECK(fb_seq_add_text(s, a, longp, 63, 1) == FB_OK, "truncate: %s", fb_last_error());
    fb_seq_tokens(s, a, &n);
    FB_CHECK(n == 20, "truncated prompt keeps ctx/2 = 20 tokens, got %d", n);
    int32_t bad = 300;
    FB_CHECK(fb_seq_add_tokens(s, b, &bad, 1) == FB_ERR_INVALID_ARG, "token id 300 of 256 accepted");
    fb_seq_event ev[1];
    FB_CHECK(fb_session_step(s, ev, 1, &n) == FB_ERR_INVALID_ARG, "step with 1 event slot for 2 sequences");
    fb_seq_free(s, a);
    fb_seq_free(s, b);
    /* churn: thousands of sequences through two slots */
    p.max_tokens = 1;
    for (int i = 0; i < 2000; i++) {
        FB_CHECK(fb_seq_new(s, &p, &a) == FB_OK, "churn %d: %s", i, fb_last_error());
        if (i % 3 == 0) { FB_CHECK(fb_seq_add_text(s, a, "q", 1, 0) == FB_OK, "churn text"); finish(s, a); }
        fb_seq_free(s, a);
    }
    FB_CHECK(fb_session_active(s) == 0, "sequences left after churn");
    fb_session_free(s);
}

/* A pool too small for everyone: on FB_ERR_KV_FULL the newest running
 * sequence is preempted (its blocks freed, recomputed later) and the step is
 * retried; every sequence still ends with the greedy tokens it has alone. */
static void test_preemption(fb_llm *llm) {
    static toks alone[NP];
    for (int i = 0; i < NP; i++) run_together(llm, &i, 1, 0.0f, alone);
    fb_session_options so = fb_session_options_default();
    so.max_seqs = NP;
    so.max_batch = 7;
    so.kv_block_size = 4;
    so.kv_blocks = 40;   /* 160 positions for 5 sequences of up to ~90 */
    fb_session *s = NULL;
    FB_CHECK(fb_session_create(&s, llm, &so) == FB_OK, "session: %s", fb_last_error());
    if (!s) return;
    int seq[NP], order[NP], n_order = 0;
    for (int j = 0; j < NP; j++) {
        fb_gen_params p = fb_gen_params_default();
        p.temperature = 0.0f;
        p.max_tokens = 40 + 3 * j;
        FB_CHECK(fb_seq_new(s, &p, &seq[j]) == FB_OK, "seq_new: %s", fb_last_error());
        FB_CHECK(fb_seq_add_text(s, seq[j], PROMPTS[j], strlen(PROMPTS[j]), 0) == FB_OK, "add_text: %s", fb_last_error());
        order[n_order++] = seq[j];
    }
    fb_seq_event ev[NP];
    int preemptions = 0, done[NP] = {0}, guard = 0;
    while (fb_session_active(s) > 0 && guard++ < 5000) {
        int n;
        fb_status st = fb_session_step(s, ev, NP, &n);
        if (st == FB_ERR_KV_FULL) {
            FB_CHECK(n == 0, "KV_FULL step produced %d events", n);
            int victim = -1;   /* the newest unfinished sequence that holds blocks */
            for (int j = n_order - 1; j >= 0 && victim < 0; j--)
                if (!done[order[j]] && fb_seq_kv_tokens(s, order[j]) > 0) victim = order[j];
            FB_CHECK(victim >= 0, "nothing to preempt");
            if (victim < 0) break;
            fb_seq_preempt(s, victim);
            preemptions++;
            continue;
        }
        FB_CHECK(st == FB_OK, "step: %s", fb_last_error());
        for (int i = 0; i < n; i++)
            if (ev[i].finish != FB_FINISH_NONE) done[ev[i].seq] = 1;
        /* a finished sequence gives its blocks back */
        for (int j = 0; j < NP; j++)
            if (done[seq[j]] == 1) {
                toks got;
                grab(s, seq[j], &got);
                FB_CHECK(same(&got, &alone[j]), "prompt %d: preempted run differs from the run alone", j);
                fb_seq_free(s, seq[j]);
                done[seq[j]] = 2;
            }
    }
    FB_CHECK(preemptions > 0, "the pool never ran out: the test does not test preemption");
    const fb_session_kv k = fb_session_kv_stats(s);
    FB_CHECK(k.blocks_used == 0 && k.blocks_free == k.blocks_total, "blocks left in use: %d of %d", k.blocks_used, k.blocks_total);
    printf("preemption: %d preemptions, every sequence equals its run alone, all %d blocks free at the end\n", preemptions,
           k.blocks_total);
    fb_session_free(s);
}

/* The prefix cache: a second request with the same 40-byte prompt takes its
 * full blocks from the cache and generates the same greedy text. */
static void test_prefix_cache(fb_llm *llm) {
    fb_session_options so = fb_session_options_default();
    so.max_seqs = 2;
    so.kv_block_size = 8;
    so.prefix_cache = 1;
    fb_session *s = NULL;
    FB_CHECK(fb_session_create(&s, llm, &so) == FB_OK, "session: %s", fb_last_error());
    if (!s) return;
    const char *prompt = "Once upon a time, in a land far away, the";   /* 41 bytes */
    toks first, second;
    for (int round = 0; round < 2; round++) {
        fb_gen_params p = fb_gen_params_default();
        p.temperature = 0.0f;
        p.max_tokens = 20;
        int q;
        FB_CHECK(fb_seq_new(s, &p, &q) == FB_OK, "seq_new: %s", fb_last_error());
        FB_CHECK(fb_seq_add_text(s, q, prompt, strlen(prompt), 0) == FB_OK, "add_text: %s", fb_last_error());
        finish(s, q);
        grab(s, q, round ? &second : &first);
        fb_seq_free(s, q);
    }
    const fb_session_stats st = fb_session_get_stats(s);
    const fb_session_kv k = fb_session_kv_stats(s);
    FB_CHECK(st.prefix_hit_tokens == 40, "prefix cache: %ld prompt tokens reused, want 40 (5 full blocks of 8)", st.prefix_hit_tokens);
    FB_CHECK(same(&first, &second), "prefix cache: the cached run generates other tokens");
    FB_CHECK(k.blocks_used == 0 && k.blocks_cached > 0, "prefix cache: %d used, %d cached", k.blocks_used, k.blocks_cached);
    printf("prefix cache: %ld prompt tokens reused, same greedy text, %d blocks kept for reuse\n", st.prefix_hit_tokens, k.blocks_cached);
    fb_session_free(s);
}

int main(void) {
    make_model();
    fb_llm *llm = NULL;
    FB_CHECK(fb_llm_load(&llm, g_path, NULL) == FB_OK, "load: %s", fb_last_error());
    if (llm) {
        FB_CHECK(!strcmp(fb_llm_format(llm), "safetensors"), "format %s", fb_llm_format(llm));
        test_batch_invariance(llm);
        test_fork_and_logprobs(llm);
        test_stop_rules(llm);
        test_preemption(llm);
        test_prefix_cache(llm);
    }
    fb_llm_free(llm);
    unlink(g_path);
    return fb_test_finish("infer_session");
}
