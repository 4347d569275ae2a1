/*
 * Every fast variant of every op against its reference, on the shapes
 * listed below (awkward ones included: T=1, T not a multiple of any tile,
 * odd head dims, GQA and MQA, chunked prefill offsets, strided layouts).
 *
 * Outputs start filled with NaN garbage (an unwritten element fails the
 * comparison) and every buffer is followed by guard words (an out-of-bounds
 * write fails the guard check). Accumulating outputs start from the same
 * random values for reference and variant. Errors are measured relative to
 * the reference output's largest magnitude; each op states its bound in
 * src/ops/op_table.c.
 *
 * Adding an op: give it an entry in the op table and its shapes here. An op
 * of the table with no case here fails the test, and every variant this CPU
 * (or FLASHBLOCK_ISA) cannot run is named with the reason, so a run that
 * compared fewer kernels says so instead of passing quietly.
 */
#include "ops/ops.h"
#include "test_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 16
static const uint32_t GUARD_BITS = 0xDEADBEEFu;

typedef struct {
    fb_op_id op;
    int64_t d[FB_OP_MAX_D];
    float f[4];
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
#undef DEC
    /* Q8_0 matmul: C = 32, 64, 288, 768, 2048; OC = 1, 7, 768; N = 1, 3 (bias and none) */
    {FB_OP_MATMUL_Q8_0, {1, 32, 1}, {0}, 0}, {FB_OP_MATMUL_Q8_0, {3, 32, 7}, {0}, 4},
    {FB_OP_MATMUL_Q8_0, {1, 64, 7}, {0}, 0}, {FB_OP_MATMUL_Q8_0, {3, 64, 768}, {0}, 4},
    {FB_OP_MATMUL_Q8_0, {1, 288, 768}, {0}, 4}, {FB_OP_MATMUL_Q8_0, {3, 288, 7}, {0}, 0},
    {FB_OP_MATMUL_Q8_0, {1, 768, 768}, {0}, 0}, {FB_OP_MATMUL_Q8_0, {3, 768, 1}, {0}, 4},
    {FB_OP_MATMUL_Q8_0, {1, 2048, 768}, {0}, 4}, {FB_OP_MATMUL_Q8_0, {3, 2048, 7}, {0}, 0},
    {FB_OP_MATMUL_Q8_0, {3, 96, 768}, {0}, 0},   /* odd number of blocks */
};

static float *alloc_guarded(size_t n) {
    float *p = malloc(sizeof(float) * (n + GUARD));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < GUARD; i++) memcpy(p + n + i, &GUARD_BITS, 4);
    return p;
}

static int guard_ok(const float *p, size_t n) {
    for (size_t i = 0; i < GUARD; i++) {
        uint32_t u;
        memcpy(&u, p + n + i, 4);
        if (u != GUARD_BITS) return 0;
    }
    return 1;
}

/* Max |got - ref| relative to max |ref|. Elements the reference left
 * unwritten (NaN garbage, e.g. gaps of a strided layout) must stay NaN. */
static double rel_err(const float *got, const float *ref, size_t n) {
    double maxref = 1e-6, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(ref[i])) { if (!isnan(got[i])) return INFINITY; continue; }
        if (fabs((double)ref[i]) > maxref) maxref = fabs((double)ref[i]);
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= maxdiff)) maxdiff = d;
    }
    return isfinite(maxdiff) ? maxdiff / maxref : INFINITY;
}

static void describe(const op_case *c, char *buf, size_t len) {
    int k = snprintf(buf, len, "d=[");
    for (int i = 0; i < 10 && k < (int)len; i++) k += snprintf(buf + k, len - (size_t)k, "%lld%s", (long long)c->d[i], i < 9 ? "," : "]");
}

/* Why a variant needing ISA `need` cannot run here. The runtime level is the
 * lower of what the CPU supports and FLASHBLOCK_ISA (src/core/runtime.c
 * ignores a name it does not know), so blame the variable only when it names
 * a level below `need`. */
static void skip_reason(fb_isa need, char *buf, size_t len) {
    const char *cap = getenv("FLASHBLOCK_ISA");
    int cap_isa = FB_ISA_COUNT;
    for (int i = 0; cap && i < FB_ISA_COUNT; i++)
        if (strcmp(cap, fb_isa_name((fb_isa)i)) == 0) cap_isa = i;
    if (cap_isa < (int)need)
        snprintf(buf, len, "needs %s, FLASHBLOCK_ISA=%s limits this run to %s", fb_isa_name(need), cap,
                 fb_isa_name(fb_cpu_best_isa()));
    else
        snprintf(buf, len, "CPU lacks %s (best ISA: %s)", fb_isa_name(need), fb_isa_name(fb_cpu_best_isa()));
}

