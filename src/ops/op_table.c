/* The one table of ops: reference, fast variants, buffer sizes for tests,
 * tolerances. See ops.h for the contract and each op's argument slots. */
#include "ops/ops.h"
#include "ops/infer_kernels.h"
#include "core/error.h"
#include "core/runtime.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void attention_forward_standard_generic(const fb_op_args *a);
void attention_forward_standard_avx2(const fb_op_args *a);
void attention_forward_standard_avx512(const fb_op_args *a);
/* attention backward (src/attention/attention_backward_naive.c, flash_backward.simd.c,
 * attention_standard_backward.simd.c) */
void attention_backward_naive(const fb_op_args *a);
void attention_backward_sizes(const int64_t *d, size_t *in, size_t *out);
void attention_backward_prepare_inputs(const int64_t *d, float **in, uint64_t seed);
FB_DECLARE_SIMD(flash_attention_backward);
FB_DECLARE_SIMD(attention_backward_standard);

static void sizes_layernorm(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * d[1]); in[1] = in[2] = (size_t)d[1];
    out[0] = (size_t)(d[0] * d[1]); out[1] = out[2] = (size_t)d[0];
}
static void sizes_rmsnorm(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * d[1]); in[1] = (size_t)d[1];
    out[0] = (size_t)(d[0] * d[1]); out[1] = (size_t)d[0];
}
static void sizes_matmul(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * d[1]); in[1] = (size_t)(d[2] * d[1]); in[2] = (size_t)d[2];
    out[0] = (size_t)(d[0] * d[2]);
}
static void sizes_rope(const int64_t *d, size_t *in, size_t *out) {
    in[0] = out[0] = (size_t)(d[0] * d[1] * d[4]);
}
static void sizes_unary(const int64_t *d, size_t *in, size_t *out) { in[0] = out[0] = (size_t)d[0]; }
static void sizes_binary(const int64_t *d, size_t *in, size_t *out) { in[0] = in[1] = out[0] = (size_t)d[0]; }
static void sizes_swiglu(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * 2 * d[1]); out[0] = (size_t)(d[0] * d[1]);
}
static void sizes_attention(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * d[1] * d[7]);
    in[1] = in[2] = (size_t)(d[0] * d[2] * d[8]);
    if (d[10] > 0) {   /* paged: the pool and the block table */
        in[1] = in[2] = (size_t)(d[12] * d[10] * d[8]);
        in[3] = (size_t)(d[0] * d[11]);
    }
    out[0] = (size_t)(d[0] * d[1] * d[9]);
    out[1] = (size_t)(d[0] * d[3] * d[1]);
}

/* -- backward ops (training): kernels, sizes, test inputs -- */
void layernorm_backward_ref(const fb_op_args *a);
void rmsnorm_backward_ref(const fb_op_args *a);
void matmul_backward_ref(const fb_op_args *a);
void matmul_backward_blas(const fb_op_args *a);
void rope_backward_ref(const fb_op_args *a);
void gelu_tanh_backward_ref(const fb_op_args *a);
void gelu_backward_ref(const fb_op_args *a);
void swiglu_backward_ref(const fb_op_args *a);
void residual_backward_ref(const fb_op_args *a);
void embedding_forward_ref(const fb_op_args *a);
void embedding_backward_ref(const fb_op_args *a);
void crossentropy_fused_ref(const fb_op_args *a);
FB_DECLARE_SIMD(layernorm_backward);
FB_DECLARE_SIMD(rmsnorm_backward);
FB_DECLARE_SIMD(rope_backward);
FB_DECLARE_SIMD(gelu_tanh_backward);
FB_DECLARE_SIMD(gelu_backward);
FB_DECLARE_SIMD(swiglu_backward);
FB_DECLARE_SIMD(residual_backward);
FB_DECLARE_SIMD(embedding_forward);
FB_DECLARE_SIMD(embedding_backward);
FB_DECLARE_SIMD(crossentropy_fused);
void crossentropy_unfused(const fb_op_args *a);   /* the unfused baseline, never the default */

