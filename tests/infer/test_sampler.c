/* Sampler: config validation, greedy ties, top-k = 1, distributions of
 * temperature / top-k / top-p / min-p (chi-square), run.c equivalence,
 * reproducibility, repetition, presence and frequency penalties, bad logits. */
#include "infer/sampler.h"
#include "test_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fb_sampler *make(fb_sampler_config c, int V) {
    fb_sampler *s = NULL;
    fb_status st = fb_sampler_init(&s, &c, V);
    FB_CHECK(st == FB_OK && s, "init failed: %s", fb_last_error());
    return s;
}

static void check_invalid(fb_sampler_config c, int V, const char *field) {
    fb_sampler *s = (fb_sampler *)1;
    fb_status st = fb_sampler_init(&s, &c, V);
    FB_CHECK(st == FB_ERR_INVALID_ARG, "%s: expected FB_ERR_INVALID_ARG, got %d", field, (int)st);
    FB_CHECK(s == NULL, "%s: out not cleared on failure", field);
    FB_CHECK(strstr(fb_last_error(), field) != NULL, "%s: message '%s' does not name the field", field,
             fb_last_error());
}

static void test_validation(void) {
    fb_sampler_config d = fb_sampler_config_default(), c;
    c = d; c.temperature = -0.1f; check_invalid(c, 10, "temperature");
    c = d; c.temperature = NAN; check_invalid(c, 10, "temperature");
    c = d; c.top_k = -1; check_invalid(c, 10, "top_k");
    c = d; c.top_p = 0.0f; check_invalid(c, 10, "top_p");
    c = d; c.top_p = 1.01f; check_invalid(c, 10, "top_p");
    c = d; c.top_p = NAN; check_invalid(c, 10, "top_p");
    c = d; c.min_p = -0.5f; check_invalid(c, 10, "min_p");
    c = d; c.min_p = 1.5f; check_invalid(c, 10, "min_p");
    c = d; c.repetition_penalty = 0.0f; check_invalid(c, 10, "repetition_penalty");
    c = d; c.repetition_window = -2; check_invalid(c, 10, "repetition_window");
    c = d; c.presence_penalty = NAN; check_invalid(c, 10, "presence_penalty");
    c = d; c.frequency_penalty = INFINITY; check_invalid(c, 10, "frequency_penalty");
    check_invalid(d, 0, "vocab_size");
    fb_sampler *s = make(d, 10);
    fb_sampler_free(s);
}

static void test_greedy(void) {
    fb_sampler_config c = fb_sampler_config_default();
    c.temperature = 0.0f;
    fb_sampler *s = make(c, 6);
    float l1[6] = {1, 3, 2, 3, -1, 3};
    FB_CHECK(fb_sampler_sample(s, l1, NULL, 0) == 1, "greedy tie: lowest index expected");
    float l2[6] = {-INFINITY, -5, -5, -INFINITY, -7, -6};
    FB_CHECK(fb_sampler_sample(s, l2, NULL, 0) == 1, "greedy with -inf and ties");
    float l3[6] = {9, 1, 2, 3, 4, 9};
    FB_CHECK(fb_sampler_sample(s, l3, NULL, 0) == 0, "greedy tie at index 0");
    fb_sampler_free(s);

    /* random logits vs brute force; top_k = 1 at temperature 1 gives the same */
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 7);
    const int V = 1000;
    float *l = malloc(sizeof(float) * V), *l0 = malloc(sizeof(float) * V);
    fb_sampler *g = make(c, V);
    fb_sampler_config ck = fb_sampler_config_default();
    ck.top_k = 1;
    ck.seed = 5;
    fb_sampler *k1 = make(ck, V);
    for (int it = 0; it < 200; it++) {
        for (int i = 0; i < V; i++) l0[i] = (float)(int)(fb_test_rng_normal(&rng) * 4.0f);   /* many ties */
        int best = 0;
        for (int i = 1; i < V; i++) if (l0[i] > l0[best]) best = i;
        memcpy(l, l0, sizeof(float) * V);
        FB_CHECK(fb_sampler_sample(g, l, NULL, 0) == best, "greedy != argmax (it %d)", it);
        memcpy(l, l0, sizeof(float) * V);
        FB_CHECK(fb_sampler_sample(k1, l, NULL, 0) == best, "top_k=1 != greedy (it %d)", it);
    }
    fb_sampler_free(g);
    fb_sampler_free(k1);
    free(l);
    free(l0);
}

