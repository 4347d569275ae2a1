/* The one table of ops: declared slots, shapes for tests, reference, fast
 * variants (best first) with their CPU feature needs and workspaces,
 * tolerances. See ops.h for the contract and each op's argument slots;
 * op_select.c chooses and runs the variants. */
#include "ops/ops.h"
#include "core/cpu.h"
#include "core/q8_0.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Slot declarations: S("x", F32), SF("b", F32, OPT). */
#define S(name_, type_) {.name = name_, .type = type_}
#define SF(name_, type_, flags_) {.name = name_, .type = type_, .flags = flags_}
#define F32 FB_DT_F32
#define I32 FB_DT_I32
#define Q8_0 FB_DT_Q8_0
#define OPT FB_SLOT_OPTIONAL
#define ACC FB_SLOT_ACC

/* A reference kernel, and a NULL-terminated list of variants. */
#define REF(fn_, ...) {.name = "reference", .fn = fn_, __VA_ARGS__}
#define VARIANTS(...) (const fb_kernel[]){__VA_ARGS__, {.fn = NULL}}
/* The three builds of one *.simd.c kernel, best first. */
#define SIMD3_NAMED(prefix, fn_, ws_)                                                                      \
    {.name = prefix "avx512", .needs = FB_CPU_SET_AVX512, .fn = fn_##_avx512, .workspace = ws_},         \
    {.name = prefix "avx2", .needs = FB_CPU_SET_AVX2, .fn = fn_##_avx2, .workspace = ws_},               \
    {.name = prefix "generic", .needs = 0, .fn = fn_##_generic, .workspace = ws_}
#define SIMD3(fn_) SIMD3_NAMED("", fn_, NULL)

/* ---- shapes: {rows, cols, stride, bound} of every slot for the dims d ---- */
#define VEC(n) ((fb_shape){1, (n), (n), 0})
#define MAT(r, c) ((fb_shape){(r), (c), (c), 0})
#define STRIDED(r, c, s) ((fb_shape){(r), (c), (s), 0})
#define IDS(r, c, bound) ((fb_shape){(r), (c), (c), (bound)})

static void shapes_layernorm(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = MAT(d[0], d[1]); in[1] = in[2] = VEC(d[1]);
    out[0] = MAT(d[0], d[1]); out[1] = out[2] = VEC(d[0]);
}
static void shapes_rmsnorm(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = MAT(d[0], d[1]); in[1] = VEC(d[1]);
    out[0] = MAT(d[0], d[1]); out[1] = VEC(d[0]);
}
static void shapes_matmul(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = MAT(d[0], d[1]); in[1] = MAT(d[2], d[1]); in[2] = VEC(d[2]);
    out[0] = MAT(d[0], d[2]);
}
static void shapes_rope(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = out[0] = STRIDED(d[0] * d[1], d[2] * d[3], d[4]);
}
static void shapes_unary(const int64_t *d, fb_shape *in, fb_shape *out) { in[0] = out[0] = VEC(d[0]); }
static void shapes_binary(const int64_t *d, fb_shape *in, fb_shape *out) { in[0] = in[1] = out[0] = VEC(d[0]); }
static void shapes_swiglu(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = MAT(d[0], 2 * d[1]); out[0] = MAT(d[0], d[1]);
}
/* attention d: B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride, o_stride,
 * then, paged (d[10] = block size > 0): d[11] table entries per batch, d[12] pool blocks */
static void shapes_attention(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = STRIDED(d[0] * d[1], d[3] * d[5], d[7]);
    in[1] = in[2] = STRIDED(d[0] * d[2], d[4] * d[5], d[8]);
    if (d[10] > 0) {   /* the layer's pools and the block table */
        in[1] = in[2] = STRIDED(d[12] * d[10], d[4] * d[5], d[8]);
        in[3] = IDS(d[0], d[11], d[12]);
    }
    out[0] = STRIDED(d[0] * d[1], d[3] * d[5], d[9]);
    out[1] = MAT(d[0] * d[3], d[1]);
}
/* in: q, k, v, o, lse, do; out: dq, dk, dv */
static void shapes_attention_bwd(const int64_t *d, fb_shape *in, fb_shape *out) {
    fb_shape fwd_out[2];
    shapes_attention(d, in, fwd_out);
    in[3] = in[5] = fwd_out[0];
    in[4] = fwd_out[1];
    out[0] = in[0];
    out[1] = out[2] = in[1];
}
static void shapes_layernorm_bwd(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = in[1] = out[0] = MAT(d[0], d[1]);
    in[2] = out[1] = out[2] = VEC(d[1]);
    in[3] = in[4] = VEC(d[0]);
}
static void shapes_rmsnorm_bwd(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = in[1] = out[0] = MAT(d[0], d[1]);
    in[2] = out[1] = VEC(d[1]);
    in[3] = VEC(d[0]);
}
static void shapes_matmul_bwd(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = MAT(d[0], d[2]); in[1] = out[0] = MAT(d[0], d[1]);
    in[2] = out[1] = MAT(d[2], d[1]); out[2] = VEC(d[2]);
}
static void shapes_swiglu_bwd(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = MAT(d[0], d[1]); in[1] = out[0] = MAT(d[0], 2 * d[1]);
}
static void shapes_residual_bwd(const int64_t *d, fb_shape *in, fb_shape *out) { in[0] = out[0] = out[1] = VEC(d[0]); }
/* embedding d: B, T, C, V */
static void shapes_embedding_fwd(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = IDS(d[0], d[1], d[3]); in[1] = MAT(d[3], d[2]); in[2] = MAT(d[1], d[2]);
    out[0] = MAT(d[0] * d[1], d[2]);
}
static void shapes_embedding_bwd(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = MAT(d[0] * d[1], d[2]); in[1] = IDS(d[0], d[1], d[3]);
    out[0] = MAT(d[3], d[2]); out[1] = MAT(d[1], d[2]);
}
/* cross-entropy d: N, C, V, forward_only */
static void shapes_crossentropy(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = out[1] = MAT(d[0], d[1]); in[1] = out[2] = MAT(d[2], d[1]);
    in[2] = IDS(1, d[0], d[2]); out[0] = VEC(d[0]);
}
static void shapes_matmul_q8_0(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = MAT(d[0], d[1]); in[1] = MAT(d[2], d[1]); in[2] = VEC(d[2]);
    out[0] = MAT(d[0], d[2]);
}
/* sgemm d: transA, transB, M, N, K, lda, ldb, ldc */
static void shapes_sgemm(const int64_t *d, fb_shape *in, fb_shape *out) {
    const int64_t M = d[2], N = d[3], K = d[4];
    in[0] = d[0] ? STRIDED(K, M, d[5]) : STRIDED(M, K, d[5]);
    in[1] = d[1] ? STRIDED(N, K, d[6]) : STRIDED(K, N, d[6]);
    out[0] = STRIDED(M, N, d[7]);
}
static void shapes_adamw(const int64_t *d, fb_shape *in, fb_shape *out) {
    in[0] = out[0] = out[1] = out[2] = VEC(d[0]);
}

fb_status crossentropy_unfused(const fb_op_args *a);   /* ops/crossentropy_unfused.c */
size_t crossentropy_unfused_ws(const fb_op_args *a, int n_threads);

/* ---- test inputs that must be more than random numbers of their type ---- */
/* LayerNorm / RMSNorm backward: the mean and rstd the forward saves for x. */
static void prep_layernorm_bwd(const int64_t *d, void *const *in, void *const *out, uint64_t seed) {
    (void)out; (void)seed;
    const float *x = in[1];
    float *mean = in[3], *rstd = in[4];
    for (int64_t n = 0; n < d[0]; n++) {
        double m = 0, v = 0;
        for (int64_t c = 0; c < d[1]; c++) m += x[n * d[1] + c];
        m /= (double)d[1];
        for (int64_t c = 0; c < d[1]; c++) v += (x[n * d[1] + c] - m) * (x[n * d[1] + c] - m);
        mean[n] = (float)m;
        rstd[n] = (float)(1.0 / sqrt(v / (double)d[1] + 1e-5));
    }
}
static void prep_rmsnorm_bwd(const int64_t *d, void *const *in, void *const *out, uint64_t seed) {
    (void)out; (void)seed;
    const float *x = in[1];
    float *rstd = in[3];
    for (int64_t n = 0; n < d[0]; n++) {
        double ss = 0;
        for (int64_t c = 0; c < d[1]; c++) ss += (double)x[n * d[1] + c] * x[n * d[1] + c];
        rstd[n] = (float)(1.0 / sqrt(ss / (double)d[1] + 1e-5));
    }
}
/* Cross-entropy: h scaled to logits of realistic size (std ~2), some targets
 * ignored (-1), including the whole second chunk of 64 rows. */
static void prep_crossentropy(const int64_t *d, void *const *in, void *const *out, uint64_t seed) {
    (void)out; (void)seed;
    const int64_t N = d[0], C = d[1];
    const float k = (float)(2.0 / sqrt((double)C));
    float *h = in[0];
    int32_t *tg = in[2];
    for (int64_t i = 0; i < N * C; i++) h[i] *= k;
    for (int64_t n = 0; n < N; n++)
        if (n % 7 == 3 || (n >= 64 && n < 128)) tg[n] = -1;
}
/* Q8_0 weights (already valid random blocks): one all-zero block and one
 * q = -128 (valid in the format, never produced by GGML) to exercise the
 * sign handling of the int8 kernels. */
static void prep_matmul_q8_0(const int64_t *d, void *const *in, void *const *out, uint64_t seed) {
    (void)out; (void)seed;
    const int64_t C = d[1], OC = d[2];
    uint8_t *W = in[1];
    const size_t rb = fb_q8_0_row_bytes(C);
    if (C >= 64) memset(W + FB_Q8_0_BLOCK_BYTES, 0, FB_Q8_0_BLOCK_BYTES);   /* row 0, block 1: d = 0, q = 0 */
    if (C >= 32) W[(size_t)(OC - 1) * rb + 2 + 5] = (uint8_t)(int8_t)-128;
}
/* AdamW: second moments are non-negative. */
static void prep_adamw(const int64_t *d, void *const *in, void *const *out, uint64_t seed) {
    (void)in; (void)seed;
    float *v = out[2];
    for (int64_t i = 0; i < d[0]; i++) v[i] = fabsf(v[i]);
}
void attention_backward_prepare(const int64_t *d, void *const *in, void *const *out, uint64_t seed);

static const fb_op_def fb_ops[FB_OP_COUNT] = {
    [FB_OP_LAYERNORM_FWD] = {
        .name = "layernorm_forward",
        .in = {S("x", F32), S("w", F32), SF("b", F32, OPT)},
        .out = {S("y", F32), S("mean", F32), S("rstd", F32)},
        .shapes = shapes_layernorm,
        .reference = REF(layernorm_forward_ref),
        .variants = VARIANTS(SIMD3(layernorm_forward)),
        .tolerance = 1e-5,
    },
    [FB_OP_RMSNORM_FWD] = {
        .name = "rmsnorm_forward",
        .in = {S("x", F32), S("w", F32)},
        .out = {S("y", F32), S("rstd", F32)},
        .shapes = shapes_rmsnorm,
        .reference = REF(rmsnorm_forward_ref),
        .variants = VARIANTS(SIMD3(rmsnorm_forward)),
        .tolerance = 1e-5,
    },
    /* few-row GEMV kernels, falling back to the BLAS-tiled variant above 8 rows */
    [FB_OP_MATMUL_FWD] = {
        .name = "matmul_forward",
        .in = {S("x", F32), S("W", F32), SF("b", F32, OPT)},
        .out = {S("y", F32)},
        .shapes = shapes_matmul,
        .reference = REF(matmul_forward_ref),
        .variants = VARIANTS(SIMD3_NAMED("gemv_", matmul_forward_gemv, matmul_forward_gemv_ws),
                             {.name = "blas", .fn = matmul_forward_blas, .workspace = matmul_forward_blas_ws}),
        .tolerance = 1e-5,
    },
    [FB_OP_ROPE_FWD] = {
        .name = "rope_forward",
        .in = {S("x", F32)},
        .out = {S("y", F32)},
        .shapes = shapes_rope,
        .reference = REF(rope_forward_ref),
        .variants = VARIANTS(SIMD3_NAMED("", rope_forward, rope_ws)),
        .tolerance = 1e-5,
    },
    [FB_OP_GELU_TANH_FWD] = {
        .name = "gelu_tanh_forward",
        .in = {S("x", F32)},
        .out = {S("y", F32)},
        .shapes = shapes_unary,
        .reference = REF(gelu_tanh_forward_ref),
        .variants = VARIANTS(SIMD3(gelu_tanh_forward)),
        .tolerance = 1e-6,
    },
    [FB_OP_GELU_FWD] = {
        .name = "gelu_forward",
        .in = {S("x", F32)},
        .out = {S("y", F32)},
        .shapes = shapes_unary,
        .reference = REF(gelu_forward_ref),
        .variants = VARIANTS(SIMD3(gelu_forward)),
        .tolerance = 1e-6,
    },
    [FB_OP_SWIGLU_FWD] = {
        .name = "swiglu_forward",
        .in = {S("h", F32)},
        .out = {S("y", F32)},
        .shapes = shapes_swiglu,
        .reference = REF(swiglu_forward_ref),
        .variants = VARIANTS(SIMD3(swiglu_forward)),
        .tolerance = 1e-6,
    },
    [FB_OP_RESIDUAL_FWD] = {
        .name = "residual_forward",
        .in = {S("a", F32), S("b", F32)},
        .out = {S("y", F32)},
        .shapes = shapes_binary,
        .reference = REF(residual_forward_ref),
        .variants = VARIANTS(SIMD3(residual_forward)),
        .tolerance = 1e-7,
    },
    [FB_OP_ATTENTION_FWD] = {
        .name = "attention_forward",
        .in = {S("q", F32), S("k", F32), S("v", F32), SF("block_table", I32, OPT)},
        .out = {S("o", F32), S("lse", F32)},
        .shapes = shapes_attention,
        .reference = REF(attention_forward_naive, .workspace = attention_forward_naive_ws),
        .variants = VARIANTS(SIMD3_NAMED("flash_", flash_attention_forward, flash_attention_forward_ws),
                             SIMD3_NAMED("standard_", attention_forward_standard, attention_forward_standard_ws)),
        .tolerance = 2e-5,
    },

    /* -- backward ops -- */
    [FB_OP_LAYERNORM_BWD] = {
        .name = "layernorm_backward",
        .in = {S("dy", F32), S("x", F32), S("w", F32), S("mean", F32), S("rstd", F32)},
        .out = {SF("dx", F32, ACC), SF("dw", F32, ACC), SF("db", F32, ACC | OPT)},
        .shapes = shapes_layernorm_bwd,
        .reference = REF(layernorm_backward_ref, .workspace = norm_backward_ref_ws),
        .variants = VARIANTS(SIMD3(layernorm_backward)),
        .tolerance = 1e-5,
        .prepare = prep_layernorm_bwd,
    },
    [FB_OP_RMSNORM_BWD] = {
        .name = "rmsnorm_backward",
        .in = {S("dy", F32), S("x", F32), S("w", F32), S("rstd", F32)},
        .out = {SF("dx", F32, ACC), SF("dw", F32, ACC)},
        .shapes = shapes_rmsnorm_bwd,
        .reference = REF(rmsnorm_backward_ref, .workspace = norm_backward_ref_ws),
        .variants = VARIANTS(SIMD3(rmsnorm_backward)),
        .tolerance = 1e-5,
        .prepare = prep_rmsnorm_bwd,
    },
    [FB_OP_MATMUL_BWD] = {
        .name = "matmul_backward",
        .in = {S("dy", F32), S("x", F32), S("W", F32)},
        .out = {SF("dx", F32, ACC), SF("dW", F32, ACC), SF("db", F32, ACC | OPT)},
        .shapes = shapes_matmul_bwd,
        .reference = REF(matmul_backward_ref, .workspace = matmul_backward_ref_ws),
        .variants = VARIANTS({.name = "blas", .fn = matmul_backward_blas, .workspace = matmul_backward_blas_ws}),
        .tolerance = 1e-5,
    },
    [FB_OP_ROPE_BWD] = {
        .name = "rope_backward",
        .in = {S("dy", F32)},
        .out = {S("dx", F32)},
        .shapes = shapes_rope,
        .reference = REF(rope_backward_ref),
        .variants = VARIANTS(SIMD3_NAMED("", rope_backward, rope_ws)),
        .tolerance = 1e-6,
    },
    [FB_OP_GELU_TANH_BWD] = {
        .name = "gelu_tanh_backward",
        .in = {S("dy", F32), S("x", F32)},
        .out = {S("dx", F32)},
        .shapes = shapes_binary,
        .reference = REF(gelu_tanh_backward_ref),
        .variants = VARIANTS(SIMD3(gelu_tanh_backward)),
        .tolerance = 2e-6,
    },
    [FB_OP_GELU_BWD] = {
        .name = "gelu_backward",
        .in = {S("dy", F32), S("x", F32)},
        .out = {S("dx", F32)},
        .shapes = shapes_binary,
        .reference = REF(gelu_backward_ref),
        .variants = VARIANTS(SIMD3(gelu_backward)),
        .tolerance = 1e-6,
    },
    [FB_OP_SWIGLU_BWD] = {
        .name = "swiglu_backward",
        .in = {S("dy", F32), S("h", F32)},
        .out = {S("dh", F32)},
        .shapes = shapes_swiglu_bwd,
        .reference = REF(swiglu_backward_ref),
        .variants = VARIANTS(SIMD3(swiglu_backward)),
        .tolerance = 1e-6,
    },
    [FB_OP_RESIDUAL_BWD] = {
        .name = "residual_backward",
        .in = {S("dy", F32)},
        .out = {SF("da", F32, ACC), SF("db", F32, ACC)},
        .shapes = shapes_residual_bwd,
        .reference = REF(residual_backward_ref),
        .variants = VARIANTS(SIMD3(residual_backward)),
        .tolerance = 1e-7,
    },
    [FB_OP_EMBEDDING_FWD] = {
        .name = "embedding_forward",
        .in = {S("ids", I32), S("wte", F32), SF("wpe", F32, OPT)},
        .out = {S("y", F32)},
        .shapes = shapes_embedding_fwd,
        .reference = REF(embedding_forward_ref),
        .variants = VARIANTS(SIMD3(embedding_forward)),
        .tolerance = 1e-7,
    },
    [FB_OP_EMBEDDING_BWD] = {
        .name = "embedding_backward",
        .in = {S("dy", F32), S("ids", I32)},
        .out = {SF("dwte", F32, ACC), SF("dwpe", F32, ACC | OPT)},
        .shapes = shapes_embedding_bwd,
        .reference = REF(embedding_backward_ref, .workspace = embedding_backward_ref_ws),
        .variants = VARIANTS(SIMD3(embedding_backward)),
        .tolerance = 1e-6,
    },
    [FB_OP_CROSSENTROPY_FUSED] = {
        .name = "crossentropy_fused",
        .in = {S("h", F32), S("W", F32), S("targets", I32)},
        .out = {S("loss", F32), SF("dh", F32, ACC | OPT), SF("dW", F32, ACC | OPT)},
        .shapes = shapes_crossentropy,
        .reference = REF(crossentropy_fused_ref, .workspace = crossentropy_fused_ref_ws),
        /* "unfused" (full [N, V] logits, the seed tables' baseline) is last: never the default */
        .variants = VARIANTS(SIMD3_NAMED("", crossentropy_fused, crossentropy_fused_ws),
                             {.name = "unfused", .fn = crossentropy_unfused, .workspace = crossentropy_unfused_ws}),
        .tolerance = 2e-5,
        .prepare = prep_crossentropy,
    },
    [FB_OP_ATTENTION_BWD] = {
        .name = "attention_backward",
        .in = {S("q", F32), S("k", F32), S("v", F32), S("o", F32), S("lse", F32), S("do", F32)},
        .out = {S("dq", F32), S("dk", F32), S("dv", F32)},
        .shapes = shapes_attention_bwd,
        .reference = REF(attention_backward_naive, .workspace = attention_backward_naive_ws),
        .variants = VARIANTS(SIMD3_NAMED("flash_", flash_attention_backward, flash_attention_backward_ws),
                             SIMD3_NAMED("standard_", attention_backward_standard, attention_backward_standard_ws)),
        .tolerance = 1e-4,
        .prepare = attention_backward_prepare,
    },

    /* -- inference ops -- */
    [FB_OP_ATTENTION_DECODE] = {
        .name = "attention_decode",
        .in = {S("q", F32), S("k", F32), S("v", F32), SF("block_table", I32, OPT)},
        .out = {S("o", F32), S("lse", F32)},
        .shapes = shapes_attention,
        .reference = REF(attention_forward_naive, .workspace = attention_forward_naive_ws),
        .variants = VARIANTS(SIMD3_NAMED("", attention_decode, attention_decode_ws)),
        .tolerance = 2e-5,
    },
    /* tolerance: the fast kernels quantise x to int8 (as llama.cpp does): for
     * a single output of one 32-value block that rounding alone reaches ~1.5%
     * of the output. The strict check, against a reference that rounds x the
     * same way, is in tests/infer. */
    [FB_OP_MATMUL_Q8_0] = {
        .name = "matmul_q8_0",
        .in = {S("x", F32), S("Wq", Q8_0), SF("b", F32, OPT)},
        .out = {S("y", F32)},
        .shapes = shapes_matmul_q8_0,
        .reference = REF(matmul_q8_0_forward_ref, .workspace = matmul_q8_0_ref_ws),
        .variants = VARIANTS({.name = "avx512_vnni", .needs = FB_CPU_SET_AVX512 | FB_CPU_AVX512_VNNI,
                              .fn = matmul_q8_0_forward_vnni_avx512, .workspace = matmul_q8_0_ws},
                             SIMD3_NAMED("", matmul_q8_0_forward, matmul_q8_0_ws)),
        .tolerance = 2e-2,
        .prepare = prep_matmul_q8_0,
    },

    /* -- building blocks -- */
    /* The packed kernel takes M >= 8 (OpenBLAS below: decode GEMVs would
     * spend more on packing B than on FMAs); see gemm.h. */
    [FB_OP_SGEMM] = {
        .name = "sgemm",
        .in = {S("A", F32), S("B", F32)},
        .out = {SF("C", F32, ACC)},
        .shapes = shapes_sgemm,
        .reference = REF(sgemm_ref),
        .variants = VARIANTS({.name = "packed_avx512", .needs = FB_CPU_SET_AVX512, .fn = sgemm_packed_avx512,
                              .workspace = sgemm_packed_ws},
                             {.name = "blas", .fn = sgemm_blas}),
        .tolerance = 1e-5,
    },
    [FB_OP_ADAMW] = {
        .name = "adamw",
        .in = {S("g", F32)},
        .out = {SF("p", F32, ACC), SF("m", F32, ACC), SF("v", F32, ACC)},
        .shapes = shapes_adamw,
        .reference = REF(adamw_update_ref),
        .variants = VARIANTS(SIMD3(adamw_update)),
        .tolerance = 1e-6,
        .prepare = prep_adamw,
    },
};

const fb_op_def *fb_op_get(fb_op_id op) {
    return ((unsigned)op < FB_OP_COUNT && fb_ops[op].reference.fn) ? &fb_ops[op] : NULL;
}
