/*
 * Backward pass of one block, the forward of block.c read bottom-up:
 *   y  = x1 + down(act)      → dact = dres·W_down, dW_down, db_down
 *   act = f(h)               → dh (GELU / SwiGLU backward)
 *   h  = up(ln2)             → dln = dh·W_up, dW_up (gate|up fused)
 *   ln2 = norm(x1)           → dres += norm backward   (dres is now dL/dx1)
 *   x1 = x + out(att)        → datt = dres·W_o, dW_o
 *   att = attn(q, k, v)      → dq, dk, dv (FlashAttention-2 backward)
 *   q, k = rope(q, k)        → inverse rotation, in place
 *   qkv = proj(ln1)          → dln = dqkv·W_qkv, dW_qkv
 *   ln1 = norm(x)            → dres += norm backward   (dres is now dL/dx)
 * Ops that accumulate into dx get a zeroed buffer where a fresh gradient is
 * meant.
 */
#include "model/block.h"
#include "ops/kernels.h"
#include <string.h>

size_t fb_block_grad_scratch_floats(const fb_block_config *c, int B, int T) {
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->d_model, D = C / (size_t)c->n_heads;
    const size_t QKV = ((size_t)c->n_heads + 2 * (size_t)c->n_kv_heads) * D, F = (size_t)c->d_ff;
    const size_t hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    return N * (2 * C + QKV + hF + F) + 64;
}

void fb_block_grad_scratch_carve(const fb_block_config *c, int B, int T, float *p, fb_block_grad_scratch *g) {
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->d_model, D = C / (size_t)c->n_heads;
    const size_t QKV = ((size_t)c->n_heads + 2 * (size_t)c->n_kv_heads) * D, F = (size_t)c->d_ff;
    const size_t hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    g->dln = p; p += N * C;
    g->dqkv = p; p += N * QKV;
    g->datt = p; p += N * C;
    g->dh = p; p += N * hF;
    g->dact = p;
}

static fb_status norm_backward(const fb_block_config *c, const fb_workspace *ws, float *dx, float *dw, float *db,
                               const float *dy, const float *x, const float *w, float *const stat[2], int64_t N) {
    if (c->norm == FB_NORM_LAYERNORM)
        return fb_layernorm_backward(ws, dx, dw, db, dy, x, w, stat[0], stat[1], N, c->d_model);
    return fb_rmsnorm_backward(ws, dx, dw, dy, x, w, stat[1], N, c->d_model);
}

fb_status fb_block_backward_with(const fb_block_config *c, const float *params, float *grads, const fb_block_layout *L,
                                 const fb_block_acts *a, fb_block_grad_scratch *g, const fb_workspace *ws,
                                 const float *x, float *dres, int B, int T, int pos0) {
    const int64_t N = (int64_t)B * T, C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = C / H;
    const int64_t QKV = (H + 2 * Hkv) * D, F = c->d_ff, hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
#define P(name) (L->numel[name] ? params + L->offset[name] : NULL)
#define G(name) (L->numel[name] ? grads + L->offset[name] : NULL)
    /* MLP half */
    memset(g->dact, 0, sizeof(float) * (size_t)(N * F));
    FB_TRY(fb_matmul_backward(ws, g->dact, G(FB_P_FFN_DOWN_W), G(FB_P_FFN_DOWN_B), dres, a->act, P(FB_P_FFN_DOWN_W), N,
                              F, C));
    if (c->mlp == FB_MLP_SWIGLU) FB_TRY(fb_swiglu_backward(ws, g->dh, g->dact, a->h, N, F));
    else if (c->mlp == FB_MLP_GELU_TANH) FB_TRY(fb_gelu_tanh_backward(ws, g->dh, g->dact, a->h, N * F));
    else FB_TRY(fb_gelu_backward(ws, g->dh, g->dact, a->h, N * F));
    memset(g->dln, 0, sizeof(float) * (size_t)(N * C));
    if (c->mlp == FB_MLP_SWIGLU)   /* gate|up weights and biases are adjacent: one [2F, C] matmul */
        FB_TRY(fb_matmul_backward(ws, g->dln, grads + L->offset[FB_P_FFN_GATE_W], G(FB_P_FFN_GATE_B), g->dh, a->ln2,
                                  params + L->offset[FB_P_FFN_GATE_W], N, C, hF));
    else
        FB_TRY(fb_matmul_backward(ws, g->dln, G(FB_P_FFN_UP_W), G(FB_P_FFN_UP_B), g->dh, a->ln2, P(FB_P_FFN_UP_W), N, C,
                                  F));
    FB_TRY(norm_backward(c, ws, dres, G(FB_P_FFN_NORM_W), G(FB_P_FFN_NORM_B), g->dln, a->x1, P(FB_P_FFN_NORM_W),
                         (float *const *)a->ln2_stat, N));
    /* attention half */
    memset(g->datt, 0, sizeof(float) * (size_t)(N * C));
    FB_TRY(fb_matmul_backward(ws, g->datt, G(FB_P_ATTN_OUT_W), G(FB_P_ATTN_OUT_B), dres, a->att, P(FB_P_ATTN_OUT_W), N,
                              C, C));
    FB_TRY(fb_attention_backward(ws, g->dqkv, g->dqkv + H * D, g->dqkv + (H + Hkv) * D, g->datt, a->qkv,
                                 a->qkv + H * D, a->qkv + (H + Hkv) * D, a->att, a->lse, B, T, T, H, Hkv, D, 1, QKV,
                                 QKV, C, 0.0f));
    if (c->positions == FB_POS_ROPE) {
        FB_TRY(fb_rope_backward(ws, g->dqkv, g->dqkv, B, T, H, D, QKV, pos0, c->rope_theta));
        FB_TRY(fb_rope_backward(ws, g->dqkv + H * D, g->dqkv + H * D, B, T, Hkv, D, QKV, pos0, c->rope_theta));
    }
    memset(g->dln, 0, sizeof(float) * (size_t)(N * C));
    FB_TRY(fb_matmul_backward(ws, g->dln, G(FB_P_ATTN_QKV_W), G(FB_P_ATTN_QKV_B), g->dqkv, a->ln1, P(FB_P_ATTN_QKV_W), N,
                              C, QKV));
    return norm_backward(c, ws, dres, G(FB_P_ATTN_NORM_W), G(FB_P_ATTN_NORM_B), g->dln, x, P(FB_P_ATTN_NORM_W),
                         (float *const *)a->ln1_stat, N);
#undef P
#undef G
}
