/* Typed entry points for the engine: each fills an fb_op_args block (typed
 * slots with their shapes, dims, the caller's workspace) and runs the
 * variant selected for this machine. Shapes as in ops.h. ws: the caller's
 * planned workspace (NULL: none; ops that need one then return
 * FB_ERR_WORKSPACE). Every wrapper returns the kernel's fb_status. */
#ifndef FB_OPS_KERNELS_H
#define FB_OPS_KERNELS_H
#include "ops/ops.h"

static inline fb_workspace fb_ws_of(const fb_workspace *ws) {
    fb_workspace none = {NULL, 0};
    return ws ? *ws : none;
}

static inline fb_status fb_layernorm_forward(const fb_workspace *ws, float *y, float *mean, float *rstd, const float *x,
                                             const float *w, const float *b, int64_t N, int64_t C, float eps) {
    fb_op_args a = {.in = {fb_src_f32(x, N, C, C), fb_src_f32(w, 1, C, C), fb_src_f32(b, 1, C, C)},
                    .out = {fb_dst_f32(y, N, C, C), fb_dst_f32(mean, 1, N, N), fb_dst_f32(rstd, 1, N, N)},
                    .d = {N, C}, .f = {eps}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_LAYERNORM_FWD, &a);
}
static inline fb_status fb_rmsnorm_forward(const fb_workspace *ws, float *y, float *rstd, const float *x, const float *w,
                                           int64_t N, int64_t C, float eps) {
    fb_op_args a = {.in = {fb_src_f32(x, N, C, C), fb_src_f32(w, 1, C, C)},
                    .out = {fb_dst_f32(y, N, C, C), fb_dst_f32(rstd, 1, N, N)}, .d = {N, C}, .f = {eps},
                    .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_RMSNORM_FWD, &a);
}
static inline fb_status fb_matmul_forward(const fb_workspace *ws, float *y, const float *x, const float *W,
                                          const float *b, int64_t N, int64_t C, int64_t OC) {
    fb_op_args a = {.in = {fb_src_f32(x, N, C, C), fb_src_f32(W, OC, C, C), fb_src_f32(b, 1, OC, OC)},
                    .out = {fb_dst_f32(y, N, OC, OC)}, .d = {N, C, OC}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_MATMUL_FWD, &a);
}
static inline fb_status fb_rope_forward(const fb_workspace *ws, float *y, const float *x, int64_t B, int64_t T,
                                        int64_t n_heads, int64_t head_dim, int64_t row_stride, int64_t pos0,
                                        float theta) {
    fb_op_args a = {.in = {fb_src_f32(x, B * T, n_heads * head_dim, row_stride)},
                    .out = {fb_dst_f32(y, B * T, n_heads * head_dim, row_stride)},
                    .d = {B, T, n_heads, head_dim, row_stride, pos0}, .f = {theta}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_ROPE_FWD, &a);
}
static inline fb_status fb_gelu_tanh_forward(const fb_workspace *ws, float *y, const float *x, int64_t N) {
    fb_op_args a = {.in = {fb_src_f32(x, 1, N, N)}, .out = {fb_dst_f32(y, 1, N, N)}, .d = {N}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_GELU_TANH_FWD, &a);
}
static inline fb_status fb_gelu_forward(const fb_workspace *ws, float *y, const float *x, int64_t N) {
    fb_op_args a = {.in = {fb_src_f32(x, 1, N, N)}, .out = {fb_dst_f32(y, 1, N, N)}, .d = {N}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_GELU_FWD, &a);
}
static inline fb_status fb_swiglu_forward(const fb_workspace *ws, float *y, const float *h, int64_t N, int64_t F) {
    fb_op_args a = {.in = {fb_src_f32(h, N, 2 * F, 2 * F)}, .out = {fb_dst_f32(y, N, F, F)}, .d = {N, F},
                    .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_SWIGLU_FWD, &a);
}
static inline fb_status fb_residual_forward(const fb_workspace *ws, float *y, const float *p, const float *q,
                                            int64_t N) {
    fb_op_args a = {.in = {fb_src_f32(p, 1, N, N), fb_src_f32(q, 1, N, N)}, .out = {fb_dst_f32(y, 1, N, N)},
                    .d = {N}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_RESIDUAL_FWD, &a);
}
/* The slots of attention forward / decode (ops.h: FB_OP_ATTENTION_FWD). */
static inline fb_op_args fb_attention_args(const fb_workspace *ws, float *o, float *lse, const float *q,
                                           const float *k, const float *v, int64_t B, int64_t Tq, int64_t Tk,
                                           int64_t H, int64_t Hkv, int64_t D, int causal, int64_t q_stride,
                                           int64_t kv_stride, int64_t o_stride) {
    fb_op_args a = {.in = {fb_src_f32(q, B * Tq, H * D, q_stride), fb_src_f32(k, B * Tk, Hkv * D, kv_stride),
                           fb_src_f32(v, B * Tk, Hkv * D, kv_stride)},
                    .out = {fb_dst_f32(o, B * Tq, H * D, o_stride), fb_dst_f32(lse, B * H, Tq, Tq)},
                    .d = {B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride, o_stride}, .ws = fb_ws_of(ws)};
    return a;
}
/* K and V of a (B = 1) attention call from the paged KV cache: k, v in the
 * args point to the layer's pools of pool_blocks blocks of bs tokens, table
 * lists the sequence's blocks (ops.h, FB_OP_ATTENTION_FWD). */
