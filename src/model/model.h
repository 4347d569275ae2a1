/* Internal view of the model (see model.c for the memory layout). */
#ifndef FB_MODEL_MODEL_H
#define FB_MODEL_MODEL_H
#include "flashblock.h"
#include "model/block.h"

typedef struct fb_model_tensor_info {
    char name[96];
    size_t offset;          /* floats from the start of params/grads */
    int ndim;
    int64_t shape[2];
    size_t numel;
    int decay;              /* AdamW weight decay applies (matrices only) */
    int q8;                 /* >= 0: held only as Q8_0 rows of slot q8 of the model's Q8_0
                               store (offset unused: no fp32 storage); -1: fp32 at offset */
    int64_t q8_row0;        /* its first row in that slot (q, k, v share one; gate, up another) */
} fb_model_tensor_info;

/* Weights of a model in memory. FB_MODEL_Q8_0 (inference only): every
 * matrix whose row length is a multiple of 32 — per layer the fused qkv,
 * the output projection, gate|up (or up), down; the LM head; the token
 * embedding — is held as Q8_0 only, in the model's Q8_0 store, and gets no
 * fp32 storage; norm weights, biases, learned positions and matrices of
 * other row lengths stay fp32. */
typedef enum fb_model_weights { FB_MODEL_F32 = 0, FB_MODEL_Q8_0 = 1 } fb_model_weights;

struct fb_model {
    fb_model_config cfg;
    fb_block_layout blk;
    fb_model_tensor_info *tensors;
    int n_tensors;
    size_t n_floats;
    size_t off_wte, off_wpe, off_blocks, off_normf_w, off_normf_b, off_lm;
    float *params, *grads;
    /* Q8_0 store (FB_MODEL_Q8_0): n_q8 = n_layers·FB_BM_COUNT + 2 slots,
     * per layer in fb_block_matrix order, then the LM head, then the token
     * embedding (tied: the LM head's slot, one copy). q8[slot] points to a
     * [rows, cols] Q8_0 matrix in q8_data (core/q8_0.h layout), or is NULL
     * where that matrix is fp32 in params. n_q8 = 0 for fp32 models. */
    int n_q8;
    size_t *q8_off;         /* [n_q8] byte offsets in q8_data; SIZE_MAX: fp32 */
    const void **q8;        /* [n_q8], set by fb_model_alloc */
    uint8_t *q8_data;
    size_t q8_bytes;
    /* training activations */
    int B, T, recompute;
    float *acts;
    size_t act_floats;
    float *resid;
    fb_block_acts *blk_acts;
    float *lnf, *lnf_stat[2], *losses, *dres, *dlnf, *recompute_out;
    int32_t *ids, *targets;
    fb_block_grad_scratch gscratch;
    /* called during backward as ranges of gradients become final (see below) */
    void (*grad_ready)(void *user, size_t offset, size_t count);
    void *grad_ready_user;
    fb_workspace ws;        /* kernel scratch for B×T, planned by fb_model_alloc_training */
    int ws_threads;         /* ... for this many threads */
};

/* During fb_model_forward_backward, fn(user, offset, count) is called as soon
 * as the gradients [offset, offset+count) (floats into m->grads) are final:
 * each block's range right after its backward (last layer first), then the
 * rest (embeddings, final norm, LM head). Data parallelism posts its
 * non-blocking all-reduce of each range there, so communication overlaps the
 * rest of the backward. NULL clears it. */
void fb_model_set_grad_ready(fb_model *m, void (*fn)(void *user, size_t offset, size_t count), void *user);

/* fb_model_init in two steps, for loaders: plan the tensor table without
 * allocating, check it against the file, then allocate (zeroed). Models
 * loaded for inference have no gradient buffer (with_grads 0): the weights
 * are held once. */
fb_status fb_model_plan(fb_model **out, const fb_model_config *cfg);
/* The same for the given weights (fb_model_plan: FB_MODEL_F32). */
fb_status fb_model_plan_weights(fb_model **out, const fb_model_config *cfg, fb_model_weights w);
/* Allocates params (zeroed) and, for FB_MODEL_Q8_0, the Q8_0 store
 * (zeroed; the loader fills it); with_grads must then be 0. */
fb_status fb_model_alloc(fb_model *m, int with_grads);

static inline float *fb_model_block_params(fb_model *m, int l) { return m->params + m->off_blocks + (size_t)l * m->blk.total; }

/* Q8_0 store slots (see struct fb_model) and their matrices (NULL: fp32,
 * or an fp32 model). */
static inline int fb_model_q8_slot_lm(const fb_model *m) { return m->cfg.n_layers * FB_BM_COUNT; }
static inline int fb_model_q8_slot_emb(const fb_model *m) { return m->cfg.n_layers * FB_BM_COUNT + 1; }
static inline const void *fb_model_q8(const fb_model *m, int slot) { return m->n_q8 ? m->q8[slot] : NULL; }
/* Index of layer l's tensor for block parameter p (-1: the config has none). */
int fb_model_block_tensor(const fb_model *m, int l, fb_block_param p);
/* Where tensor i's row r goes in the Q8_0 store (NULL when tensor i is fp32). */
uint8_t *fb_model_tensor_q8_row(fb_model *m, int i, int64_t r);
/* Bytes of weights held: fp32 parameters and the Q8_0 store. */
size_t fb_model_weight_bytes(const fb_model *m);

/* Fills rows [row0, row0 + rows) of Q8_0 tensor i (cols values each) from a
 * source, in parallel, one row buffer per thread: each row is read as fp32
 * by get(ctx, r, buf) (r counts from 0 within the source) and quantized
 * (fb_q8_0_quantize_row), or, with get NULL, copied as it is from q8src
 * (rows already Q8_0, e.g. a GGUF Q8_0 tensor). After each chunk of rows,
 * done(ctx, r0, r1) (optional) lets the loader drop the source pages it
 * read. On failure, *bad_row (optional) is the first failing row. */
typedef fb_status (*fb_row_get)(const void *ctx, uint64_t r, float *out);
typedef void (*fb_rows_done)(const void *ctx, uint64_t r0, uint64_t r1);
fb_status fb_model_fill_q8(fb_model *m, int i, int64_t row0, int64_t rows, fb_row_get get, const void *q8src,
                           fb_rows_done done, const void *ctx, int64_t *bad_row);
#endif
