/*
 * Model inspection: what the attention heads do and what each sub-layer is
 * worth, measured on windows of text (`flashblock inspect`).
 *
 * Everything comes from the training forward (fb_model_forward) and the
 * activations it keeps:
 *   - attention statistics per layer and head, from the Q and K rows of
 *     acts.qkv (after RoPE): each query's softmax over the positions it sees
 *     is recomputed in double (scale 1/sqrt(D), causal, GQA head h reads KV
 *     head h / (H / Hkv)). For the query at position t (0-based) of a window,
 *     with p_j its probability on key j ≤ t:
 *       entropy   -Σ p_j log p_j / log(t + 1)   (1 = uniform over what it sees)
 *       distance  Σ p_j (t - j)                 (tokens back)
 *       first     p_0                           (the window's first token)
 *       prev      p_{t-1}                       (the previous token)
 *     each averaged over the queries t = 1 .. T-1 of every window (t = 0
 *     sees only itself); at t = 1 the first and the previous token coincide;
 *   - the residual stream's mean L2 norm per row entering each layer
 *     (index L: leaving the last block, before the final norm);
 *   - the mean next-token loss intact, with one block's attention output
 *     removed (W_o and b_o zeroed: X' = X) and with one block's MLP output
 *     removed (W_down and b_down zeroed: Y = X'), one block at a time. The
 *     weights are zeroed in place and restored bit for bit afterwards;
 *   - the probabilities of window 0's first S positions per layer and head
 *     (S×S, row i = query i; the causal block is exactly the top-left one).
 * Sums run in double in a fixed order: results do not depend on the thread
 * count.
 */
#ifndef FB_MODEL_INSPECT_H
#define FB_MODEL_INSPECT_H
#include "flashblock.h"
#include <stddef.h>
#include <stdint.h>

typedef struct fb_inspect_config {
    int ctx;          /* T: predicted tokens per window (window = T + 1 ids); 1 < T <= max_seq */
    int batch;        /* windows per forward pass (activation memory); 0: 4 */
    int map_tokens;   /* S of the sample maps (<= T; 0: no maps) */
} fb_inspect_config;

typedef struct fb_inspect_report {
    int n_layers, n_heads, n_kv_heads, ctx, n_windows, map_tokens;
    size_t n_queries;                       /* queries averaged per head: windows · (T - 1) */
    double *entropy, *distance, *first, *prev;   /* [L·H], layer-major */
    double loss;                            /* mean next-token loss (nats), intact */
    double *loss_no_attn, *loss_no_mlp;     /* [L] */
    double *resid_norm;                     /* [L + 1] */
    float *maps;                            /* [L, H, S, S] window 0, 0 above the diagonal */
} fb_inspect_report;

/* windows: n_windows rows of ctx + 1 token ids (ids = w[0..T), targets =
 * w[1..T]). Allocates the model's training activations for (batch, ctx)
 * (fb_model_alloc_training) and leaves them allocated; the weights are
 * unchanged on return. *out is filled (free with fb_inspect_report_free). */
fb_status fb_inspect_run(fb_model *m, const int32_t *windows, int n_windows, const fb_inspect_config *cfg,
                         fb_inspect_report *out);
void fb_inspect_report_free(fb_inspect_report *r);
#endif
