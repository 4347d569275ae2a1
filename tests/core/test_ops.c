/*
 * Every variant of every op against its reference, on the shapes listed
 * below (awkward ones included: T=1, T not a multiple of any tile, odd head
 * dims, GQA and MQA, chunked prefill offsets, strided layouts).
 *
 * Arguments come from the op's declaration (tests/op_harness.h): every slot
 * allocated and filled by its dtype (ids in range, valid Q8_0 blocks), outputs
 * filled with NaN garbage (an unwritten element fails the comparison),
 * guard words behind every buffer and behind the workspace, which holds
 * exactly the bytes the kernel declares for the case (an out-of-bounds write
 * fails the guard check, an under-declared workspace too). Accumulating
 * outputs start from the same random values for reference and variant.
 * Errors are measured relative to the reference output's largest magnitude;
 * each op states its bound in src/ops/op_table.c.
 *
 * The contract's error paths too: for every kernel that takes a workspace,
 * one byte short (and none at all) must give FB_ERR_WORKSPACE with outputs
 * untouched; fb_op_run must refuse a slot of the wrong dtype or a missing
 * required slot (FB_ERR_INVALID_ARG) and fb_op_validate a wrong shape.
 *
 * Adding an op: give it an entry in the op table and its shapes here. An op
 * of the table with no case here fails the test, and every variant this
 * machine (or FLASHBLOCK_ISA / FLASHBLOCK_DISABLE) cannot run is named with
 * the reason, so a run that compared fewer kernels says so instead of
 * passing quietly.
 */
#include "core/cpu.h"
#include "op_harness.h"
#include "ops/ops.h"
#include "test_util.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    fb_op_id op;
    int64_t d[FB_OP_MAX_D];
    float f[FB_OP_MAX_F];
    unsigned null_inputs;   /* bit k: pass in[k] = NULL (optional input absent) */
} op_case;

/* attention dims: B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride, o_stride (0 = packed) */
#define ATT(B, Tq, Tk, H, Hkv, D, causal) {FB_OP_ATTENTION_FWD, {B, Tq, Tk, H, Hkv, D, causal, 0, 0, 0}, {0}, 0}