int main(void) {
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 1234);
    int n_cases = (int)(sizeof cases / sizeof cases[0]);
    int runs = 0, skipped_runs = 0;

    /* Every op must be exercised by at least one case: an op without shapes
     * here would have its kernels never compared. An enum slot without a
     * table entry is an op half added (fb_op_run would call NULL), so it
     * fails too. */
    int op_cases[FB_OP_COUNT] = {0};
    for (int ci = 0; ci < n_cases; ci++)
        if ((int)cases[ci].op >= 0 && (int)cases[ci].op < FB_OP_COUNT) op_cases[cases[ci].op]++;
    for (int op = 0; op < FB_OP_COUNT; op++) {
        const fb_op_def *def = fb_op_get((fb_op_id)op);
        if (!def->reference) { FB_CHECK(0, "op %d has an enum slot in ops.h but no op table entry", op); continue; }
        FB_CHECK(op_cases[op] > 0, "%s is in the op table but no case in test_ops.c exercises it", def->name);
    }
    for (int ci = 0; ci < n_cases; ci++) {
        op_case c = cases[ci];
        const fb_op_def *def = fb_op_get(c.op);
        if (!def->reference) { FB_CHECK(0, "case %d: op %d has no table entry", ci, (int)c.op); continue; }
        if (c.op == FB_OP_ATTENTION_FWD || c.op == FB_OP_ATTENTION_BWD || c.op == FB_OP_ATTENTION_DECODE) {
            /* 0 strides mean packed [B,T,H,D] */
            if (!c.d[7]) c.d[7] = c.d[3] * c.d[5];
            if (!c.d[8]) c.d[8] = c.d[4] * c.d[5];
            if (!c.d[9]) c.d[9] = c.d[3] * c.d[5];
        }
        size_t in_n[FB_OP_MAX_IN] = {0}, out_n[FB_OP_MAX_OUT] = {0};
        def->sizes(c.d, in_n, out_n);
        fb_op_args args = {0};
        memcpy(args.d, c.d, sizeof c.d);
        memcpy(args.f, c.f, sizeof c.f);
        float *ins[FB_OP_MAX_IN] = {0}, *ref[FB_OP_MAX_OUT] = {0}, *got[FB_OP_MAX_OUT] = {0}, *init[FB_OP_MAX_OUT] = {0};
        for (int i = 0; i < def->n_in; i++) {
            ins[i] = alloc_guarded(in_n[i]);
            fb_test_fill_normal(&rng, ins[i], in_n[i], 1.0f);
            args.in[i] = (c.null_inputs >> i) & 1 ? NULL : ins[i];
        }
        if (def->prepare_inputs) def->prepare_inputs(c.d, ins, 1000 + (uint64_t)ci);
        for (int o = 0; o < def->n_out; o++) {
            ref[o] = alloc_guarded(out_n[o]);
            got[o] = alloc_guarded(out_n[o]);
            init[o] = malloc(sizeof(float) * (out_n[o] + 1));
            if ((def->accumulate_mask >> o) & 1) fb_test_fill_normal(&rng, init[o], out_n[o], 1.0f);
            else for (size_t i = 0; i < out_n[o]; i++) init[o][i] = NAN;
            memcpy(ref[o], init[o], sizeof(float) * out_n[o]);
            args.out[o] = ref[o];
        }
        def->reference(&args);
        char desc[256];
        describe(&c, desc, sizeof desc);
        for (int o = 0; o < def->n_out; o++)
            FB_CHECK(guard_ok(ref[o], out_n[o]), "%s reference %s: wrote past output %d", def->name, desc, o);
        for (int v = 0; v < FB_OP_MAX_VARIANTS && def->fast[v].fn; v++) {
            const fb_kernel *k = &def->fast[v];
            if (k->isa > fb_cpu_best_isa()) { skipped_runs++; continue; }   /* reported below */
            for (int o = 0; o < def->n_out; o++) {
                memcpy(got[o], init[o], sizeof(float) * out_n[o]);
                args.out[o] = got[o];
            }
            k->fn(&args);
            runs++;
            for (int o = 0; o < def->n_out; o++) {
                double err = rel_err(got[o], ref[o], out_n[o]);
                FB_CHECK(err <= def->tolerance, "%s[%s] %s output %d: rel err %.3g > %.3g", def->name, k->variant, desc,
                         o, err, def->tolerance);
                FB_CHECK(guard_ok(got[o], out_n[o]), "%s[%s] %s: wrote past the end of output %d", def->name,
                         k->variant, desc, o);
            }
            for (int i = 0; i < def->n_in; i++)
                FB_CHECK(guard_ok(ins[i], in_n[i]), "%s[%s] %s: wrote past input %d", def->name, k->variant, desc, i);
        }
        for (int i = 0; i < def->n_in; i++) free(ins[i]);
        for (int o = 0; o < def->n_out; o++) { free(ref[o]); free(got[o]); free(init[o]); }
    }
    /* A variant's ISA alone decides whether it runs, so it is skipped on all
     * of its op's cases: one line per variant. */
    int n_variants = 0, n_skipped = 0;
    for (int op = 0; op < FB_OP_COUNT; op++) {
        const fb_op_def *def = fb_op_get((fb_op_id)op);
        if (!def->reference || !op_cases[op]) continue;
        for (int v = 0; v < FB_OP_MAX_VARIANTS && def->fast[v].fn; v++) {
            n_variants++;
            if (def->fast[v].isa <= fb_cpu_best_isa()) continue;
            char why[160];
            skip_reason(def->fast[v].isa, why, sizeof why);
            printf("skipped: %s/%s (%d cases): %s\n", def->name, def->fast[v].variant, op_cases[op], why);
            n_skipped++;
        }
    }
    printf("test_ops: %d variant runs over %d cases (best ISA: %s); skipped %d of %d variants (%d runs)\n", runs,
           n_cases, fb_isa_name(fb_cpu_best_isa()), n_skipped, n_variants, skipped_runs);
    FB_CHECK(runs > n_cases, "too few variant runs: %d", runs);
    return fb_test_finish("test_ops");
}
