/*
 * KV cache: for each sequence slot and layer, the keys and values of every
 * position so far, token-major [max_T, n_kv_heads·head_dim] so that a chunk
 * of new tokens is written as contiguous rows and attention reads K/V with a
 * token stride of n_kv_heads·head_dim (GQA stores only the KV heads).
 *
 * Everything goes through these functions, so a paged layout (fixed-size
 * blocks + a block table, for the server's continuous batching) can replace
 * the contiguous one without touching the engine.
 */
#ifndef FB_INFER_KV_CACHE_H
#define FB_INFER_KV_CACHE_H
#include "flashblock.h"

typedef struct fb_kv_cache {
    int n_seqs, n_layers, max_T, row;   /* row = n_kv_heads·head_dim floats */
    float *data;                         /* [n_seqs][n_layers][2][max_T][row] */
    int *len;                            /* tokens cached per sequence */
} fb_kv_cache;

fb_status fb_kv_cache_init(fb_kv_cache *kv, int n_seqs, int n_layers, int max_T, int n_kv_heads, int head_dim);
void      fb_kv_cache_free(fb_kv_cache *kv);
size_t    fb_kv_cache_bytes(const fb_kv_cache *kv);
/* Keys / values of one sequence and layer: max_T rows of kv->row floats. */
float    *fb_kv_keys(fb_kv_cache *kv, int seq, int layer);
float    *fb_kv_values(fb_kv_cache *kv, int seq, int layer);
void      fb_kv_reset(fb_kv_cache *kv, int seq);
#endif
