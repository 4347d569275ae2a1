/*
 * Inference engine: a model, a paged KV cache and scratch for up to
 * max_rows tokens per call.
 *
 * fb_engine_step runs a list of (sequence, token) rows through the model:
 * rows of the same sequence must be consecutive and follow that sequence's
 * cached length, so one call is a prefill chunk (many rows of one sequence),
 * a batched decode step (one row of each of several sequences), or a mix.
 * Each layer is the block's one step sequence (fb_block_forward_rows, the
 * same code as the training forward) with the KV cache as its attention
 * source: the rows' keys and values are appended to their sequences'
 * blocks, then attention reads everything cached through the block tables
 * (FlashAttention for chunks, split-K FlashDecoding for a few tokens).
 */
#ifndef FB_INFER_ENGINE_H
#define FB_INFER_ENGINE_H
#include "flashblock.h"
#include "infer/kv_cache.h"
#include "model/block.h"
#include "model/model.h"

typedef struct fb_engine_options {
    int n_seqs;          /* sequence slots */
    int max_T;           /* positions per sequence */
    int max_rows;        /* tokens per fb_engine_step call */
    int q8;              /* Q8_0 weights for every matmul */
    int kv_block_size;   /* tokens per KV block; 0 = 16 */
    int kv_blocks;       /* KV pool size in blocks; 0 = n_seqs full sequences */
    int prefix_cache;    /* keep full blocks for equal prefixes (kv_cache.h) */
} fb_engine_options;

typedef struct fb_engine {
    fb_model *m;
    fb_kv_cache kv;
    int max_rows;
    int use_q8;
    void *q8;                   /* quantized copies (see engine.c) */
    float *ws;                  /* scratch for max_rows rows */
    float *x;                   /* [max_rows, C] residual stream */
    fb_block_acts acts;         /* the block's activations for max_rows rows */
    fb_workspace ops_ws;        /* kernel workspace for max_rows rows, max_T positions */
    int ops_ws_threads;         /* ... planned for this many threads */
    float *logits;              /* [max_rows, vocab] */
    int *pos;                   /* [max_rows] */
    fb_row_span *spans;         /* [max_rows] */
} fb_engine;

/* The engine borrows m (which must outlive it). */
fb_status fb_engine_init(fb_engine *e, fb_model *m, const fb_engine_options *o);
void      fb_engine_free(fb_engine *e);

/* Runs n rows. Logits are computed for the rows with want_logits[r] != 0
 * (all rows when want_logits is NULL) and stored packed: the j-th such row
 * at e->logits + j·vocab. FB_ERR_KV_FULL (nothing computed, no length
 * changed) when the KV cache has no block for the new positions. */
fb_status fb_engine_step(fb_engine *e, int n, const int *seq, const int32_t *ids, const unsigned char *want_logits);
/* Prefill a prompt for one sequence in chunks of at most chunk rows; the
 * logits of the last prompt token are at e->logits on return. */
fb_status fb_engine_prefill(fb_engine *e, int seq, const int32_t *ids, int n, int chunk);
#endif
