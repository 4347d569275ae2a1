/*
 * Inference engine: a model plus a KV cache and scratch for up to max_rows
 * tokens per call.
 *
 * fb_engine_step runs a list of (sequence, token) rows through the model:
 * rows of the same sequence must be consecutive and follow that sequence's
 * cached length, so one call is a prefill chunk (many rows of one sequence),
 * a batched decode step (one row of each of several sequences), or a mix.
 * Every linear layer is one matmul over all rows; attention runs per
 * sequence over cache + new rows (FlashAttention for chunks, split-K
 * FlashDecoding for single tokens).
 */
#ifndef FB_INFER_ENGINE_H
#define FB_INFER_ENGINE_H
#include "flashblock.h"
#include "infer/kv_cache.h"
#include "model/model.h"

typedef struct fb_engine {
    fb_model *m;
    fb_kv_cache kv;
    int max_rows;
    int use_q8;                 /* Q8_0 weights for the matmuls */
    void *q8;                   /* quantized copies (see engine.c) */
    float *ws;                  /* scratch for max_rows rows */
    fb_workspace ops_ws;        /* kernel workspace for max_rows rows, max_T positions */
    int ops_ws_threads;         /* ... planned for this many threads */
    float *x, *ln, *qkv, *att, *lse, *tmp, *h, *act;
    float *logits;              /* [max_rows, vocab] */
} fb_engine;

/* The engine borrows m (which must outlive it). n_seqs sequence slots of up
 * to max_T tokens; max_rows tokens per fb_engine_step call. */
fb_status fb_engine_init(fb_engine *e, fb_model *m, int n_seqs, int max_T, int max_rows, int use_q8);
void      fb_engine_free(fb_engine *e);

/* Runs n rows. Logits are computed for the rows with want_logits[r] != 0
 * (all rows when want_logits is NULL) and stored packed: the j-th such row
 * at e->logits + j·vocab. */
fb_status fb_engine_step(fb_engine *e, int n, const int *seq, const int32_t *ids, const unsigned char *want_logits);
/* Prefill a prompt for one sequence in chunks of at most chunk rows; the
 * logits of the last prompt token are at e->logits on return. */
fb_status fb_engine_prefill(fb_engine *e, int seq, const int32_t *ids, int n, int chunk);
#endif