/* Expected distribution after temperature, top-k, top-p, min-p (double). */
static void expected(const float *logits, int V, fb_sampler_config c, double *q) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, logits[i] / c.temperature);
    for (int i = 0; i < V; i++) { q[i] = exp(logits[i] / c.temperature - mx); sum += q[i]; }
    for (int i = 0; i < V; i++) q[i] /= sum;
    int order[64];
    for (int i = 0; i < V; i++) order[i] = i;
    for (int i = 0; i < V; i++)   /* selection sort, descending, ties by index */
        for (int j = i + 1; j < V; j++)
            if (q[order[j]] > q[order[i]]) { int t = order[i]; order[i] = order[j]; order[j] = t; }
    int keep = V;
    if (c.top_k > 0 && c.top_k < keep) keep = c.top_k;
    double mass = 0;
    for (int i = 0; i < keep; i++) mass += q[order[i]];
    if (c.top_p < 1.0f) {
        double cum = 0;
        for (int i = 0; i < keep; i++) {
            cum += q[order[i]] / mass;
            if (cum > c.top_p) { keep = i + 1; break; }
        }
    }
    if (c.min_p > 0) {
        int m = 0;
        while (m < keep && q[order[m]] >= c.min_p * q[order[0]]) m++;
        keep = m;
    }
    double kept = 0;
    for (int i = 0; i < keep; i++) kept += q[order[i]];
    double out[64] = {0};
    for (int i = 0; i < keep; i++) out[order[i]] = q[order[i]] / kept;
    for (int i = 0; i < V; i++) q[i] = out[i];
}

static void test_distribution(const char *name, fb_sampler_config c) {
    enum { V = 10, DRAWS = 200000 };
    const float logits0[V] = {1.0f, 2.5f, 0.3f, -1.0f, 2.0f, 1.7f, -0.2f, 0.9f, 3.0f, -2.0f};
    double q[V];
    expected(logits0, V, c, q);
    fb_sampler *s = make(c, V);
    long count[V] = {0};
    for (int it = 0; it < DRAWS; it++) {
        float l[V];
        memcpy(l, logits0, sizeof l);
        const int t = fb_sampler_sample(s, l, NULL, 0);
        FB_CHECK(t >= 0 && t < V, "%s: token %d out of range", name, t);
        if (t >= 0 && t < V) count[t]++;
    }
    double chi2 = 0;
    int df = -1;
    for (int i = 0; i < V; i++) {
        if (q[i] == 0) {
            FB_CHECK(count[i] == 0, "%s: token %d drawn %ld times but excluded", name, i, count[i]);
            continue;
        }
        const double e = q[i] * DRAWS;
        chi2 += (count[i] - e) * (count[i] - e) / e;
        df++;
    }
    /* far beyond the 99.99th percentile of chi-square(df) for df <= 9 */
    const double limit = df + 8.0 * sqrt(2.0 * (df > 0 ? df : 1)) + 10.0;
    FB_CHECK(chi2 <= limit, "%s: chi-square %.2f > %.2f (df %d)", name, chi2, limit, df);
    printf("  %-28s kept %d tokens, chi2 %.2f (df %d)\n", name, df + 1, chi2, df);
    fb_sampler_free(s);
}