static inline void fb_attention_args_paged(fb_op_args *a, const int32_t *table, int64_t bs, int64_t width,
                                           int64_t pool_blocks) {
    const int64_t row = a->in[1].cols, stride = a->d[8];
    a->in[1] = fb_src_f32((const float *)a->in[1].data, pool_blocks * bs, row, stride);
    a->in[2] = fb_src_f32((const float *)a->in[2].data, pool_blocks * bs, row, stride);
    a->in[3] = fb_src_i32(table, a->d[0], width, width);
    a->d[10] = bs;
    a->d[11] = width;
    a->d[12] = pool_blocks;
}
/* Attention over [B, T, H, D]-style buffers with token strides; see ops.h. */
static inline fb_status fb_attention_forward(const fb_workspace *ws, float *o, float *lse, const float *q,
                                             const float *k, const float *v, int64_t B, int64_t Tq, int64_t Tk,
                                             int64_t H, int64_t Hkv, int64_t D, int causal, int64_t q_stride,
                                             int64_t kv_stride, int64_t o_stride) {
    const fb_op_args a = fb_attention_args(ws, o, lse, q, k, v, B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride,
                                           o_stride);
    return fb_op_run(FB_OP_ATTENTION_FWD, &a);
}
/* FlashAttention backward; q, k, v, o, lse as saved by the forward, dout with
 * o's stride; dq (q's stride), dk, dv (kv stride) OVERWRITTEN. scale 0 means
 * 1/sqrt(D). Deterministic for any thread count. See ops.h. */