static const op_case cases[] = {
    {FB_OP_LAYERNORM_FWD, {1, 1}, {1e-5f}, 0},
    {FB_OP_LAYERNORM_FWD, {7, 17}, {1e-5f}, 0},
    {FB_OP_LAYERNORM_FWD, {64, 768}, {1e-5f}, 0},
    {FB_OP_LAYERNORM_FWD, {1000, 80}, {1e-5f}, 4},   /* no bias */
    {FB_OP_RMSNORM_FWD, {1, 1}, {1e-5f}, 0},
    {FB_OP_RMSNORM_FWD, {7, 33}, {1e-5f}, 0},
    {FB_OP_RMSNORM_FWD, {1000, 768}, {1e-6f}, 0},
    {FB_OP_MATMUL_FWD, {1, 1, 1}, {0}, 0},
    {FB_OP_MATMUL_FWD, {7, 33, 17}, {0}, 0},
    {FB_OP_MATMUL_FWD, {1, 768, 2304}, {0}, 4},    /* decode GEMV, no bias */
    {FB_OP_MATMUL_FWD, {64, 768, 2304}, {0}, 0},   /* fused QKV shape */
    {FB_OP_MATMUL_FWD, {257, 100, 1000}, {0}, 4},
    {FB_OP_ROPE_FWD, {1, 1, 1, 2, 2, 0}, {10000.0f}, 0},
    {FB_OP_ROPE_FWD, {2, 7, 3, 8, 40, 5}, {10000.0f}, 0},        /* strided rows, pos0 = 5 */
    {FB_OP_ROPE_FWD, {1, 1000, 4, 64, 256, 0}, {10000.0f}, 0},
    {FB_OP_ROPE_FWD, {1, 300, 2, 80, 160, 32000}, {500000.0f}, 0}, /* long positions */
    {FB_OP_GELU_TANH_FWD, {1}, {0}, 0},
    {FB_OP_GELU_TANH_FWD, {1000}, {0}, 0},
    {FB_OP_GELU_TANH_FWD, {100003}, {0}, 0},
    {FB_OP_GELU_FWD, {7}, {0}, 0},
    {FB_OP_GELU_FWD, {100003}, {0}, 0},
    {FB_OP_SWIGLU_FWD, {1, 1}, {0}, 0},
    {FB_OP_SWIGLU_FWD, {7, 33}, {0}, 0},
    {FB_OP_SWIGLU_FWD, {300, 688}, {0}, 0},
    {FB_OP_RESIDUAL_FWD, {1}, {0}, 0},
    {FB_OP_RESIDUAL_FWD, {100003}, {0}, 0},
    /* attention: T = 1, 7, 64, 1000; head_dim 32, 64, 80, 128; causal and not;
     * GQA ratio 1, 2, 4 and MQA */
    ATT(1, 1, 1, 4, 4, 32, 1), ATT(1, 1, 1, 4, 1, 64, 0),
    ATT(1, 7, 7, 4, 2, 32, 1), ATT(2, 7, 7, 4, 4, 80, 0), ATT(1, 7, 7, 8, 2, 128, 1),
    ATT(1, 64, 64, 4, 4, 64, 1), ATT(1, 64, 64, 4, 1, 128, 0), ATT(2, 64, 64, 8, 2, 80, 1), ATT(1, 64, 64, 4, 2, 32, 0),
    ATT(1, 1000, 1000, 2, 2, 64, 1), ATT(1, 1000, 1000, 4, 1, 32, 0), ATT(1, 1000, 1000, 2, 1, 80, 1),
    ATT(1, 1000, 1000, 4, 1, 128, 1),
    ATT(1, 2048, 2048, 2, 1, 64, 1), ATT(1, 2048, 2048, 1, 1, 128, 0),
    /* odd head dims */
    ATT(1, 65, 65, 2, 2, 17, 1), ATT(1, 130, 130, 2, 1, 33, 0), ATT(2, 9, 9, 4, 4, 1, 1),
    /* a chunk of queries after a KV cache (position offset Tk - Tq) and decode */
    ATT(1, 37, 300, 4, 2, 64, 1), ATT(1, 1, 1000, 8, 2, 64, 1), ATT(2, 64, 129, 4, 4, 80, 1),
    /* strided layout: Q, K, V inside one fused QKV row of (H + 2·Hkv)·D floats */
    {FB_OP_ATTENTION_FWD, {2, 100, 100, 4, 2, 32, 1, 256, 256, 128}, {0}, 0},
    /* explicit softmax scale */
    {FB_OP_ATTENTION_FWD, {1, 70, 70, 2, 2, 64, 1, 0, 0, 0}, {0.3f}, 0},
    /* -- backward ops: shapes go here -- */
    {FB_OP_LAYERNORM_BWD, {1, 1}, {0}, 0},
    {FB_OP_LAYERNORM_BWD, {7, 17}, {0}, 0},
    {FB_OP_LAYERNORM_BWD, {1, 33}, {0}, 0},
    {FB_OP_LAYERNORM_BWD, {256, 768}, {0}, 0},
    {FB_OP_LAYERNORM_BWD, {1000, 80}, {0}, 0},
    {FB_OP_RMSNORM_BWD, {1, 1}, {0}, 0},
    {FB_OP_RMSNORM_BWD, {7, 33}, {0}, 0},
    {FB_OP_RMSNORM_BWD, {256, 768}, {0}, 0},
    {FB_OP_MATMUL_BWD, {1, 1, 1}, {0}, 0},
    {FB_OP_MATMUL_BWD, {7, 33, 17}, {0}, 0},
    {FB_OP_MATMUL_BWD, {1, 768, 2304}, {0}, 0},
    {FB_OP_MATMUL_BWD, {256, 768, 2304}, {0}, 0},   /* fused QKV shape */
    {FB_OP_MATMUL_BWD, {257, 100, 1000}, {0}, 0},   /* tiles not multiples */
    {FB_OP_ROPE_BWD, {1, 1, 1, 2, 2, 0}, {10000.0f}, 0},
    {FB_OP_ROPE_BWD, {2, 7, 3, 8, 40, 5}, {10000.0f}, 0},
    {FB_OP_ROPE_BWD, {1, 1000, 4, 64, 256, 0}, {10000.0f}, 0},
    {FB_OP_ROPE_BWD, {1, 300, 2, 80, 160, 32000}, {500000.0f}, 0},
    {FB_OP_GELU_TANH_BWD, {1}, {0}, 0},
    {FB_OP_GELU_TANH_BWD, {1000}, {0}, 0},
    {FB_OP_GELU_TANH_BWD, {100003}, {0}, 0},
    {FB_OP_GELU_BWD, {7}, {0}, 0},
    {FB_OP_GELU_BWD, {100003}, {0}, 0},
    {FB_OP_SWIGLU_BWD, {1, 1}, {0}, 0},
    {FB_OP_SWIGLU_BWD, {7, 33}, {0}, 0},
    {FB_OP_SWIGLU_BWD, {300, 688}, {0}, 0},
    {FB_OP_RESIDUAL_BWD, {1}, {0}, 0},
    {FB_OP_RESIDUAL_BWD, {100003}, {0}, 0},
    /* embedding d: B, T, C, V */
    {FB_OP_EMBEDDING_FWD, {1, 1, 1, 1}, {0}, 0},
    {FB_OP_EMBEDDING_FWD, {2, 7, 17, 5}, {0}, 0},
    {FB_OP_EMBEDDING_FWD, {3, 100, 33, 7}, {0}, 4},        /* no learned positions */
    {FB_OP_EMBEDDING_FWD, {4, 64, 768, 512}, {0}, 0},
    {FB_OP_EMBEDDING_FWD, {4, 64, 64, 50257}, {0}, 0},
    {FB_OP_EMBEDDING_BWD, {1, 1, 1, 1}, {0}, 0},
    {FB_OP_EMBEDDING_BWD, {2, 7, 17, 5}, {0}, 0},
    {FB_OP_EMBEDDING_BWD, {8, 129, 33, 7}, {0}, 0},         /* ids repeat a lot */
    {FB_OP_EMBEDDING_BWD, {4, 64, 768, 512}, {0}, 0},
    {FB_OP_EMBEDDING_BWD, {4, 64, 64, 50257}, {0}, 0},
    /* cross-entropy d: N, C, V, forward_only; f: grad_scale (large ones make
     * the gradient dominate the random initial values of dh and dW) */
    {FB_OP_CROSSENTROPY_FUSED, {1, 1, 1, 0}, {1.0f}, 0},
    {FB_OP_CROSSENTROPY_FUSED, {7, 17, 33, 0}, {1.0f}, 0},
    {FB_OP_CROSSENTROPY_FUSED, {130, 64, 512, 0}, {10.0f}, 0},   /* chunks 64 + 64 (ignored) + 2 */
    {FB_OP_CROSSENTROPY_FUSED, {200, 33, 1000, 1}, {1.0f}, 0},   /* forward only */
    {FB_OP_CROSSENTROPY_FUSED, {100, 768, 512, 0}, {0.01f}, 0},
    {FB_OP_CROSSENTROPY_FUSED, {70, 64, 50257, 0}, {1000.0f}, 0},
    {FB_OP_CROSSENTROPY_FUSED, {3, 256, 50257, 0}, {100.0f}, 0},

    /* -- attention backward: shapes go here -- */
    /* attention backward (same dims as ATT; o and lse are made the true forward
     * outputs by the op's prepare_inputs): T = 1, 7, 64, 1000; head_dim 32, 64,
     * 80, 128 and odd; causal and not; GQA ratio 1, 2, 4 and MQA */
#define ABW(B, Tq, Tk, H, Hkv, D, causal) {FB_OP_ATTENTION_BWD, {B, Tq, Tk, H, Hkv, D, causal, 0, 0, 0}, {0}, 0}
    /* (Tq = Tk = 1 is left out: P = 1 and dQ = dK = 0 exactly, so only rounding
     * noise would be compared; T = 1 is covered by single queries over 7 and 1000 keys) */
    ABW(1, 1, 7, 4, 1, 64, 0), ABW(2, 1, 7, 4, 2, 32, 1),
    ABW(1, 7, 7, 4, 2, 32, 1), ABW(2, 7, 7, 4, 4, 80, 0), ABW(1, 7, 7, 8, 2, 128, 1),
    ABW(1, 64, 64, 4, 4, 64, 1), ABW(1, 64, 64, 4, 1, 128, 0), ABW(2, 64, 64, 8, 2, 80, 1),
    ABW(1, 200, 200, 4, 1, 64, 1), ABW(1, 131, 131, 8, 2, 128, 0),
    ABW(1, 1000, 1000, 2, 1, 64, 1), ABW(1, 1000, 1000, 1, 1, 32, 0),
    ABW(1, 65, 65, 2, 2, 17, 1), ABW(1, 130, 130, 2, 1, 33, 0), ABW(2, 9, 9, 4, 4, 1, 1),
    /* chunk of queries after a KV cache, and decode */
    ABW(1, 37, 300, 4, 2, 64, 1), ABW(1, 1, 1000, 8, 2, 64, 1), ABW(2, 64, 129, 4, 4, 80, 1),
    /* fused QKV layout: q_stride = kv_stride = (H + 2·Hkv)·D */
    {FB_OP_ATTENTION_BWD, {2, 100, 100, 4, 2, 32, 1, 256, 256, 128}, {0}, 0},
    {FB_OP_ATTENTION_BWD, {1, 77, 77, 4, 1, 80, 0, 480, 480, 320}, {0}, 0},
    /* explicit softmax scale */
    {FB_OP_ATTENTION_BWD, {1, 70, 70, 2, 2, 64, 1, 0, 0, 0}, {0.1f}, 0},
#undef ABW

    /* -- inference ops: shapes go here -- */
    /* decode attention (split-K): Tq = 1 over Tk = 1, 7, 300, 1000, 4097; head_dim 32, 64, 80, 128, 17;
     * GQA 1, 2, 4 and MQA; B = 1, 2; small Tq chunks with the causal offset */
#define DEC(B, Tq, Tk, H, Hkv, D, causal) {FB_OP_ATTENTION_DECODE, {B, Tq, Tk, H, Hkv, D, causal, 0, 0, 0}, {0}, 0}
    DEC(1, 1, 1, 4, 4, 32, 1), DEC(1, 1, 1, 4, 1, 64, 1), DEC(2, 1, 7, 4, 2, 80, 1), DEC(1, 1, 7, 8, 2, 17, 1),
    DEC(1, 1, 300, 4, 4, 64, 1), DEC(1, 1, 300, 8, 2, 128, 1), DEC(2, 1, 300, 4, 1, 32, 1), DEC(1, 1, 300, 2, 1, 17, 0),
    DEC(1, 1, 1000, 12, 12, 64, 1), DEC(1, 1, 1000, 8, 2, 80, 1), DEC(1, 1, 1000, 4, 1, 128, 1),
    DEC(2, 1, 1000, 8, 4, 64, 1), DEC(1, 1, 1000, 4, 1, 17, 1),
    DEC(1, 1, 4097, 4, 1, 64, 1), DEC(2, 1, 4097, 4, 2, 128, 1), DEC(1, 1, 4097, 8, 8, 32, 1), DEC(1, 1, 4097, 2, 1, 80, 1),
    DEC(1, 4, 300, 4, 2, 64, 1), DEC(2, 4, 1000, 8, 2, 80, 1), DEC(1, 4, 4, 4, 1, 32, 1), DEC(1, 4, 300, 4, 4, 17, 0),
    DEC(1, 16, 1000, 4, 1, 64, 1), DEC(1, 3, 130, 6, 3, 33, 1),
    /* strided: Q, K, V inside a fused QKV row; explicit scale */
    {FB_OP_ATTENTION_DECODE, {2, 1, 500, 4, 2, 32, 1, 256, 256, 128}, {0}, 0},
    {FB_OP_ATTENTION_DECODE, {1, 2, 700, 4, 2, 64, 1, 0, 0, 0}, {0.3f}, 0},
    /* paged K/V (the KV cache's block tables, random blocks of a pool):
     * d[10] block size, d[11] table entries per batch, d[12] pool blocks */
    {FB_OP_ATTENTION_DECODE, {1, 1, 300, 8, 2, 64, 1, 0, 0, 0, 16, 19, 40}, {0}, 0},
    {FB_OP_ATTENTION_DECODE, {2, 3, 77, 6, 3, 40, 1, 0, 0, 0, 3, 26, 60}, {0}, 0},
    {FB_OP_ATTENTION_DECODE, {1, 1, 1, 4, 4, 33, 1, 0, 0, 0, 1, 1, 5}, {0}, 0},
    {FB_OP_ATTENTION_FWD, {1, 37, 200, 4, 1, 33, 1, 0, 0, 0, 16, 13, 20}, {0}, 0},
    {FB_OP_ATTENTION_FWD, {2, 70, 70, 4, 2, 128, 1, 0, 0, 0, 64, 2, 5}, {0}, 0},
    {FB_OP_ATTENTION_FWD, {1, 64, 130, 8, 8, 64, 1, 0, 0, 0, 7, 19, 30}, {0}, 0},
#undef DEC
    /* Q8_0 matmul: C = 32, 64, 288, 768, 2048; OC = 1, 7, 768; N = 1, 3 (bias and none) */
    {FB_OP_MATMUL_Q8_0, {1, 32, 1}, {0}, 0}, {FB_OP_MATMUL_Q8_0, {3, 32, 7}, {0}, 4},
    {FB_OP_MATMUL_Q8_0, {1, 64, 7}, {0}, 0}, {FB_OP_MATMUL_Q8_0, {3, 64, 768}, {0}, 4},
    {FB_OP_MATMUL_Q8_0, {1, 288, 768}, {0}, 4}, {FB_OP_MATMUL_Q8_0, {3, 288, 7}, {0}, 0},
    {FB_OP_MATMUL_Q8_0, {1, 768, 768}, {0}, 0}, {FB_OP_MATMUL_Q8_0, {3, 768, 1}, {0}, 4},
    {FB_OP_MATMUL_Q8_0, {1, 2048, 768}, {0}, 4}, {FB_OP_MATMUL_Q8_0, {3, 2048, 7}, {0}, 0},
    {FB_OP_MATMUL_Q8_0, {3, 96, 768}, {0}, 0},   /* odd number of blocks */

    /* -- building blocks -- */
    /* sgemm d: transA, transB, M, N, K, lda, ldb, ldc; f: alpha, beta. Thin (M < 8: OpenBLAS inside the
     * packed variant) and packed shapes, all transposes, padded strides, several KC / NC blocks, K = 0. */
#define GEMM(ta, tb, M, N, K, pad, alpha, beta) \
    {FB_OP_SGEMM, {ta, tb, M, N, K, ((ta) ? (M) : (K)) + (pad), ((tb) ? (K) : (N)) + (pad), (N) + 2 * (pad)}, {alpha, beta}, 0}
    GEMM(0, 1, 1, 1, 1, 0, 1.0f, 0.0f), GEMM(0, 0, 7, 33, 17, 3, 1.0f, 1.0f), GEMM(1, 0, 5, 100, 64, 0, 0.5f, 0.25f),
    GEMM(0, 1, 8, 33, 17, 1, 1.0f, 0.0f), GEMM(0, 0, 100, 257, 768, 0, 1.0f, 1.0f), GEMM(1, 0, 65, 768, 257, 5, 0.5f, 0.25f),
    GEMM(1, 1, 300, 65, 600, 2, 1.0f, 0.0f), GEMM(0, 1, 17, 1600, 65, 0, 1.0f, 1.0f), GEMM(0, 0, 17, 33, 0, 0, 1.0f, 0.25f),
    GEMM(1, 1, 17, 33, 15, 1, 0.0f, 0.25f),
#undef GEMM
    /* AdamW d: n; f: decay, grad_scale, beta1, beta2, eps, 1/sqrt(1 - b2^t), lr / (1 - b1^t) */
#define ADAMW(n) {FB_OP_ADAMW, {n}, {0.9999f, 0.7f, 0.9f, 0.95f, 1e-8f, 3.2025630761f, 3.6900369e-3f}, 0}
    ADAMW(1), ADAMW(1037), ADAMW(16384), ADAMW(200001),
#undef ADAMW
};