static void sizes_layernorm_bwd(const int64_t *d, size_t *in, size_t *out) {
    in[0] = in[1] = out[0] = (size_t)(d[0] * d[1]);
    in[2] = out[1] = out[2] = (size_t)d[1];
    in[3] = in[4] = (size_t)d[0];
}
static void sizes_rmsnorm_bwd(const int64_t *d, size_t *in, size_t *out) {
    in[0] = in[1] = out[0] = (size_t)(d[0] * d[1]);
    in[2] = out[1] = (size_t)d[1];
    in[3] = (size_t)d[0];
}
static void sizes_matmul_bwd(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * d[2]); in[1] = out[0] = (size_t)(d[0] * d[1]);
    in[2] = out[1] = (size_t)(d[2] * d[1]); out[2] = (size_t)d[2];
}
static void sizes_swiglu_bwd(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * d[1]); in[1] = out[0] = (size_t)(d[0] * 2 * d[1]);
}
static void sizes_residual_bwd(const int64_t *d, size_t *in, size_t *out) { in[0] = out[0] = out[1] = (size_t)d[0]; }
static void sizes_embedding_fwd(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * d[1]); in[1] = (size_t)(d[3] * d[2]); in[2] = (size_t)(d[1] * d[2]);
    out[0] = (size_t)(d[0] * d[1] * d[2]);
}
static void sizes_embedding_bwd(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * d[1] * d[2]); in[1] = (size_t)(d[0] * d[1]);
    out[0] = (size_t)(d[3] * d[2]); out[1] = (size_t)(d[1] * d[2]);
}
static void sizes_crossentropy(const int64_t *d, size_t *in, size_t *out) {
    in[0] = out[1] = (size_t)(d[0] * d[1]); in[1] = out[2] = (size_t)(d[2] * d[1]);
    in[2] = out[0] = (size_t)d[0];
}
static uint64_t prep_rng(uint64_t *s) {   /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static void prep_ids(int32_t *ids, int64_t n, int64_t V, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)(prep_rng(&seed) % (uint64_t)V);
}
/* LayerNorm / RMSNorm backward: the mean and rstd the forward saves for x. */
static void prep_layernorm_bwd(const int64_t *d, float **in, uint64_t seed) {
    (void)seed;
    for (int64_t n = 0; n < d[0]; n++) {
        double m = 0, v = 0;
        for (int64_t c = 0; c < d[1]; c++) m += in[1][n * d[1] + c];
        m /= (double)d[1];
        for (int64_t c = 0; c < d[1]; c++) v += (in[1][n * d[1] + c] - m) * (in[1][n * d[1] + c] - m);
        in[3][n] = (float)m;
        in[4][n] = (float)(1.0 / sqrt(v / (double)d[1] + 1e-5));
    }
}
static void prep_rmsnorm_bwd(const int64_t *d, float **in, uint64_t seed) {
    (void)seed;
    for (int64_t n = 0; n < d[0]; n++) {
        double ss = 0;
        for (int64_t c = 0; c < d[1]; c++) ss += (double)in[1][n * d[1] + c] * in[1][n * d[1] + c];
        in[3][n] = (float)(1.0 / sqrt(ss / (double)d[1] + 1e-5));
    }
}
static void prep_embedding_fwd(const int64_t *d, float **in, uint64_t seed) {
    prep_ids((int32_t *)(void *)in[0], d[0] * d[1], d[3], seed);
}
static void prep_embedding_bwd(const int64_t *d, float **in, uint64_t seed) {
    prep_ids((int32_t *)(void *)in[1], d[0] * d[1], d[3], seed);
}
/* Cross-entropy: h scaled to logits of realistic size (std ~2), random
 * targets, some ignored (-1), including the whole second chunk of 64 rows. */
static void prep_crossentropy(const int64_t *d, float **in, uint64_t seed) {
    const int64_t N = d[0], C = d[1], V = d[2];
    const float k = (float)(2.0 / sqrt((double)C));
    for (int64_t i = 0; i < N * C; i++) in[0][i] *= k;
    int32_t *tg = (int32_t *)(void *)in[2];
    prep_ids(tg, N, V, seed);
    for (int64_t n = 0; n < N; n++)
        if (n % 7 == 3 || (n >= 64 && n < 128)) tg[n] = -1;
}

/* few-row matmul (decode); falls back to BLAS above 8 rows */
void matmul_forward_gemv_avx512(const fb_op_args *a);
void matmul_forward_gemv_avx2(const fb_op_args *a);
void matmul_forward_gemv_generic(const fb_op_args *a);

