/* The one table of ops: reference, fast variants, buffer sizes for tests,
 * tolerances. See ops.h for the contract and each op's argument slots. */
#include "ops/ops.h"
#include "core/error.h"
#include "core/runtime.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void attention_forward_standard_generic(const fb_op_args *a);
void attention_forward_standard_avx2(const fb_op_args *a);
void attention_forward_standard_avx512(const fb_op_args *a);

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
    out[0] = (size_t)(d[0] * d[1] * d[9]);
    out[1] = (size_t)(d[0] * d[3] * d[1]);
}

#define SIMD3(name) {"avx512", FB_ISA_AVX512, name##_avx512}, {"avx2", FB_ISA_AVX2, name##_avx2}, \
                    {"generic", FB_ISA_GENERIC, name##_generic}

static const fb_op_def fb_ops[FB_OP_COUNT] = {
    [FB_OP_LAYERNORM_FWD] = {"layernorm_forward", layernorm_forward_ref, {SIMD3(layernorm_forward)}, 3, 3,
                             sizes_layernorm, 0, 1e-5},
    [FB_OP_RMSNORM_FWD] = {"rmsnorm_forward", rmsnorm_forward_ref, {SIMD3(rmsnorm_forward)}, 2, 2, sizes_rmsnorm, 0,
                           1e-5},
    [FB_OP_MATMUL_FWD] = {"matmul_forward", matmul_forward_ref, {{"blas", FB_ISA_GENERIC, matmul_forward_blas}}, 3,
                          1, sizes_matmul, 0, 1e-5},
    [FB_OP_ROPE_FWD] = {"rope_forward", rope_forward_ref, {SIMD3(rope_forward)}, 1, 1, sizes_rope, 0, 1e-5},
    [FB_OP_GELU_TANH_FWD] = {"gelu_tanh_forward", gelu_tanh_forward_ref, {SIMD3(gelu_tanh_forward)}, 1, 1,
                             sizes_unary, 0, 1e-6},
    [FB_OP_GELU_FWD] = {"gelu_forward", gelu_forward_ref, {SIMD3(gelu_forward)}, 1, 1, sizes_unary, 0, 1e-6},
    [FB_OP_SWIGLU_FWD] = {"swiglu_forward", swiglu_forward_ref, {SIMD3(swiglu_forward)}, 1, 1, sizes_swiglu, 0,
                          1e-6},
    [FB_OP_RESIDUAL_FWD] = {"residual_forward", residual_forward_ref, {SIMD3(residual_forward)}, 2, 1,
                            sizes_binary, 0, 1e-7},
    [FB_OP_ATTENTION_FWD] = {"attention_forward", attention_forward_naive,
                             {{"flash_avx512", FB_ISA_AVX512, flash_attention_forward_avx512},
                              {"flash_avx2", FB_ISA_AVX2, flash_attention_forward_avx2},
                              {"flash_generic", FB_ISA_GENERIC, flash_attention_forward_generic},
                              {"standard_avx512", FB_ISA_AVX512, attention_forward_standard_avx512},
                              {"standard_avx2", FB_ISA_AVX2, attention_forward_standard_avx2},
                              {"standard_generic", FB_ISA_GENERIC, attention_forward_standard_generic}},
                             3, 2, sizes_attention, 0, 2e-5},
    /* -- backward ops: entries go here -- */

    /* -- attention backward: entry goes here -- */

    /* -- inference ops: entries go here -- */
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
