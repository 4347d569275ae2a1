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
#endif
