/* Token sampler; the order of operations is documented in sampler.h. */
#include "infer/sampler.h"
#include "core/error.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float prob;
    int32_t index;
} prob_index;

struct fb_sampler {
    fb_sampler_config cfg;
    int vocab;
    uint64_t rng;
    prob_index *cand;     /* [vocab] candidates */
    uint32_t *stamp;      /* [vocab] dedup marks for the penalty window */
    uint32_t stamp_gen;
    int32_t *count;       /* [vocab] occurrences in the window (valid where stamp is current) */
    int32_t *distinct;    /* [vocab] the distinct tokens of the window, in first-seen order */
};

#define FB_SAMPLER_ZERO_SEED 0x9E3779B97F4A7C15ull

fb_sampler_config fb_sampler_config_default(void) {
    fb_sampler_config c = {1.0f, 0, 1.0f, 0.0f, 1.0f, 64, 0, 0.0f, 0.0f};
    return c;
}

fb_status fb_sampler_config_validate(const fb_sampler_config *c, int vocab_size) {
    if (!c) return fb_fail(FB_ERR_INVALID_ARG, "sampler: config is NULL");
    if (vocab_size <= 0) return fb_fail(FB_ERR_INVALID_ARG, "sampler: vocab_size %d must be > 0", vocab_size);
    if (!(c->temperature >= 0.0f) || isinf(c->temperature))
        return fb_fail(FB_ERR_INVALID_ARG, "sampler: temperature %g must be finite and >= 0", (double)c->temperature);
    if (c->top_k < 0) return fb_fail(FB_ERR_INVALID_ARG, "sampler: top_k %d must be >= 0", c->top_k);
    if (!(c->top_p > 0.0f && c->top_p <= 1.0f))
        return fb_fail(FB_ERR_INVALID_ARG, "sampler: top_p %g must be in (0, 1]", (double)c->top_p);
    if (!(c->min_p >= 0.0f && c->min_p <= 1.0f))
        return fb_fail(FB_ERR_INVALID_ARG, "sampler: min_p %g must be in [0, 1]", (double)c->min_p);
    if (!(c->repetition_penalty > 0.0f) || isinf(c->repetition_penalty))
        return fb_fail(FB_ERR_INVALID_ARG, "sampler: repetition_penalty %g must be finite and > 0",
                       (double)c->repetition_penalty);
    if (!isfinite(c->presence_penalty))
        return fb_fail(FB_ERR_INVALID_ARG, "sampler: presence_penalty %g must be finite", (double)c->presence_penalty);
    if (!isfinite(c->frequency_penalty))
        return fb_fail(FB_ERR_INVALID_ARG, "sampler: frequency_penalty %g must be finite", (double)c->frequency_penalty);
    if (c->repetition_window < -1)
        return fb_fail(FB_ERR_INVALID_ARG, "sampler: repetition_window %d must be >= -1", c->repetition_window);
    return FB_OK;
}

void fb_sampler_reseed(fb_sampler *s, uint64_t seed) { s->rng = seed ? seed : FB_SAMPLER_ZERO_SEED; }

fb_status fb_sampler_init(fb_sampler **out, const fb_sampler_config *cfg, int vocab_size) {
    if (!out) return fb_fail(FB_ERR_INVALID_ARG, "sampler: out is NULL");
    *out = NULL;
    FB_TRY(fb_sampler_config_validate(cfg, vocab_size));
    fb_sampler *s = calloc(1, sizeof *s);
    if (!s) return fb_fail(FB_ERR_OOM, "sampler: out of memory");
    s->cfg = *cfg;
    s->vocab = vocab_size;
    s->cand = malloc(sizeof(prob_index) * (size_t)vocab_size);
    s->stamp = calloc((size_t)vocab_size, sizeof(uint32_t));
    s->count = malloc(sizeof(int32_t) * (size_t)vocab_size);
    s->distinct = malloc(sizeof(int32_t) * (size_t)vocab_size);
    if (!s->cand || !s->stamp || !s->count || !s->distinct) {
        fb_sampler_free(s);
        return fb_fail(FB_ERR_OOM, "sampler: out of memory for a vocabulary of %d", vocab_size);
    }
    fb_sampler_reseed(s, cfg->seed);
    *out = s;
    return FB_OK;
}