static void describe(const op_case *c, char *buf, size_t len) {
    int k = snprintf(buf, len, "d=[");
    for (int i = 0; i < 10 && k < (int)len; i++) k += snprintf(buf + k, len - (size_t)k, "%lld%s", (long long)c->d[i], i < 9 ? "," : "]");
}

static int outputs_untouched(const fb_test_op *t) {
    for (int o = 0; o < t->n_out; o++)
        if (memcmp(t->out[o], t->init[o], t->out_bytes[o]) != 0) return 0;
    return 1;
}

/* The kernel with one byte too few of workspace, then none: FB_ERR_WORKSPACE, nothing written. */
static int check_short_workspace(fb_test_op *t, const fb_kernel *k, int nt, const char *desc) {
    if (fb_kernel_workspace(k, &t->args, nt) == 0) return 0;
    int ws_ok = 1;
    fb_status st = fb_test_op_run(t, k, nt, 1, &ws_ok);
    FB_CHECK(st == FB_ERR_WORKSPACE, "%s[%s] %s: a workspace one byte short gave status %d, not FB_ERR_WORKSPACE",
             t->def->name, k->name, desc, (int)st);
    FB_CHECK(outputs_untouched(t) && ws_ok, "%s[%s] %s: wrote with a too-small workspace", t->def->name, k->name, desc);
    st = fb_test_op_run(t, k, nt, (size_t)-1, &ws_ok);   /* none at all */
    FB_CHECK(st == FB_ERR_WORKSPACE && outputs_untouched(t), "%s[%s] %s: no workspace gave status %d",
             t->def->name, k->name, desc, (int)st);
    return 1;
}

