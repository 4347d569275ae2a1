/* Typed entry points for the engine: each fills an fb_op_args block and runs
 * the variant selected for this CPU. Shapes as in ops.h. */
#ifndef FB_OPS_KERNELS_H
#define FB_OPS_KERNELS_H
#include "ops/ops.h"

static inline void fb_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                                        const float *b, int64_t N, int64_t C, float eps) {
    fb_op_args a = {.in = {x, w, b}, .out = {y, mean, rstd}, .d = {N, C}, .f = {eps}};
    fb_op_run(FB_OP_LAYERNORM_FWD, &a);
}
static inline void fb_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int64_t N, int64_t C,
                                      float eps) {
    fb_op_args a = {.in = {x, w}, .out = {y, rstd}, .d = {N, C}, .f = {eps}};
    fb_op_run(FB_OP_RMSNORM_FWD, &a);
}
static inline void fb_matmul_forward(float *y, const float *x, const float *W, const float *b, int64_t N, int64_t C,
                                     int64_t OC) {
    fb_op_args a = {.in = {x, W, b}, .out = {y}, .d = {N, C, OC}};
    fb_op_run(FB_OP_MATMUL_FWD, &a);
}
static inline void fb_rope_forward(float *y, const float *x, int64_t B, int64_t T, int64_t n_heads, int64_t head_dim,
                                   int64_t row_stride, int64_t pos0, float theta) {
    fb_op_args a = {.in = {x}, .out = {y}, .d = {B, T, n_heads, head_dim, row_stride, pos0}, .f = {theta}};
    fb_op_run(FB_OP_ROPE_FWD, &a);
}
static inline void fb_gelu_tanh_forward(float *y, const float *x, int64_t N) {
    fb_op_args a = {.in = {x}, .out = {y}, .d = {N}};
    fb_op_run(FB_OP_GELU_TANH_FWD, &a);
}
static inline void fb_gelu_forward(float *y, const float *x, int64_t N) {
    fb_op_args a = {.in = {x}, .out = {y}, .d = {N}};
    fb_op_run(FB_OP_GELU_FWD, &a);
}
static inline void fb_swiglu_forward(float *y, const float *h, int64_t N, int64_t F) {
    fb_op_args a = {.in = {h}, .out = {y}, .d = {N, F}};
    fb_op_run(FB_OP_SWIGLU_FWD, &a);
}
static inline void fb_residual_forward(float *y, const float *p, const float *q, int64_t N) {
    fb_op_args a = {.in = {p, q}, .out = {y}, .d = {N}};
    fb_op_run(FB_OP_RESIDUAL_FWD, &a);
}
/* Attention over [B, T, H, D]-style buffers with token strides; see ops.h. */
static inline void fb_attention_forward(float *o, float *lse, const float *q, const float *k, const float *v,
                                        int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t Hkv, int64_t D,
                                        int causal, int64_t q_stride, int64_t kv_stride, int64_t o_stride) {
    fb_op_args a = {.in = {q, k, v}, .out = {o, lse}, .d = {B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride, o_stride}};
    fb_op_run(FB_OP_ATTENTION_FWD, &a);
}
/* FlashAttention backward; q, k, v, o, lse as saved by the forward, dout with
 * o's stride; dq (q's stride), dk, dv (kv stride) OVERWRITTEN. scale 0 means
 * 1/sqrt(D). Deterministic for any thread count. See ops.h. */