fb_status fb_sampler_clone(fb_sampler **out, const fb_sampler *src) {
    if (!out || !src) return fb_fail(FB_ERR_INVALID_ARG, "sampler clone: NULL argument");
    FB_TRY(fb_sampler_init(out, &src->cfg, src->vocab));
    (*out)->rng = src->rng;   /* the same stream from here on */
    return FB_OK;
}

void fb_sampler_free(fb_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->stamp);
    free(s->count);
    free(s->distinct);
    free(s);
}

/* run.c's random_u32 / random_f32 (xorshift*). */
static uint32_t rng_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}
float fb_sampler_rng_f32(fb_sampler *s) { return (float)(rng_u32(&s->rng) >> 8) / 16777216.0f; }

/* Higher probability first, then the lower index: a strict total order. */
static inline int before(const prob_index *a, const prob_index *b) {
    return a->prob > b->prob || (a->prob == b->prob && a->index < b->index);
}
static int cmp_desc(const void *pa, const void *pb) {
    const prob_index *a = pa, *b = pb;
    return before(a, b) ? -1 : (before(b, a) ? 1 : 0);
}

/* Rearrange c[0..n) so that c[0..k) are the k first in `before` order. */
static void select_top(prob_index *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        /* median of three as pivot */
        int mid = lo + (hi - lo) / 2;
        prob_index t;
        if (before(&c[mid], &c[lo])) { t = c[mid]; c[mid] = c[lo]; c[lo] = t; }
        if (before(&c[hi], &c[lo])) { t = c[hi]; c[hi] = c[lo]; c[lo] = t; }
        if (before(&c[hi], &c[mid])) { t = c[hi]; c[hi] = c[mid]; c[mid] = t; }
        const prob_index pivot = c[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (before(&c[i], &pivot)) i++;
            while (before(&pivot, &c[j])) j--;
            if (i <= j) { t = c[i]; c[i] = c[j]; c[j] = t; i++; j--; }
        }
        /* now [lo, j] <= pivot <= [i, hi] in order, elements between equal the pivot */
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

static void apply_penalty(fb_sampler *s, float *logits, const int32_t *recent, int n_recent) {
    const float pen = s->cfg.repetition_penalty, pres = s->cfg.presence_penalty, freq = s->cfg.frequency_penalty;
    int start = 0;
    if (s->cfg.repetition_window >= 0 && n_recent > s->cfg.repetition_window) start = n_recent - s->cfg.repetition_window;
    if (++s->stamp_gen == 0) {   /* wrapped: clear the marks */
        memset(s->stamp, 0, sizeof(uint32_t) * (size_t)s->vocab);
        s->stamp_gen = 1;
    }
    int nd = 0;   /* count each distinct token of the window */
    for (int i = start; i < n_recent; i++) {
        const int32_t t = recent[i];
        if (s->stamp[t] == s->stamp_gen) { s->count[t]++; continue; }
        s->stamp[t] = s->stamp_gen;
        s->count[t] = 1;
        s->distinct[nd++] = t;
    }
    for (int i = 0; i < nd; i++) {
        const int32_t t = s->distinct[i];
        if (pen != 1.0f) logits[t] = logits[t] > 0.0f ? logits[t] / pen : logits[t] * pen;
        if (pres != 0.0f || freq != 0.0f) logits[t] -= pres + freq * (float)s->count[t];
    }
}

int fb_sampler_sample(fb_sampler *s, float *logits, const int32_t *recent, int n_recent) {
    if (!s || !logits) { fb_fail(FB_ERR_INVALID_ARG, "sampler: NULL sampler or logits"); return -1; }
    if (n_recent < 0 || (n_recent > 0 && !recent)) {
        fb_fail(FB_ERR_INVALID_ARG, "sampler: bad recent tokens (n_recent %d)", n_recent);
        return -1;
    }
    const int n = s->vocab;
    const fb_sampler_config *c = &s->cfg;
    int any_finite = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(logits[i]) || logits[i] == INFINITY) {
            fb_fail(FB_ERR_NUMERIC, "sampler: logit %d is %s", i, isnan(logits[i]) ? "NaN" : "+inf");
            return -1;
        }
        any_finite |= logits[i] != -INFINITY;
    }
    if (!any_finite) { fb_fail(FB_ERR_NUMERIC, "sampler: every logit is -inf"); return -1; }
    for (int i = 0; i < n_recent; i++)
        if (recent[i] < 0 || recent[i] >= n) {
            fb_fail(FB_ERR_INVALID_ARG, "sampler: recent token %d is outside the vocabulary of %d", (int)recent[i], n);
            return -1;
        }

    if ((c->repetition_penalty != 1.0f || c->presence_penalty != 0.0f || c->frequency_penalty != 0.0f) &&
        c->repetition_window != 0 && n_recent > 0)
        apply_penalty(s, logits, recent, n_recent);

    if (c->temperature == 0.0f || n == 1) {   /* run.c's argmax: first maximum */
        int best = 0;
        float bv = logits[0];
        for (int i = 1; i < n; i++)
            if (logits[i] > bv) { bv = logits[i]; best = i; }
        return best;
    }

    /* temperature + softmax, exactly as run.c */
    for (int i = 0; i < n; i++) logits[i] /= c->temperature;
    float *p = logits;
    float mx = p[0];
    for (int i = 1; i < n; i++) if (p[i] > mx) mx = p[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) { p[i] = expf(p[i] - mx); sum += p[i]; }
    for (int i = 0; i < n; i++) p[i] /= sum;

    const int use_k = c->top_k > 0 && c->top_k < n;
    const int use_p = c->top_p > 0.0f && c->top_p < 1.0f;
    const int use_minp = c->min_p > 0.0f;

    if (!use_k && !use_p && !use_minp) {   /* run.c's sample_mult */
        const float coin = fb_sampler_rng_f32(s);
        float cdf = 0.0f;
        for (int i = 0; i < n; i++) {
            cdf += p[i];
            if (coin < cdf) return i;
        }
        return n - 1;
    }

    prob_index *cand = s->cand;
    int n0 = 0;
    int sorted = 0;
    float mass = 1.0f;   /* total probability of the candidates (1: the whole vocabulary) */
    if (use_k) {
        for (int i = 0; i < n; i++) { cand[i].prob = p[i]; cand[i].index = i; }
        select_top(cand, n, c->top_k);
        n0 = c->top_k;
        qsort(cand, (size_t)n0, sizeof *cand, cmp_desc);
        sorted = 1;
        mass = 0.0f;
        for (int i = 0; i < n0; i++) mass += cand[i].prob;
    } else if (use_p) {
        /* run.c's pre-filter: tokens below this can never be in the nucleus */
        const float cutoff = (1.0f - c->top_p) / (float)(n - 1);
        for (int i = 0; i < n; i++)
            if (p[i] >= cutoff) { cand[n0].index = i; cand[n0].prob = p[i]; n0++; }
        if (n0 == 0) {   /* only when top_p < 1/n: the most probable token */
            int best = 0;
            for (int i = 1; i < n; i++) if (p[i] > p[best]) best = i;
            cand[0].index = best; cand[0].prob = p[best]; n0 = 1;
        }
        qsort(cand, (size_t)n0, sizeof *cand, cmp_desc);
        sorted = 1;
    } else {
        for (int i = 0; i < n; i++) { cand[i].prob = p[i]; cand[i].index = i; }
        n0 = n;
    }

    float total;   /* mass of the kept candidates, as run.c: accumulated in order */
    if (use_p) {
        const float target = c->top_p * mass;
        float cum = 0.0f;
        int last = n0 - 1;
        for (int i = 0; i < n0; i++) {
            cum += cand[i].prob;
            if (cum > target) { last = i; break; }
        }
        n0 = last + 1;
        total = cum;
    } else {
        total = 0.0f;
        for (int i = 0; i < n0; i++) total += cand[i].prob;
    }

    if (use_minp) {
        float pmax = cand[0].prob;
        if (!sorted) for (int i = 1; i < n0; i++) if (cand[i].prob > pmax) pmax = cand[i].prob;
        const float thr = c->min_p * pmax;
        int m = 0;
        total = 0.0f;
        for (int i = 0; i < n0; i++)
            if (cand[i].prob >= thr) { cand[m++] = cand[i]; total += cand[i].prob; }
        n0 = m;   /* >= 1: the maximum always passes */
    }

    const float r = fb_sampler_rng_f32(s) * total;
    float cdf = 0.0f;
    for (int i = 0; i < n0; i++) {
        cdf += cand[i].prob;
        if (r < cdf) return cand[i].index;
    }
    return cand[n0 - 1].index;
}