/* fb_op_run refuses mistyped and missing slots before any kernel runs;
 * fb_op_validate also a slot whose shape is not the one the dims make. */
static void check_contract_errors(fb_test_op *t, const char *desc) {
    const fb_op_def *def = t->def;
    fb_test_op_reset(t, 0);
    FB_CHECK(fb_op_validate(t->op, &t->args) == FB_OK, "%s %s: the harness's own arguments fail validation: %s",
             def->name, desc, fb_last_error());
    fb_op_args a = t->args;
    a.in[0].type = def->in[0].type == FB_DT_BF16 ? FB_DT_F32 : FB_DT_BF16;
    FB_CHECK(fb_op_run(t->op, &a) == FB_ERR_INVALID_ARG && outputs_untouched(t),
             "%s: fb_op_run accepted in[0] as bf16 (declared %s)", def->name, fb_dtype_name(def->in[0].type));
    a = t->args;
    a.out[0].type = FB_DT_I32;
    FB_CHECK(fb_op_run(t->op, &a) == FB_ERR_INVALID_ARG && outputs_untouched(t), "%s: fb_op_run accepted out[0] as i32",
             def->name);
    for (int i = 0; i < t->n_in; i++)
        if (!(def->in[i].flags & FB_SLOT_OPTIONAL)) {
            a = t->args;
            a.in[i].data = NULL;
            FB_CHECK(fb_op_run(t->op, &a) == FB_ERR_INVALID_ARG && outputs_untouched(t),
                     "%s: fb_op_run accepted a NULL required in[%d] (%s)", def->name, i, def->in[i].name);
            break;
        }
    a = t->args;
    a.in[0].rows += 1;
    FB_CHECK(fb_op_validate(t->op, &a) == FB_ERR_SHAPE, "%s: fb_op_validate accepted in[0] with one row too many",
             def->name);
    /* FLASHBLOCK_OP_CHECK=1 makes fb_op_run validate shapes too (read when variants are selected) */
    setenv("FLASHBLOCK_OP_CHECK", "1", 1);
    fb_ops_select();
    FB_CHECK(fb_op_run(t->op, &a) == FB_ERR_SHAPE && outputs_untouched(t),
             "%s: with FLASHBLOCK_OP_CHECK=1 fb_op_run accepted in[0] with one row too many", def->name);
    unsetenv("FLASHBLOCK_OP_CHECK");
    fb_ops_select();
}

