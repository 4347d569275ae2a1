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

/* Kernel workspace (bytes) a block forward (backward too: backward != 0)
 * over B×T tokens needs with n_threads threads: the largest over its op
 * calls (ops/workspace.h). Plan once per batch shape, for the largest. */
size_t fb_block_workspace_bytes(const fb_block_config *c, int B, int T, int backward, int n_threads);

/* y = block(x); y may alias nothing in acts. params laid out as above; ws
 * holds fb_block_workspace_bytes(c, B, T, 0, threads) bytes or more. */
fb_status fb_block_forward_with(const fb_block_config *c, const float *params, const fb_block_layout *L,
                                fb_block_acts *acts, const fb_workspace *ws, float *y, const float *x, int B, int T,
                                int pos0);
#endif

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