/* run.c's sample() for temperature > 0 (its code, with ties sorted by index). */
typedef struct { float prob; int index; } ref_pi;
static int ref_cmp(const void *a, const void *b) {
    const ref_pi *x = a, *y = b;
    if (x->prob > y->prob) return -1;
    if (x->prob < y->prob) return 1;
    return x->index - y->index;
}
static uint32_t ref_u32(uint64_t *s) {
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545F4914F6CDD1Dull) >> 32);
}
static int runc_sample(float *logits, int n, float temp, float topp, uint64_t *rng, ref_pi *pi, int prefilter) {
    for (int q = 0; q < n; q++) logits[q] /= temp;
    float mx = logits[0];
    for (int i = 1; i < n; i++) if (logits[i] > mx) mx = logits[i];
    float sum = 0;
    for (int i = 0; i < n; i++) { logits[i] = expf(logits[i] - mx); sum += logits[i]; }
    for (int i = 0; i < n; i++) logits[i] /= sum;
    float coin = (float)(ref_u32(rng) >> 8) / 16777216.0f;
    if (topp <= 0 || topp >= 1) {
        float cdf = 0;
        for (int i = 0; i < n; i++) { cdf += logits[i]; if (coin < cdf) return i; }
        return n - 1;
    }
    int n0 = 0;
    const float cutoff = prefilter ? (1.0f - topp) / (n - 1) : -1.0f;
    for (int i = 0; i < n; i++)
        if (logits[i] >= cutoff) { pi[n0].index = i; pi[n0].prob = logits[i]; n0++; }
    qsort(pi, (size_t)n0, sizeof *pi, ref_cmp);
    float cum = 0;
    int last = n0 - 1;
    for (int i = 0; i < n0; i++) { cum += pi[i].prob; if (cum > topp) { last = i; break; } }
    float r = coin * cum, cdf = 0;
    for (int i = 0; i <= last; i++) { cdf += pi[i].prob; if (r < cdf) return pi[i].index; }
    return pi[last].index;
}

static void test_runc_equivalence(void) {
    const int V = 32000;
    float *l0 = malloc(sizeof(float) * V), *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V),
          *c2 = malloc(sizeof(float) * V);
    ref_pi *pi = malloc(sizeof(ref_pi) * V);
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 99);
    const float topps[3] = {0.9f, 0.5f, 1.0f};
    for (int tp = 0; tp < 3; tp++) {
        fb_sampler_config c = fb_sampler_config_default();
        c.temperature = 0.8f;
        c.top_p = topps[tp];
        c.seed = 1234;
        fb_sampler *s = make(c, V);
        uint64_t st = 1234, st2 = 1234;
        int mismatch = 0, mismatch_nf = 0;
        for (int it = 0; it < 100; it++) {
            for (int i = 0; i < V; i++) l0[i] = fb_test_rng_normal(&rng) * 3.0f;
            memcpy(a, l0, sizeof(float) * V);
            memcpy(b, l0, sizeof(float) * V);
            memcpy(c2, l0, sizeof(float) * V);
            const int got = fb_sampler_sample(s, a, NULL, 0);
            mismatch += got != runc_sample(b, V, c.temperature, c.top_p, &st, pi, 1);
            mismatch_nf += got != runc_sample(c2, V, c.temperature, c.top_p, &st2, pi, 0);   /* no pre-filter */
        }
        FB_CHECK(mismatch == 0, "top_p %.2f: %d draws differ from run.c's sample()", (double)c.top_p, mismatch);
        FB_CHECK(mismatch_nf == 0, "top_p %.2f: %d draws differ from a full sort", (double)c.top_p, mismatch_nf);
        fb_sampler_free(s);
    }
    free(l0); free(a); free(b); free(c2); free(pi);
}