#define SIMD3(name) {"avx512", FB_ISA_AVX512, name##_avx512}, {"avx2", FB_ISA_AVX2, name##_avx2}, \
                    {"generic", FB_ISA_GENERIC, name##_generic}

static const fb_op_def fb_ops[FB_OP_COUNT] = {
    [FB_OP_LAYERNORM_FWD] = {"layernorm_forward", layernorm_forward_ref, {SIMD3(layernorm_forward)}, 3, 3,
                             sizes_layernorm, 0, 1e-5, NULL},
    [FB_OP_RMSNORM_FWD] = {"rmsnorm_forward", rmsnorm_forward_ref, {SIMD3(rmsnorm_forward)}, 2, 2, sizes_rmsnorm, 0,
                           1e-5, NULL},
    [FB_OP_MATMUL_FWD] = {"matmul_forward", matmul_forward_ref,
                          {{"gemv_avx512", FB_ISA_AVX512, matmul_forward_gemv_avx512},
                           {"gemv_avx2", FB_ISA_AVX2, matmul_forward_gemv_avx2},
                           {"gemv_generic", FB_ISA_GENERIC, matmul_forward_gemv_generic},
                           {"blas", FB_ISA_GENERIC, matmul_forward_blas}}, 3,
                          1, sizes_matmul, 0, 1e-5, NULL},
    [FB_OP_ROPE_FWD] = {"rope_forward", rope_forward_ref, {SIMD3(rope_forward)}, 1, 1, sizes_rope, 0, 1e-5, NULL},
    [FB_OP_GELU_TANH_FWD] = {"gelu_tanh_forward", gelu_tanh_forward_ref, {SIMD3(gelu_tanh_forward)}, 1, 1,
                             sizes_unary, 0, 1e-6, NULL},
    [FB_OP_GELU_FWD] = {"gelu_forward", gelu_forward_ref, {SIMD3(gelu_forward)}, 1, 1, sizes_unary, 0, 1e-6, NULL},
    [FB_OP_SWIGLU_FWD] = {"swiglu_forward", swiglu_forward_ref, {SIMD3(swiglu_forward)}, 1, 1, sizes_swiglu, 0,
                          1e-6, NULL},
    [FB_OP_RESIDUAL_FWD] = {"residual_forward", residual_forward_ref, {SIMD3(residual_forward)}, 2, 1,
                            sizes_binary, 0, 1e-7, NULL},
    [FB_OP_ATTENTION_FWD] = {"attention_forward", attention_forward_naive,
                             {{"flash_avx512", FB_ISA_AVX512, flash_attention_forward_avx512},
                              {"flash_avx2", FB_ISA_AVX2, flash_attention_forward_avx2},
                              {"flash_generic", FB_ISA_GENERIC, flash_attention_forward_generic},
                              {"standard_avx512", FB_ISA_AVX512, attention_forward_standard_avx512},
                              {"standard_avx2", FB_ISA_AVX2, attention_forward_standard_avx2},
                              {"standard_generic", FB_ISA_GENERIC, attention_forward_standard_generic}},
                             3, 2, sizes_attention, 0, 2e-5, NULL},
    /* -- backward ops: entries go here -- */
    [FB_OP_LAYERNORM_BWD] = {"layernorm_backward", layernorm_backward_ref, {SIMD3(layernorm_backward)}, 5, 3,
                             sizes_layernorm_bwd, 7, 1e-5, prep_layernorm_bwd},
    [FB_OP_RMSNORM_BWD] = {"rmsnorm_backward", rmsnorm_backward_ref, {SIMD3(rmsnorm_backward)}, 4, 2,
                           sizes_rmsnorm_bwd, 3, 1e-5, prep_rmsnorm_bwd},
    [FB_OP_MATMUL_BWD] = {"matmul_backward", matmul_backward_ref, {{"blas", FB_ISA_GENERIC, matmul_backward_blas}},
                          3, 3, sizes_matmul_bwd, 7, 1e-5, NULL},
    [FB_OP_ROPE_BWD] = {"rope_backward", rope_backward_ref, {SIMD3(rope_backward)}, 1, 1, sizes_rope, 0, 1e-6, NULL},
    [FB_OP_GELU_TANH_BWD] = {"gelu_tanh_backward", gelu_tanh_backward_ref, {SIMD3(gelu_tanh_backward)}, 2, 1,
                             sizes_binary, 0, 2e-6, NULL},
    [FB_OP_GELU_BWD] = {"gelu_backward", gelu_backward_ref, {SIMD3(gelu_backward)}, 2, 1, sizes_binary, 0, 1e-6,
                        NULL},
    [FB_OP_SWIGLU_BWD] = {"swiglu_backward", swiglu_backward_ref, {SIMD3(swiglu_backward)}, 2, 1, sizes_swiglu_bwd,
                          0, 1e-6, NULL},
    [FB_OP_RESIDUAL_BWD] = {"residual_backward", residual_backward_ref, {SIMD3(residual_backward)}, 1, 2,
                            sizes_residual_bwd, 3, 1e-7, NULL},
    [FB_OP_EMBEDDING_FWD] = {"embedding_forward", embedding_forward_ref, {SIMD3(embedding_forward)}, 3, 1,
                             sizes_embedding_fwd, 0, 1e-7, prep_embedding_fwd},
    [FB_OP_EMBEDDING_BWD] = {"embedding_backward", embedding_backward_ref, {SIMD3(embedding_backward)}, 2, 2,
                             sizes_embedding_bwd, 3, 1e-6, prep_embedding_bwd},
    [FB_OP_CROSSENTROPY_FUSED] = {"crossentropy_fused", crossentropy_fused_ref, {SIMD3(crossentropy_fused), {"unfused", FB_ISA_GENERIC, crossentropy_unfused}}, 3, 3,
                                  sizes_crossentropy, 6, 2e-5, prep_crossentropy},

    /* -- attention backward: entry goes here -- */
    [FB_OP_ATTENTION_BWD] = {"attention_backward", attention_backward_naive,
                             {{"flash_avx512", FB_ISA_AVX512, flash_attention_backward_avx512},
                              {"flash_avx2", FB_ISA_AVX2, flash_attention_backward_avx2},
                              {"flash_generic", FB_ISA_GENERIC, flash_attention_backward_generic},
                              {"standard_avx512", FB_ISA_AVX512, attention_backward_standard_avx512},
                              {"standard_avx2", FB_ISA_AVX2, attention_backward_standard_avx2},
                              {"standard_generic", FB_ISA_GENERIC, attention_backward_standard_generic}},
                             6, 3, attention_backward_sizes, 0, 1e-4, attention_backward_prepare_inputs},

    /* -- inference ops: entries go here -- */
    [FB_OP_ATTENTION_DECODE] = {"attention_decode", attention_forward_naive, {SIMD3(attention_decode)}, 3, 2,
                                sizes_attention, 0, 2e-5, NULL},
    /* tolerance: the fast kernels quantise x to int8 (as llama.cpp does); the
     * strict check against a reference that does the same is in tests/infer. */
    [FB_OP_MATMUL_Q8_0] = {"matmul_q8_0", matmul_q8_0_forward_ref,
                           {{"avx512_vnni", FB_ISA_AVX512, matmul_q8_0_forward_vnni_avx512}, SIMD3(matmul_q8_0_forward)},
                           3, 1, matmul_q8_0_sizes, 0, 1e-2, matmul_q8_0_prepare},
};

/* Ops without a table entry yet have no reference; they are skipped. */
static fb_kernel_fn selected[FB_OP_COUNT];
static const char *selected_name[FB_OP_COUNT];
static int selection_done = 0;

const fb_op_def *fb_op_get(fb_op_id op) { return (op >= 0 && op < FB_OP_COUNT) ? &fb_ops[op] : NULL; }

static int n_variants(const fb_op_def *def) {
    int n = 0;
    while (n < FB_OP_MAX_VARIANTS && def->fast[n].fn) n++;
    return n;
}

fb_status fb_op_force_variant(fb_op_id op, const char *variant) {
    const fb_op_def *def = fb_op_get(op);
    if (!def || !variant) return fb_fail(FB_ERR_INVALID_ARG, "unknown op");
    if (!selection_done) fb_ops_select();
    if (strcmp(variant, "reference") == 0) {
        selected[op] = def->reference;
        selected_name[op] = "reference";
        return FB_OK;
    }
    for (int i = 0; i < n_variants(def); i++)
        if (strcmp(def->fast[i].variant, variant) == 0) {
            if (def->fast[i].isa > fb_cpu_best_isa())
                return fb_fail(FB_ERR_UNSUPPORTED, "%s: variant %s needs %s, this CPU lacks it", def->name, variant,
                               fb_isa_name(def->fast[i].isa));
            selected[op] = def->fast[i].fn;
            selected_name[op] = def->fast[i].variant;
            return FB_OK;
        }
    return fb_fail(FB_ERR_INVALID_ARG, "%s: no variant named '%s'", def->name, variant);
}

void fb_ops_select(void) {
    fb_runtime_init();
    fb_isa isa = fb_cpu_best_isa();
    for (int op = 0; op < FB_OP_COUNT; op++) {
        const fb_op_def *def = &fb_ops[op];
        if (!def->reference) continue;
        selected[op] = def->reference;
        selected_name[op] = "reference";
        /* Variants are listed best first: take the first this CPU can run. */
        for (int i = 0; i < n_variants(def); i++)
            if (def->fast[i].isa <= isa) {
                selected[op] = def->fast[i].fn;
                selected_name[op] = def->fast[i].variant;
                break;
            }
    }
    selection_done = 1;
    /* FLASHBLOCK_KERNEL_<OP NAME>=variant overrides, e.g.
     * FLASHBLOCK_KERNEL_ATTENTION_FORWARD=standard_avx512 */
    for (int op = 0; op < FB_OP_COUNT; op++) {
        char env[96] = "FLASHBLOCK_KERNEL_";
        size_t len = strlen(env);
        for (const char *p = fb_ops[op].name; *p && len + 1 < sizeof env; p++) env[len++] = (char)toupper(*p);
        env[len] = '\0';
        const char *v = getenv(env);
        if (v) (void)fb_op_force_variant((fb_op_id)op, v);
    }
}

const char *fb_op_selected_variant(fb_op_id op) {
    if (!selection_done) fb_ops_select();
    return selected_name[op];
}

void fb_op_run(fb_op_id op, const fb_op_args *a) {
    if (!selection_done) fb_ops_select();
    selected[op](a);
}