int main(void) {
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 1234);
    const int n_cases = (int)(sizeof cases / sizeof cases[0]);
    const int nt = omp_get_max_threads();
    int runs = 0, skipped_runs = 0, short_ws = 0;
    static unsigned char short_checked[FB_OP_COUNT][65];   /* per kernel (0: reference): too-small path done */
    fb_ops_select();

    /* Every op must be exercised by at least one case: an op without shapes
     * here would have its kernels never compared. An enum slot without a
     * table entry is an op half added, so it fails too. */
    int op_cases[FB_OP_COUNT] = {0}, first_case[FB_OP_COUNT];
    for (int op = 0; op < FB_OP_COUNT; op++) first_case[op] = -1;
    for (int ci = 0; ci < n_cases; ci++)
        if ((int)cases[ci].op >= 0 && (int)cases[ci].op < FB_OP_COUNT) {
            if (!op_cases[cases[ci].op]++) first_case[cases[ci].op] = ci;
        }
    for (int op = 0; op < FB_OP_COUNT; op++) {
        const fb_op_def *def = fb_op_get((fb_op_id)op);
        if (!def) { FB_CHECK(0, "op %d has an enum slot in ops.h but no op table entry", op); continue; }
        FB_CHECK(op_cases[op] > 0, "%s is in the op table but no case in test_ops.c exercises it", def->name);
        FB_CHECK(def->variants && def->shapes && def->reference.fn, "%s: incomplete table entry", def->name);
    }
    for (int ci = 0; ci < n_cases; ci++) {
        op_case c = cases[ci];
        const fb_op_def *def = fb_op_get(c.op);
        if (!def) continue;
        if (c.op == FB_OP_ATTENTION_FWD || c.op == FB_OP_ATTENTION_BWD || c.op == FB_OP_ATTENTION_DECODE) {
            /* 0 strides mean packed [B,T,H,D] */
            if (!c.d[7]) c.d[7] = c.d[3] * c.d[5];
            if (!c.d[8]) c.d[8] = c.d[4] * c.d[5];
            if (!c.d[9]) c.d[9] = c.d[3] * c.d[5];
        }
        char desc[256];
        describe(&c, desc, sizeof desc);
        fb_test_op t;
        if (fb_test_op_init(&t, c.op, c.d, c.f, c.null_inputs, &rng) != 0) {
            FB_CHECK(0, "%s %s: cannot set up the arguments", def->name, desc);
            fb_test_op_free(&t);
            continue;
        }
        int ws_ok = 1;
        fb_status st = fb_test_op_run(&t, &def->reference, nt, 0, &ws_ok);
        FB_CHECK(st == FB_OK, "%s reference %s: status %d (%s)", def->name, desc, (int)st, fb_last_error());
        FB_CHECK(fb_test_op_guards_ok(&t) && ws_ok, "%s reference %s: wrote past a buffer or its workspace", def->name,
                 desc);
        fb_test_op_keep_ref(&t);
        if (ci == first_case[c.op]) check_contract_errors(&t, desc);
        if (!short_checked[c.op][0])
            short_checked[c.op][0] = (unsigned char)check_short_workspace(&t, &def->reference, nt, desc);
        for (const fb_kernel *k = def->variants; k && k->fn; k++) {
            if (!fb_kernel_runnable(k)) { skipped_runs++; continue; }   /* reported below */
            st = fb_test_op_run(&t, k, nt, 0, &ws_ok);
            runs++;
            FB_CHECK(st == FB_OK, "%s[%s] %s: status %d (%s)", def->name, k->name, desc, (int)st, fb_last_error());
            for (int o = 0; o < t.n_out; o++) {
                double err = fb_test_op_err(&t, o);
                FB_CHECK(err <= def->tolerance, "%s[%s] %s output %d (%s): rel err %.3g > %.3g", def->name, k->name,
                         desc, o, def->out[o].name, err, def->tolerance);
            }
            FB_CHECK(fb_test_op_guards_ok(&t), "%s[%s] %s: wrote past the end of a buffer", def->name, k->name, desc);
            FB_CHECK(ws_ok, "%s[%s] %s: wrote past its declared workspace", def->name, k->name, desc);
            /* the first case where it takes a workspace */
            const int ki = 1 + (int)(k - def->variants);
            if (ki <= 64 && !short_checked[c.op][ki])
                short_checked[c.op][ki] = (unsigned char)check_short_workspace(&t, k, nt, desc);
        }
        fb_test_op_free(&t);
    }
    /* Whether a variant runs depends on the machine, not on the case, so it
     * is skipped on all of its op's cases: one line per variant. */
    int n_variants = 0, n_skipped = 0;
    for (int op = 0; op < FB_OP_COUNT; op++) {
        const fb_op_def *def = fb_op_get((fb_op_id)op);
        if (!def || !op_cases[op]) continue;
        for (const fb_kernel *k = def->variants; k && k->fn; k++) {
            n_variants++;
            if (fb_kernel_runnable(k)) continue;
            char why[512];
            printf("skipped: %s/%s (%d cases): %s\n", def->name, k->name, op_cases[op],
                   fb_cpu_explain_missing(k->needs, why, sizeof why));
            n_skipped++;
        }
    }
    for (int op = 0; op < FB_OP_COUNT; op++)
        for (int ki = 0; ki <= 64; ki++) short_ws += short_checked[op][ki];
    char feat[512];
    printf("test_ops: %d variant runs over %d cases; skipped %d of %d variants (%d runs); %d workspace-too-small "
           "checks; CPU features: %s\n", runs, n_cases, n_skipped, n_variants, skipped_runs, short_ws,
           fb_cpu_features_str(fb_cpu_features(), feat, sizeof feat));
    FB_CHECK(runs > n_cases, "too few variant runs: %d", runs);
    FB_CHECK(short_ws > 0, "no kernel's workspace-too-small path was checked");
    return fb_test_finish("test_ops");
}