static inline fb_status fb_attention_backward(const fb_workspace *ws, float *dq, float *dk, float *dv,
                                              const float *dout, const float *q, const float *k, const float *v,
                                              const float *o, const float *lse, int64_t B, int64_t Tq, int64_t Tk,
                                              int64_t H, int64_t Hkv, int64_t D, int causal, int64_t q_stride,
                                              int64_t kv_stride, int64_t o_stride, float scale) {
    fb_op_args a = {.in = {fb_src_f32(q, B * Tq, H * D, q_stride), fb_src_f32(k, B * Tk, Hkv * D, kv_stride),
                           fb_src_f32(v, B * Tk, Hkv * D, kv_stride), fb_src_f32(o, B * Tq, H * D, o_stride),
                           fb_src_f32(lse, B * H, Tq, Tq), fb_src_f32(dout, B * Tq, H * D, o_stride)},
                    .out = {fb_dst_f32(dq, B * Tq, H * D, q_stride), fb_dst_f32(dk, B * Tk, Hkv * D, kv_stride),
                            fb_dst_f32(dv, B * Tk, Hkv * D, kv_stride)},
                    .d = {B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride, o_stride}, .f = {scale},
                    .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_ATTENTION_BWD, &a);
}
/* ---- backward ops (training); ACC = accumulates (+=), see ops.h ---- */
/* dx ACC, dw ACC, db ACC (NULL: none) */
static inline fb_status fb_layernorm_backward(const fb_workspace *ws, float *dx, float *dw, float *db, const float *dy,
                                              const float *x, const float *w, const float *mean, const float *rstd,
                                              int64_t N, int64_t C) {
    fb_op_args a = {.in = {fb_src_f32(dy, N, C, C), fb_src_f32(x, N, C, C), fb_src_f32(w, 1, C, C),
                           fb_src_f32(mean, 1, N, N), fb_src_f32(rstd, 1, N, N)},
                    .out = {fb_dst_f32(dx, N, C, C), fb_dst_f32(dw, 1, C, C), fb_dst_f32(db, 1, C, C)},
                    .d = {N, C}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_LAYERNORM_BWD, &a);
}
/* dx ACC, dw ACC */
static inline fb_status fb_rmsnorm_backward(const fb_workspace *ws, float *dx, float *dw, const float *dy,
                                            const float *x, const float *w, const float *rstd, int64_t N, int64_t C) {
    fb_op_args a = {.in = {fb_src_f32(dy, N, C, C), fb_src_f32(x, N, C, C), fb_src_f32(w, 1, C, C),
                           fb_src_f32(rstd, 1, N, N)},
                    .out = {fb_dst_f32(dx, N, C, C), fb_dst_f32(dw, 1, C, C)}, .d = {N, C}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_RMSNORM_BWD, &a);
}
/* dx[N,C] ACC, dW[OC,C] ACC, db[OC] ACC (NULL: none) */
static inline fb_status fb_matmul_backward(const fb_workspace *ws, float *dx, float *dW, float *db, const float *dy,
                                           const float *x, const float *W, int64_t N, int64_t C, int64_t OC) {
    fb_op_args a = {.in = {fb_src_f32(dy, N, OC, OC), fb_src_f32(x, N, C, C), fb_src_f32(W, OC, C, C)},
                    .out = {fb_dst_f32(dx, N, C, C), fb_dst_f32(dW, OC, C, C), fb_dst_f32(db, 1, OC, OC)},
                    .d = {N, C, OC}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_MATMUL_BWD, &a);
}
/* dx OVERWRITE (dx == dy allowed) */
static inline fb_status fb_rope_backward(const fb_workspace *ws, float *dx, const float *dy, int64_t B, int64_t T,
                                         int64_t n_heads, int64_t head_dim, int64_t row_stride, int64_t pos0,
                                         float theta) {
    fb_op_args a = {.in = {fb_src_f32(dy, B * T, n_heads * head_dim, row_stride)},
                    .out = {fb_dst_f32(dx, B * T, n_heads * head_dim, row_stride)},
                    .d = {B, T, n_heads, head_dim, row_stride, pos0}, .f = {theta}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_ROPE_BWD, &a);
}
/* dx OVERWRITE */
static inline fb_status fb_gelu_tanh_backward(const fb_workspace *ws, float *dx, const float *dy, const float *x,
                                              int64_t N) {
    fb_op_args a = {.in = {fb_src_f32(dy, 1, N, N), fb_src_f32(x, 1, N, N)}, .out = {fb_dst_f32(dx, 1, N, N)},
                    .d = {N}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_GELU_TANH_BWD, &a);
}
static inline fb_status fb_gelu_backward(const fb_workspace *ws, float *dx, const float *dy, const float *x,
                                         int64_t N) {
    fb_op_args a = {.in = {fb_src_f32(dy, 1, N, N), fb_src_f32(x, 1, N, N)}, .out = {fb_dst_f32(dx, 1, N, N)},
                    .d = {N}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_GELU_BWD, &a);
}
/* dh[N,2F] OVERWRITE */
static inline fb_status fb_swiglu_backward(const fb_workspace *ws, float *dh, const float *dy, const float *h,
                                           int64_t N, int64_t F) {
    fb_op_args a = {.in = {fb_src_f32(dy, N, F, F), fb_src_f32(h, N, 2 * F, 2 * F)},
                    .out = {fb_dst_f32(dh, N, 2 * F, 2 * F)}, .d = {N, F}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_SWIGLU_BWD, &a);
}
/* da ACC, db ACC */
static inline fb_status fb_residual_backward(const fb_workspace *ws, float *da, float *db, const float *dy,
                                             int64_t N) {
    fb_op_args a = {.in = {fb_src_f32(dy, 1, N, N)}, .out = {fb_dst_f32(da, 1, N, N), fb_dst_f32(db, 1, N, N)},
                    .d = {N}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_RESIDUAL_BWD, &a);
}
/* y[B,T,C] OVERWRITE = wte[ids] + wpe[t] (wpe NULL: none); 0 <= ids < V */
static inline fb_status fb_embedding_forward(const fb_workspace *ws, float *y, const int32_t *ids, const float *wte,
                                             const float *wpe, int64_t B, int64_t T, int64_t C, int64_t V) {
    fb_op_args a = {.in = {fb_src_i32(ids, B, T, T), fb_src_f32(wte, V, C, C), fb_src_f32(wpe, T, C, C)},
                    .out = {fb_dst_f32(y, B * T, C, C)}, .d = {B, T, C, V}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_EMBEDDING_FWD, &a);
}
/* dwte[V,C] ACC, dwpe[T,C] ACC (NULL: none) */
static inline fb_status fb_embedding_backward(const fb_workspace *ws, float *dwte, float *dwpe, const float *dy,
                                              const int32_t *ids, int64_t B, int64_t T, int64_t C, int64_t V) {
    fb_op_args a = {.in = {fb_src_f32(dy, B * T, C, C), fb_src_i32(ids, B, T, T)},
                    .out = {fb_dst_f32(dwte, V, C, C), fb_dst_f32(dwpe, T, C, C)}, .d = {B, T, C, V},
                    .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_EMBEDDING_BWD, &a);
}
/* loss[N] OVERWRITE (0 where target < 0), dh[N,C] ACC, dW[V,C] ACC (both
 * untouched, may be NULL, when forward_only); dlogits = (softmax - onehot)·grad_scale */
