/*
 * Paged KV cache: the keys and values of every cached position, in
 * fixed-size blocks of block_size tokens drawn from one pool (vLLM's
 * PagedAttention layout, on the CPU).
 *
 *   pool   per layer, K then V: [n_blocks][block_size][row] floats
 *          (row = n_kv_heads·head_dim; GQA stores only the KV heads)
 *   table  per sequence: the blocks holding its positions 0, bs, 2·bs, ...
 *   ref    per block: how many tables hold it (+1 while the prefix cache
 *          keeps it); a block with ref 0 is on the free list
 *
 * Attention reads K and V through (layer pool, table, block size) — see
 * fb_kv_layer_view and attention/kv_rows.h — so a sequence's blocks need not
 * be adjacent and several sequences can share blocks:
 *   - fb_kv_fork shares every block of the parent; the first write into a
 *     shared block (only the last, partial one can be written: positions
 *     before len are immutable) copies it first (copy on write);
 *   - the prefix cache (optional) keys each full block by its tokens and the
 *     block before it; a new sequence whose prompt starts with cached blocks
 *     attaches them instead of recomputing (fb_kv_prefix_attach). Cached
 *     blocks nobody uses are evicted least recently used when the pool runs
 *     dry.
 * Running out of blocks is a status (FB_ERR_KV_FULL from fb_kv_reserve),
 * never an abort: the caller frees or preempts a sequence and retries.
 *
 * Not thread-safe: one engine owns it.
 */
#ifndef FB_INFER_KV_CACHE_H
#define FB_INFER_KV_CACHE_H
#include "flashblock.h"
#include <stdint.h>

typedef struct fb_kv_cache_config {
    int n_seqs, n_layers, max_T, n_kv_heads, head_dim;
    int block_size;      /* tokens per block; 0 = 16 */
    int n_blocks;        /* pool size; 0 = enough for n_seqs full sequences */
    int prefix_cache;    /* 1: keep full blocks for reuse by equal prefixes */
} fb_kv_cache_config;

typedef struct fb_kv_stats {
    int blocks_total, blocks_used, blocks_free, blocks_cached;   /* cached: held only by the prefix cache */
    long prefix_queries, prefix_hit_blocks, evictions;
} fb_kv_stats;

typedef struct fb_kv_cache {
    int n_seqs, n_layers, max_T, row, block_size, table_width, n_blocks, prefix_cache;
    float *pool;            /* [n_layers][2][n_blocks][block_size][row] */
    int32_t *table;         /* [n_seqs][table_width] */
    int *len;               /* tokens cached per sequence */
    int *held;              /* blocks in each table */
    int *published;         /* full blocks of each table already in the prefix cache */
    int *ref;               /* [n_blocks] */
    int32_t *free_list;
    int n_free;
    /* prefix cache: chained hash of (parent block, tokens) per cached block */
    uint64_t *hash;         /* [n_blocks] */
    int32_t *parent;        /* [n_blocks] block before it in its sequence, -1 for the first */
    int32_t *tokens;        /* [n_blocks][block_size] */
    int32_t *next;          /* [n_blocks] bucket chain */
    int32_t *bucket;        /* [n_buckets] */
    uint64_t *last_use;     /* [n_blocks] LRU clock */
    unsigned char *cached;  /* [n_blocks] */
    int n_buckets;
    uint64_t clock;
    fb_kv_stats stats;
} fb_kv_cache;

/* Where attention reads one sequence's keys and values of one layer. */
typedef struct fb_kv_view {
    const float *k, *v;     /* the layer's pools */
    const int32_t *table;   /* the sequence's blocks */
    int block_size, n_pool_blocks;
} fb_kv_view;

fb_status fb_kv_cache_init(fb_kv_cache *kv, const fb_kv_cache_config *cfg);
void      fb_kv_cache_free(fb_kv_cache *kv);
size_t    fb_kv_cache_bytes(const fb_kv_cache *kv);
/* Bytes of one block (all layers, K and V): the unit of a MiB budget. */
size_t    fb_kv_block_bytes(const fb_kv_cache_config *cfg);

static inline int fb_kv_len(const fb_kv_cache *kv, int seq) { return kv->len[seq]; }

/* Make room for positions [len, n_tokens) of seq: blocks are taken from the
 * free list (evicting unused cached blocks if needed), and a shared block at
 * the write position is copied first. FB_ERR_KV_FULL when the pool has no
 * block left; blocks taken before that stay with the sequence. */
fb_status fb_kv_reserve(fb_kv_cache *kv, int seq, int n_tokens);
/* Store n rows of keys and values (src rows src_stride floats apart) at
 * positions [pos, pos+n) of seq in layer; the room must be reserved. */
void      fb_kv_write(fb_kv_cache *kv, int seq, int layer, int pos, int n, const float *k, const float *v,
                      int64_t src_stride);
/* The sequence now holds n_tokens positions (after every layer is written). */
void      fb_kv_set_len(fb_kv_cache *kv, int seq, int n_tokens);
fb_kv_view fb_kv_layer_view(const fb_kv_cache *kv, int seq, int layer);
/* Drop the sequence's positions and release its blocks. */
void      fb_kv_reset(fb_kv_cache *kv, int seq);
/* dst (empty) shares every block of src. */
fb_status fb_kv_fork(fb_kv_cache *kv, int src, int dst);

/* Prefix cache (when enabled; otherwise both do nothing and attach returns 0).
 * attach: for an empty seq whose first tokens are tokens[0..n), attach the
 * longest run of cached full blocks that match, leaving at least one token
 * to compute; returns the number of positions now cached.
 * publish: enter seq's full blocks (tokens[0..n) are its tokens) into the cache. */
int       fb_kv_prefix_attach(fb_kv_cache *kv, int seq, const int32_t *tokens, int n);
void      fb_kv_prefix_publish(fb_kv_cache *kv, int seq, const int32_t *tokens, int n);

fb_kv_stats fb_kv_get_stats(const fb_kv_cache *kv);
/* Recount every reference and the free list; FB_ERR_INVALID_ARG with the
 * first inconsistency (for tests). */
fb_status fb_kv_check(const fb_kv_cache *kv);
#endif
