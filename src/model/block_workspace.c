/* The kernel workspace of one block forward / backward: every op call of
 * block.c and block_backward.c with its dims, the largest need wins (the
 * workspace functions only read the dims). Keep this list in step with
 * those files; a call that outgrows the plan fails with FB_ERR_WORKSPACE. */
#include "model/block.h"
#include "ops/ops.h"

#define PLAN(op, ...) fb_ws_plan(&need, op, &(fb_op_args){.d = {__VA_ARGS__}}, n_threads)

size_t fb_block_workspace_bytes(const fb_block_config *c, int B, int T, int backward, int n_threads) {
    const int64_t N = (int64_t)B * T, C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = C / H;
    const int64_t QKV = (H + 2 * Hkv) * D, F = c->d_ff, hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    const fb_op_id norm = c->norm == FB_NORM_LAYERNORM ? FB_OP_LAYERNORM_FWD : FB_OP_RMSNORM_FWD;
    const fb_op_id act = c->mlp == FB_MLP_SWIGLU ? FB_OP_SWIGLU_FWD : c->mlp == FB_MLP_GELU_TANH ? FB_OP_GELU_TANH_FWD
                                                                                                 : FB_OP_GELU_FWD;
    size_t need = 0;
    PLAN(norm, N, C);
    PLAN(FB_OP_MATMUL_FWD, N, C, QKV);
    PLAN(FB_OP_MATMUL_FWD, N, C, C);
    PLAN(FB_OP_MATMUL_FWD, N, C, hF);
    PLAN(FB_OP_MATMUL_FWD, N, F, C);
    PLAN(FB_OP_ROPE_FWD, B, T, H, D, QKV, 0);
    PLAN(FB_OP_ATTENTION_FWD, B, T, T, H, Hkv, D, 1, QKV, QKV, C);
    PLAN(FB_OP_RESIDUAL_FWD, N * C);
    if (act == FB_OP_SWIGLU_FWD) PLAN(act, N, F);
    else PLAN(act, N * F);
    if (!backward) return need;
    PLAN(c->norm == FB_NORM_LAYERNORM ? FB_OP_LAYERNORM_BWD : FB_OP_RMSNORM_BWD, N, C);
    PLAN(FB_OP_MATMUL_BWD, N, F, C);
    PLAN(FB_OP_MATMUL_BWD, N, C, hF);
    PLAN(FB_OP_MATMUL_BWD, N, C, C);
    PLAN(FB_OP_MATMUL_BWD, N, C, QKV);
    PLAN(FB_OP_ATTENTION_BWD, B, T, T, H, Hkv, D, 1, QKV, QKV, C);
    PLAN(FB_OP_ROPE_BWD, B, T, H, D, QKV, 0);
    if (act == FB_OP_SWIGLU_FWD) PLAN(FB_OP_SWIGLU_BWD, N, F);
    else PLAN(act == FB_OP_GELU_TANH_FWD ? FB_OP_GELU_TANH_BWD : FB_OP_GELU_BWD, N * F);
    return need;
}