static inline void fb_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                         const float *k, const float *v, const float *o, const float *lse,
                                         int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t Hkv, int64_t D,
                                         int causal, int64_t q_stride, int64_t kv_stride, int64_t o_stride,
                                         float scale) {
    fb_op_args a = {.in = {q, k, v, o, lse, dout}, .out = {dq, dk, dv},
                    .d = {B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride, o_stride}, .f = {scale}};
    fb_op_run(FB_OP_ATTENTION_BWD, &a);
}
/* ---- backward ops (training); ACC = accumulates (+=), see ops.h ---- */
/* dx ACC, dw ACC, db ACC (NULL: none) */
static inline void fb_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                                         const float *w, const float *mean, const float *rstd, int64_t N, int64_t C) {
    fb_op_args a = {.in = {dy, x, w, mean, rstd}, .out = {dx, dw, db}, .d = {N, C}};
    fb_op_run(FB_OP_LAYERNORM_BWD, &a);
}
/* dx ACC, dw ACC */
static inline void fb_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                                       const float *rstd, int64_t N, int64_t C) {
    fb_op_args a = {.in = {dy, x, w, rstd}, .out = {dx, dw}, .d = {N, C}};
    fb_op_run(FB_OP_RMSNORM_BWD, &a);
}
/* dx[N,C] ACC, dW[OC,C] ACC, db[OC] ACC (NULL: none) */
static inline void fb_matmul_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                                      const float *W, int64_t N, int64_t C, int64_t OC) {
    fb_op_args a = {.in = {dy, x, W}, .out = {dx, dW, db}, .d = {N, C, OC}};
    fb_op_run(FB_OP_MATMUL_BWD, &a);
}
/* dx OVERWRITE (dx == dy allowed) */
static inline void fb_rope_backward(float *dx, const float *dy, int64_t B, int64_t T, int64_t n_heads,
                                    int64_t head_dim, int64_t row_stride, int64_t pos0, float theta) {
    fb_op_args a = {.in = {dy}, .out = {dx}, .d = {B, T, n_heads, head_dim, row_stride, pos0}, .f = {theta}};
    fb_op_run(FB_OP_ROPE_BWD, &a);
}
/* dx OVERWRITE */
static inline void fb_gelu_tanh_backward(float *dx, const float *dy, const float *x, int64_t N) {
    fb_op_args a = {.in = {dy, x}, .out = {dx}, .d = {N}};
    fb_op_run(FB_OP_GELU_TANH_BWD, &a);
}
static inline void fb_gelu_backward(float *dx, const float *dy, const float *x, int64_t N) {
    fb_op_args a = {.in = {dy, x}, .out = {dx}, .d = {N}};
    fb_op_run(FB_OP_GELU_BWD, &a);
}
/* dh[N,2F] OVERWRITE */
static inline void fb_swiglu_backward(float *dh, const float *dy, const float *h, int64_t N, int64_t F) {
    fb_op_args a = {.in = {dy, h}, .out = {dh}, .d = {N, F}};
    fb_op_run(FB_OP_SWIGLU_BWD, &a);
}
/* da ACC, db ACC */
static inline void fb_residual_backward(float *da, float *db, const float *dy, int64_t N) {
    fb_op_args a = {.in = {dy}, .out = {da, db}, .d = {N}};
    fb_op_run(FB_OP_RESIDUAL_BWD, &a);
}
/* y[B,T,C] OVERWRITE = wte[ids] + wpe[t] (wpe NULL: none); 0 <= ids < V */
static inline void fb_embedding_forward(float *y, const int32_t *ids, const float *wte, const float *wpe, int64_t B,
                                        int64_t T, int64_t C, int64_t V) {
    fb_op_args a = {.in = {(const float *)(const void *)ids, wte, wpe}, .out = {y}, .d = {B, T, C, V}};
    fb_op_run(FB_OP_EMBEDDING_FWD, &a);
}
/* dwte[V,C] ACC, dwpe[T,C] ACC (NULL: none) */
static inline void fb_embedding_backward(float *dwte, float *dwpe, const float *dy, const int32_t *ids, int64_t B,
                                         int64_t T, int64_t C, int64_t V) {
    fb_op_args a = {.in = {dy, (const float *)(const void *)ids}, .out = {dwte, dwpe}, .d = {B, T, C, V}};
    fb_op_run(FB_OP_EMBEDDING_BWD, &a);
}
/* loss[N] OVERWRITE (0 where target < 0), dh[N,C] ACC, dW[V,C] ACC (both
 * untouched, may be NULL, when forward_only); dlogits = (softmax - onehot)·grad_scale */
static inline void fb_crossentropy_fused(float *loss, float *dh, float *dW, const float *h, const float *W,
                                         const int32_t *targets, int64_t N, int64_t C, int64_t V, int forward_only,
                                         float grad_scale) {
    fb_op_args a = {.in = {h, W, (const float *)(const void *)targets}, .out = {loss, dh, dW},
                    .d = {N, C, V, forward_only}, .f = {grad_scale}};
    fb_op_run(FB_OP_CROSSENTROPY_FUSED, &a);
}
/* ---- inference ops ---- */
/* Decode attention (split-K over the cached keys), same layout and slots as
 * fb_attention_forward; for Tq = 1 (or a few) query tokens after Tk - Tq cached. */
static inline void fb_attention_decode(float *o, float *lse, const float *q, const float *k, const float *v,
                                       int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t Hkv, int64_t D,
                                       int causal, int64_t q_stride, int64_t kv_stride, int64_t o_stride) {
    fb_op_args a = {.in = {q, k, v}, .out = {o, lse}, .d = {B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride, o_stride}};
    fb_op_run(FB_OP_ATTENTION_DECODE, &a);
}
/* y[N,OC] OVERWRITE = x[N,C]·dequant(Wq)ᵀ + b (NULL: none); Wq: OC rows of C/32
 * Q8_0 blocks (34 bytes each, see ops/quant_q8_0.h); C % 32 == 0. */
static inline void fb_matmul_q8_0_forward(float *y, const void *Wq, const float *x, const float *b, int64_t N,
                                          int64_t C, int64_t OC) {
    fb_op_args a = {.in = {x, (const float *)Wq, b}, .out = {y}, .d = {N, C, OC}};
    fb_op_run(FB_OP_MATMUL_Q8_0, &a);
}
#endif
