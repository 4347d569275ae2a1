/*
 * Token sampler: greedy, temperature, top-k, top-p, min-p, repetition
 * penalty, seeded RNG.
 *
 * Order of operations in fb_sampler_sample (llama2.c's run.c order, extended):
 *   1. penalties over the last `repetition_window` tokens of `recent`, as
 *      llama.cpp applies them, each distinct token once: the repetition
 *      penalty (logit > 0 → logit / penalty, else logit × penalty), then
 *      the OpenAI presence and frequency penalties (logit -= presence +
 *      frequency × count, count = occurrences of the token in the window);
 *   2. temperature == 0: greedy argmax of the (penalised) logits, the lowest
 *      index on ties (llama2.c's argmax); no random number is drawn;
 *   3. logits /= temperature, softmax over the whole vocabulary (float, as
 *      run.c);
 *   4. top-k (0 < k < vocab): the k most probable tokens by partial selection
 *      (quickselect, O(V)), then sorted; probabilities renormalised over them;
 *   5. top-p (0 < p < 1): the smallest prefix of the tokens sorted by
 *      probability whose cumulative probability exceeds p (run.c's
 *      sample_topp). Without top-k the vocabulary is never sorted whole:
 *      tokens below (1 - p)/(V - 1) cannot be in the nucleus and are
 *      dropped before sorting the rest (run.c's pre-filter);
 *   6. min-p (> 0): drop tokens with probability < min_p · (max probability);
 *   7. draw coin = rng_f32() (run.c's xorshift random_f32) and walk the CDF
 *      of the kept tokens, scaled by their total mass.
 * With top_k = 0, min_p = 0 and no penalty this is exactly run.c's sample():
 * same float operations, same RNG stream for the same seed, so the same
 * tokens for the same logits (except where run.c's unstable qsort orders
 * exactly tied probabilities differently; we order ties by index).
 * Ties in probability are always broken by the lower token id.
 */
#ifndef FB_INFER_SAMPLER_H
#define FB_INFER_SAMPLER_H
#include "flashblock.h"
#include <stdint.h>

typedef struct fb_sampler_config {
    float temperature;         /* >= 0; 0 = greedy */
    int top_k;                 /* >= 0; 0 = off */
    float top_p;               /* (0, 1]; 1 = off */
    float min_p;               /* [0, 1]; 0 = off */
    float repetition_penalty;  /* > 0; 1 = off */
    int repetition_window;     /* last N tokens of `recent` penalised; 0 = off, -1 = all given */
    uint64_t seed;             /* xorshift state (0 is replaced by a fixed non-zero constant) */
    float presence_penalty;    /* finite; subtracted once from every token in the window; 0 = off */
    float frequency_penalty;   /* finite; subtracted per occurrence in the window; 0 = off */
} fb_sampler_config;

typedef struct fb_sampler fb_sampler;

/* temperature 1, top_k 0, top_p 1, min_p 0, penalty 1, window 64, seed 0,
 * presence and frequency penalties 0. */
fb_sampler_config fb_sampler_config_default(void);
/* Checks every field; FB_ERR_INVALID_ARG naming the field on failure. */
fb_status fb_sampler_config_validate(const fb_sampler_config *cfg, int vocab_size);

fb_status fb_sampler_init(fb_sampler **out, const fb_sampler_config *cfg, int vocab_size);
/* Next token from logits[vocab_size] (modified: penalties, temperature,
 * softmax in place). recent: the tokens so far (may be NULL when n_recent
 * is 0). Returns the token id, or -1 with fb_last_error() set for NaN or +inf
 * logits, all logits -inf, or a recent token id outside the vocabulary. */
int fb_sampler_sample(fb_sampler *s, float *logits, const int32_t *recent, int n_recent);
/* Restart the random stream (same seed → same sequence again). */
void fb_sampler_reseed(fb_sampler *s, uint64_t seed);
/* The next coin in [0, 1) from the sampler's RNG (run.c's random_f32). */
float fb_sampler_rng_f32(fb_sampler *s);
/* A second sampler with the same config and the same random state. */
fb_status fb_sampler_clone(fb_sampler **out, const fb_sampler *src);
void fb_sampler_free(fb_sampler *s);
#endif