/* top-k by selection = top-k by full sort, large vocabulary. */
static void test_topk_selection(void) {
    const int V = 5000;
    float *l0 = malloc(sizeof(float) * V), *a = malloc(sizeof(float) * V);
    ref_pi *pi = malloc(sizeof(ref_pi) * V);
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 3);
    const int ks[4] = {1, 2, 40, 4999};
    for (int ki = 0; ki < 4; ki++) {
        fb_sampler_config c = fb_sampler_config_default();
        c.top_k = ks[ki];
        c.seed = 77;
        fb_sampler *s = make(c, V);
        uint64_t st = 77;
        int mismatch = 0;
        for (int it = 0; it < 50; it++) {
            for (int i = 0; i < V; i++) l0[i] = (float)(int)(fb_test_rng_normal(&rng) * 6.0f);   /* ties */
            memcpy(a, l0, sizeof(float) * V);
            const int got = fb_sampler_sample(s, a, NULL, 0);
            /* reference: softmax as the sampler did (a now holds it), full sort, first k, CDF walk */
            for (int i = 0; i < V; i++) { pi[i].prob = a[i]; pi[i].index = i; }
            qsort(pi, (size_t)V, sizeof *pi, ref_cmp);
            float mass = 0;
            for (int i = 0; i < ks[ki]; i++) mass += pi[i].prob;
            const float r = (float)(ref_u32(&st) >> 8) / 16777216.0f * mass;
            float cdf = 0;
            int want = pi[ks[ki] - 1].index;
            for (int i = 0; i < ks[ki]; i++) { cdf += pi[i].prob; if (r < cdf) { want = pi[i].index; break; } }
            mismatch += got != want;
        }
        FB_CHECK(mismatch == 0, "top_k %d: %d draws differ from full-sort top-k", ks[ki], mismatch);
        fb_sampler_free(s);
    }
    free(l0); free(a); free(pi);
}

static void test_seed(void) {
    fb_sampler_config c = fb_sampler_config_default();
    c.temperature = 1.0f;
    c.top_p = 0.95f;
    c.seed = 42;
    enum { V = 50, N = 300 };
    int seq[3][N];
    for (int run = 0; run < 3; run++) {
        c.seed = run < 2 ? 42 : 43;
        fb_sampler *s = make(c, V);
        fb_test_rng rng;
        fb_test_rng_seed(&rng, 5);
        for (int i = 0; i < N; i++) {
            float l[V];
            for (int j = 0; j < V; j++) l[j] = fb_test_rng_normal(&rng);
            seq[run][i] = fb_sampler_sample(s, l, NULL, 0);
        }
        fb_sampler_free(s);
    }
    FB_CHECK(memcmp(seq[0], seq[1], sizeof seq[0]) == 0, "same seed gave different sequences");
    FB_CHECK(memcmp(seq[0], seq[2], sizeof seq[0]) != 0, "different seeds gave the same sequence");
    /* reseed restarts the stream */
    fb_sampler *s = make(c, V);
    float x0 = fb_sampler_rng_f32(s), x1 = fb_sampler_rng_f32(s);
    fb_sampler_reseed(s, c.seed);
    FB_CHECK(fb_sampler_rng_f32(s) == x0 && fb_sampler_rng_f32(s) == x1, "reseed does not restart the stream");
    /* seed 0 is usable (not a stuck xorshift) */
    fb_sampler_reseed(s, 0);
    float y0 = fb_sampler_rng_f32(s), y1 = fb_sampler_rng_f32(s);
    FB_CHECK(y0 != y1, "seed 0 gives a stuck generator");
    fb_sampler_free(s);
}