static inline fb_status fb_crossentropy_fused(const fb_workspace *ws, float *loss, float *dh, float *dW, const float *h,
                                              const float *W, const int32_t *targets, int64_t N, int64_t C, int64_t V,
                                              int forward_only, float grad_scale) {
    fb_op_args a = {.in = {fb_src_f32(h, N, C, C), fb_src_f32(W, V, C, C), fb_src_i32(targets, 1, N, N)},
                    .out = {fb_dst_f32(loss, 1, N, N), fb_dst_f32(dh, N, C, C), fb_dst_f32(dW, V, C, C)},
                    .d = {N, C, V, forward_only}, .f = {grad_scale}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_CROSSENTROPY_FUSED, &a);
}
/* ---- inference ops ---- */
/* Decode attention (split-K over the cached keys), same layout and slots as
 * fb_attention_forward; for Tq = 1 (or a few) query tokens after Tk - Tq cached. */
static inline fb_status fb_attention_decode(const fb_workspace *ws, float *o, float *lse, const float *q,
                                            const float *k, const float *v, int64_t B, int64_t Tq, int64_t Tk,
                                            int64_t H, int64_t Hkv, int64_t D, int causal, int64_t q_stride,
                                            int64_t kv_stride, int64_t o_stride) {
    const fb_op_args a = fb_attention_args(ws, o, lse, q, k, v, B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride,
                                           o_stride);
    return fb_op_run(FB_OP_ATTENTION_DECODE, &a);
}
/* y[N,OC] OVERWRITE = x[N,C]·dequant(Wq)ᵀ + b (NULL: none); Wq: OC rows of C/32
 * Q8_0 blocks (34 bytes each, see ops/quant_q8_0.h); C % 32 == 0. */
static inline fb_status fb_matmul_q8_0_forward(const fb_workspace *ws, float *y, const void *Wq, const float *x,
                                               const float *b, int64_t N, int64_t C, int64_t OC) {
    fb_op_args a = {.in = {fb_src_f32(x, N, C, C), fb_src_q8_0(Wq, OC, C, C), fb_src_f32(b, 1, OC, OC)},
                    .out = {fb_dst_f32(y, N, OC, OC)}, .d = {N, C, OC}, .ws = fb_ws_of(ws)};
    return fb_op_run(FB_OP_MATMUL_Q8_0, &a);
}
#endif
