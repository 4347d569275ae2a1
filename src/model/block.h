/* Internal view of a block: its parameter layout and a forward pass over
 * caller-provided activation buffers (the model carves these from its own
 * allocation; fb_block_forward keeps a workspace in the handle). */
#ifndef FB_MODEL_BLOCK_H
#define FB_MODEL_BLOCK_H
#include "flashblock.h"
#include "ops/workspace.h"

typedef struct fb_block_layout {
    size_t offset[FB_P_COUNT];
    size_t numel[FB_P_COUNT];
    size_t total;           /* floats */
} fb_block_layout;

/* Parameter offsets for a config (memory order keeps gate|up weights and
 * biases adjacent so SwiGLU's two projections are one GEMM). */
void fb_block_layout_compute(const fb_block_config *c, fb_block_layout *out);
/* The same with no storage for the parameters in unstored (a mask of
 * 1u << fb_block_param): they keep their numel (the tensor's size) but take
 * no floats, and their offset is 0, never to be read. A model loaded for
 * quantized inference holds its matrices as Q8_0 only (model.h). */
void fb_block_layout_compute_stored(const fb_block_config *c, unsigned unstored, fb_block_layout *out);

/* Activations of one block forward for N = B·T tokens, in floats. */
typedef struct fb_block_acts {
    float *ln1;     /* [N, C]   attention norm output */
    float *ln1_stat[2]; /* mean, rstd [N] (mean unused for RMSNorm) */
    float *qkv;     /* [N, (H + 2·Hkv)·D] after RoPE */
    float *att;     /* [N, C]   attention output (heads concatenated) */
    float *lse;     /* [B, H, T] */
    float *x1;      /* [N, C]   residual after attention */
    float *ln2;     /* [N, C] */
    float *ln2_stat[2];
    float *h;       /* [N, F] or [N, 2F] (gate | up) */
    float *act;     /* [N, F]   MLP activation */
    float *tmp;     /* [N, C]   projection outputs before the residual add */
} fb_block_acts;

size_t fb_block_acts_floats(const fb_block_config *c, int B, int T);
void   fb_block_acts_carve(const fb_block_config *c, int B, int T, float *base, fb_block_acts *acts);

/* ---- the block's step sequence, written once ----
 * The training forward, inference prefill and decode all run
 * fb_block_forward_rows. What differs between them is only where attention
 * finds its keys and values (an fb_attention_source) and whether a matrix
 * has a Q8_0 copy. */

/* The four matrices of a block, in the order the forward uses them. */
typedef enum fb_block_matrix { FB_BM_QKV, FB_BM_OUT, FB_BM_UP /* gate|up for SwiGLU */, FB_BM_DOWN, FB_BM_COUNT } fb_block_matrix;

typedef struct fb_block_weights {
    const float *params;            /* fp32 parameters in layout L */
    const fb_block_layout *layout;
    const void *q8[FB_BM_COUNT];    /* Q8_0 copy of a matrix (ops/quant_q8_0.h), or NULL: fp32 */
} fb_block_weights;

/* Rows [row0, row0+n) of the batch are tokens of sequence seq at positions
 * pos0, pos0+1, ... (a training batch row, a prefill chunk, one decode token). */
typedef struct fb_row_span { int row0, n, seq, pos0; } fb_row_span;

/* Attention for one layer: qkv [N, (H+2·Hkv)·D] holds the rows' Q, K, V
 * (RoPE applied); writes att [N, C] and, for training, lse [B, H, T]. */
typedef struct fb_attention_source {
    fb_status (*attend)(void *ctx, const fb_block_config *c, const fb_workspace *ws, int layer, float *qkv, float *att,
                        float *lse, const fb_row_span *spans, int n_spans);
    void *ctx;
} fb_attention_source;

/* Attention within the rows themselves (causal, each span its own
 * sequence): the training forward. Spans of equal length are one batched call. */
extern const fb_attention_source fb_attention_self;

/* Kernel workspace (bytes) a block forward (backward too: backward != 0)
 * over B×T tokens needs with n_threads threads: the largest over its op
 * calls (ops/workspace.h). Plan once per batch shape, for the largest. */
size_t fb_block_workspace_bytes(const fb_block_config *c, int B, int T, int backward, int n_threads);

/* y = block(x) for N rows. y may be x (the residual is updated in place);
 * nothing else may alias. acts: carved for at least N rows; ws: the kernels'
 * workspace, planned by the caller for its largest call. */
fb_status fb_block_forward_rows(const fb_block_config *c, const fb_block_weights *w, fb_block_acts *acts,
                                const fb_workspace *ws, float *y, const float *x, int64_t N, const fb_row_span *spans,
                                int n_spans, int layer, const fb_attention_source *src);

/* The training forward: B sequences of T tokens at positions pos0.., fp32
 * weights, attention within the batch; ws holds
 * fb_block_workspace_bytes(c, B, T, 0, threads) bytes or more. */
fb_status fb_block_forward_with(const fb_block_config *c, const float *params, const fb_block_layout *L,
                                fb_block_acts *acts, const fb_workspace *ws, float *y, const float *x, int B, int T,
                                int pos0);

/* Gradient scratch of one block backward (reused across layers). */
typedef struct fb_block_grad_scratch {
    float *dln;     /* [N, C] */
    float *dqkv;    /* [N, QKV] */
    float *datt;    /* [N, C] */
    float *dh;      /* [N, hF] */
    float *dact;    /* [N, F] */
} fb_block_grad_scratch;

size_t fb_block_grad_scratch_floats(const fb_block_config *c, int B, int T);
void   fb_block_grad_scratch_carve(const fb_block_config *c, int B, int T, float *base, fb_block_grad_scratch *g);

/* Backward of fb_block_forward_with for input x and saved acts.
 * dres: in dL/dy, out dL/dx (updated in place). Parameter gradients
 * ACCUMULATE into grads (same layout as params). ws: as planned with
 * fb_block_workspace_bytes(c, B, T, 1, threads). */
fb_status fb_block_backward_with(const fb_block_config *c, const float *params, float *grads, const fb_block_layout *L,
                                 const fb_block_acts *acts, fb_block_grad_scratch *g, const fb_workspace *ws,
                                 const float *x, float *dres, int B, int T, int pos0);
#endif