static void test_penalty(void) {
    fb_sampler_config c = fb_sampler_config_default();
    c.temperature = 0.0f;
    c.repetition_penalty = 1.5f;
    c.repetition_window = 3;
    fb_sampler *s = make(c, 5);
    float l[5] = {2.0f, 1.5f, -1.0f, 0.5f, 1.0f};
    int32_t recent[4] = {0, 0, 3, 2};
    /* token 0 (2.0 -> 1.333) loses to token 1 (1.5) */
    FB_CHECK(fb_sampler_sample(s, l, recent, 4) == 1, "penalty did not move the argmax");
    FB_CHECK(fabsf(l[0] - 2.0f / 1.5f) < 1e-6f, "positive logit: /penalty once (got %g)", (double)l[0]);
    FB_CHECK(fabsf(l[2] - -1.5f) < 1e-6f, "negative logit: *penalty (got %g)", (double)l[2]);
    FB_CHECK(fabsf(l[3] - 0.5f / 1.5f) < 1e-6f, "token 3 penalised once (got %g)", (double)l[3]);
    FB_CHECK(l[1] == 1.5f && l[4] == 1.0f, "unpenalised logits changed");
    /* window: token 0 only at position 0, outside the last 3 */
    float l2[5] = {2.0f, 1.5f, -1.0f, 0.5f, 1.0f};
    int32_t recent2[4] = {0, 4, 3, 2};
    FB_CHECK(fb_sampler_sample(s, l2, recent2, 4) == 0, "token outside the window was penalised");
    int32_t bad[1] = {5};
    float l3[5] = {0};
    FB_CHECK(fb_sampler_sample(s, l3, bad, 1) == -1, "out-of-vocabulary recent token accepted");
    fb_sampler_free(s);
}

/* OpenAI presence/frequency penalties: logit -= presence + frequency x count
 * for each distinct token of the window, after the repetition penalty. */
