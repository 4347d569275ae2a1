/*
 * Training data: text or a token file → one array of token ids, a train /
 * validation split, and random windows drawn from a seeded RNG.
 *
 * Token file (docs/FORMATS.md): 32-byte header, little-endian
 *   char magic[8] = "FBTOKENS"; u32 version = 1; u32 dtype = 2 (u16) | 4 (u32);
 *   u64 count; u32 vocab_size; u32 reserved = 0
 * followed by count ids of dtype bytes each.
 */
#ifndef FB_TRAIN_DATA_H
#define FB_TRAIN_DATA_H
#include "flashblock.h"
#include "flashblock_tokenizer.h"
#include <stddef.h>
#include <stdint.h>

fb_status fb_tokens_write(const char *path, const int32_t *ids, size_t n, int vocab_size);
/* Reads a token file, or, if the file does not start with the magic,
 * tokenizes it as text with tok. *ids is malloc'd. Ids are checked against
 * the tokenizer's vocabulary. */
fb_status fb_data_load(const char *path, const fb_tokenizer *tok, int32_t **ids, size_t *n);

typedef struct fb_data_split {
    const int32_t *train, *val;
    size_t n_train, n_val;
} fb_data_split;

/* Last val_fraction of the tokens (at least T+1 of them) for validation;
 * FB_ERR_INVALID_ARG naming the sizes if the data is too short. */
fb_status fb_data_split_make(const int32_t *ids, size_t n, double val_fraction, int T, fb_data_split *out);

/* xorshift64* generator whose whole state is one u64 (saved in checkpoints). */
typedef struct fb_rng { uint64_t s; } fb_rng;
void     fb_rng_seed(fb_rng *r, uint64_t seed);
uint64_t fb_rng_next(fb_rng *r);

/* B random window starts in [0, n - T - 1], one RNG draw each, in order. */
void fb_data_window_starts(size_t n, int T, fb_rng *rng, int B, size_t *starts);
/* The windows of T+1 tokens at starts[0..B): ids[b,t] = w[t], targets[b,t] = w[t+1]. */
void fb_data_windows(const int32_t *tokens, int T, const size_t *starts, int B, int32_t *ids, int32_t *targets);
#endif