static void test_presence_frequency(void) {
    fb_sampler_config c = fb_sampler_config_default();
    c.temperature = 0.0f;
    c.repetition_window = 4;
    c.presence_penalty = 0.5f;
    c.frequency_penalty = 0.25f;
    fb_sampler *s = make(c, 6);
    float l[6] = {3.0f, 2.9f, 1.0f, -1.0f, 0.0f, 2.5f};
    int32_t recent[6] = {0, 0, 0, 2, 0, 3};   /* window = last 4: {0, 2, 0, 3} */
    /* token 0: 3 - 0.5 - 2 x 0.25 = 2.0 loses to token 1 (2.9) */
    FB_CHECK(fb_sampler_sample(s, l, recent, 6) == 1, "presence/frequency did not move the argmax");
    FB_CHECK(fabsf(l[0] - 2.0f) < 1e-6f, "token 0 (twice in the window): got %g, want 2", (double)l[0]);
    FB_CHECK(fabsf(l[2] - 0.25f) < 1e-6f, "token 2 (once): got %g, want 0.25", (double)l[2]);
    FB_CHECK(fabsf(l[3] - -1.75f) < 1e-6f, "token 3 (once, negative): got %g, want -1.75", (double)l[3]);
    FB_CHECK(l[1] == 2.9f && l[4] == 0.0f && l[5] == 2.5f, "tokens outside the window changed");
    fb_sampler_free(s);
    /* with the repetition penalty first: (3 / 2) - 0.5 - 0.25 x 2 = 0.5 */
    c.repetition_penalty = 2.0f;
    s = make(c, 6);
    float l2[6] = {3.0f, 2.9f, 1.0f, -1.0f, 0.0f, 2.5f};
    (void)fb_sampler_sample(s, l2, recent, 6);
    FB_CHECK(fabsf(l2[0] - 0.5f) < 1e-6f, "repetition then presence/frequency: got %g, want 0.5", (double)l2[0]);
    FB_CHECK(fabsf(l2[3] - -2.75f) < 1e-6f, "negative logit x penalty then -0.75: got %g", (double)l2[3]);
    fb_sampler_free(s);
    /* negative penalties encourage repetition; a zero window turns them off */
    c.repetition_penalty = 1.0f;
    c.presence_penalty = -1.0f;
    c.frequency_penalty = 0.0f;
    s = make(c, 6);
    float l3[6] = {0.0f, 0.5f, 0.0f, 0.0f, 0.0f, 0.0f};
    int32_t rec3[1] = {4};
    FB_CHECK(fb_sampler_sample(s, l3, rec3, 1) == 4, "negative presence penalty did not favour the seen token");
    fb_sampler_free(s);
    c.repetition_window = 0;
    s = make(c, 6);
    float l4[6] = {0.0f, 0.5f, 0.0f, 0.0f, 0.0f, 0.0f};
    FB_CHECK(fb_sampler_sample(s, l4, rec3, 1) == 1 && l4[4] == 0.0f, "window 0 still penalised");
    fb_sampler_free(s);
    /* sampled (not greedy): the same draw as without penalties when the window is empty */
    fb_sampler_config d = fb_sampler_config_default();
    d.seed = 5;
    fb_sampler_config e = d;
    e.presence_penalty = 1.0f;
    e.frequency_penalty = 1.0f;
    fb_sampler *sd = make(d, 6), *se = make(e, 6);
    for (int i = 0; i < 50; i++) {
        float a[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, b[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
        FB_CHECK(fb_sampler_sample(sd, a, NULL, 0) == fb_sampler_sample(se, b, NULL, 0), "draw %d differs", i);
    }
    fb_sampler_free(sd);
    fb_sampler_free(se);
}

static void test_bad_logits(void) {
    fb_sampler_config c = fb_sampler_config_default();
    for (int greedy = 0; greedy < 2; greedy++) {
        c.temperature = greedy ? 0.0f : 0.7f;
        fb_sampler *s = make(c, 4);
        float l[4] = {0.1f, NAN, 0.3f, 0.2f};
        FB_CHECK(fb_sampler_sample(s, l, NULL, 0) == -1, "NaN logit accepted");
        FB_CHECK(strstr(fb_last_error(), "NaN") != NULL, "NaN message: '%s'", fb_last_error());
        float l2[4] = {0.1f, INFINITY, 0.3f, 0.2f};
        FB_CHECK(fb_sampler_sample(s, l2, NULL, 0) == -1, "+inf logit accepted");
        float l3[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        FB_CHECK(fb_sampler_sample(s, l3, NULL, 0) == -1, "all -inf accepted");
        float l4[4] = {-INFINITY, -INFINITY, 1.0f, -INFINITY};
        FB_CHECK(fb_sampler_sample(s, l4, NULL, 0) == 2, "single finite logit not chosen");
        fb_sampler_free(s);
    }
    /* vocabulary of one */
    fb_sampler_config c1 = fb_sampler_config_default();
    c1.top_p = 0.5f;
    fb_sampler *s = make(c1, 1);
    float l[1] = {0.3f};
    FB_CHECK(fb_sampler_sample(s, l, NULL, 0) == 0, "vocab of one");
    fb_sampler_free(s);
}

int main(void) {
    test_validation();
    test_greedy();
    fb_sampler_config c = fb_sampler_config_default();
    c.seed = 11;
    c.temperature = 1.0f; test_distribution("temperature 1", c);
    c.temperature = 0.6f; test_distribution("temperature 0.6", c);
    c.temperature = 1.0f; c.top_k = 3; test_distribution("top_k 3", c);
    c.top_k = 0; c.top_p = 0.8f; test_distribution("top_p 0.8", c);
    c.top_p = 1.0f; c.min_p = 0.3f; test_distribution("min_p 0.3", c);
    c.temperature = 1.3f; c.top_k = 6; c.top_p = 0.9f; c.min_p = 0.1f; test_distribution("T1.3 k6 p0.9 minp0.1", c);
    c.temperature = 0.7f; c.top_k = 5; c.top_p = 0.7f; c.min_p = 0.0f; test_distribution("T0.7 k5 p0.7", c);
    test_runc_equivalence();
    test_topk_selection();
    test_seed();
    test_penalty();
    test_presence_frequency();
    test_bad_logits();
    return fb_test_finish("test_sampler");
}
