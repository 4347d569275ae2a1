/* Q8_0: fp16 conversions (exhaustive round trip, against F16C where the CPU
 * has it, edge cases), GGML block layout and rounding on known values, and
 * every variant of FB_OP_MATMUL_Q8_0 against the reference that quantises
 * the activations the same way (to 1e-5), via the typed wrapper too. */
#include "ops/kernels.h"
#include "ops/ops.h"
#include "ops/quant_q8_0.h"
#include "test_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1);
}
__attribute__((target("f16c"))) static uint16_t f16c_from_f32(float f) {
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
__attribute__((target("f16c"))) static float f16c_to_f32(uint16_t h) { return _cvtsh_ss(h); }
#endif

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void test_fp16(void) {
    /* fp16 -> fp32 -> fp16 is the identity for every non-NaN pattern */
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = fb_fp16_to_fp32((uint16_t)h);
        if (isnan(f)) { FB_CHECK((h & 0x7C00) == 0x7C00 && (h & 0x3FF), "NaN from non-NaN %04x", h); continue; }
        FB_CHECK(fb_fp32_to_fp16(f) == h, "round trip %04x -> %g -> %04x", h, (double)f, fb_fp32_to_fp16(f));
    }
    struct { float f; uint16_t h; } known[] = {
        {0.0f, 0x0000}, {-0.0f, 0x8000}, {1.0f, 0x3C00}, {-2.0f, 0xC000}, {65504.0f, 0x7BFF},
        {65519.99f, 0x7BFF}, {65520.0f, 0x7C00}, {1e9f, 0x7C00}, {INFINITY, 0x7C00}, {-INFINITY, 0xFC00},
        {5.9604645e-8f, 0x0001},               /* 2^-24, smallest subnormal */
        {2.9802322e-8f, 0x0000},               /* 2^-25: tie -> even (0) */
        {4.4703484e-8f, 0x0001},               /* 1.5·2^-25: rounds up to 2^-24 */
        {8.9406967e-8f, 0x0002},               /* 1.5·2^-24: tie between 1 and 2 -> 2 */
        {6.1035156e-5f, 0x0400},               /* 2^-14, smallest normal */
        {1.00048828125f, 0x3C00},              /* 1 + 2^-11: tie -> even (1.0) */
        {1.00146484375f, 0x3C02},              /* 1 + 3·2^-11: tie -> even (1 + 2^-9) */
        {0.1f, 0x2E66},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        FB_CHECK(fb_fp32_to_fp16(known[i].f) == known[i].h, "fp32 %.9g -> %04x, expected %04x", (double)known[i].f,
                 fb_fp32_to_fp16(known[i].f), known[i].h);
    FB_CHECK(isnan(fb_fp16_to_fp32(fb_fp32_to_fp16(NAN))), "NaN does not stay NaN");
#if defined(__x86_64__)
    if (cpu_has_f16c()) {
        fb_test_rng rng;
        fb_test_rng_seed(&rng, 1);
        int bad = 0;
        for (int i = 0; i < 4000000; i++) {
            /* random bit patterns, biased towards the fp16 range */
            uint32_t u = (uint32_t)fb_test_rng_u64(&rng);
            if (i & 1) u = (u & 0x80FFFFFFu) | ((uint32_t)(100 + (u >> 24) % 50) << 23);
            const float f = from_bits(u);
            if (isnan(f)) continue;
            bad += fb_fp32_to_fp16(f) != f16c_from_f32(f);
        }
        FB_CHECK(bad == 0, "%d fp32 -> fp16 conversions differ from F16C", bad);
        for (uint32_t h = 0; h < 65536; h++) {
            const float a = fb_fp16_to_fp32((uint16_t)h), b = f16c_to_f32((uint16_t)h);
            if (isnan(b)) continue;
            FB_CHECK(bits(a) == bits(b), "fp16 %04x -> %g, F16C %g", h, (double)a, (double)b);
        }
    }
#endif
}

static void test_quantize_known(void) {
    float x[64];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * 0.5f;   /* amax 8 at j = 0 */
    for (int j = 32; j < 64; j++) x[j] = 0.0f;                  /* zero block: d = 0, q = 0 */
    x[40] = 0.0f;
    uint8_t q[68];
    fb_q8_0_quantize_row(q, x, 64);
    const float d = 8.0f / 127.0f;
    FB_CHECK((q[0] | (q[1] << 8)) == fb_fp32_to_fp16(d), "block 0 scale bits %04x", q[0] | (q[1] << 8));
    for (int j = 0; j < 32; j++) {
        const int want = (int)roundf(x[j] * (1.0f / d));
        FB_CHECK((int8_t)q[2 + j] == want, "block 0 q[%d] = %d, want %d", j, (int8_t)q[2 + j], want);
    }
    FB_CHECK((int8_t)q[2] == -127, "q[0] = %d, want -127", (int8_t)q[2]);
    FB_CHECK(q[34] == 0 && q[35] == 0, "zero block: scale not 0");
    for (int j = 0; j < 32; j++) FB_CHECK(q[36 + j] == 0, "zero block q[%d] != 0", j);
    /* round half away from zero (roundf), as ggml: x·id = ±2.5 exactly */
    float h[32] = {0};
    h[0] = 127.0f; h[1] = 2.5f; h[2] = -2.5f; h[3] = 0.5f;
    fb_q8_0_quantize_row(q, h, 32);
    FB_CHECK((int8_t)q[2] == 127 && (int8_t)q[3] == 3 && (int8_t)q[4] == -3 && (int8_t)q[5] == 1,
             "roundf half away from zero: %d %d %d %d", (int8_t)q[2], (int8_t)q[3], (int8_t)q[4], (int8_t)q[5]);
    /* dequantize = d16·q */
    float y[32];
    fb_q8_0_dequantize_row(y, q, 32);
    FB_CHECK(y[1] == fb_fp16_to_fp32(fb_fp32_to_fp16(1.0f)) * 3.0f, "dequantize");
    /* quantize(dequantize(q)) is q again for a GGML-made block */
    uint8_t q2[34];
    fb_q8_0_quantize_row(q2, y, 32);
    FB_CHECK(memcmp(q, q2, 34) == 0, "requantising a dequantised block changed it");
    FB_CHECK(fb_q8_0_quantize(q2, y, 1, 48) == FB_ERR_SHAPE, "C %% 32 != 0 not rejected");
}

static void test_matmul_strict(void) {
    const fb_op_def *def = fb_op_get(FB_OP_MATMUL_Q8_0);
    FB_CHECK(def && def->reference, "FB_OP_MATMUL_Q8_0 has no table entry");
    if (!def || !def->reference) return;
    const int64_t shapes[][3] = {{1, 32, 1}, {3, 32, 7}, {1, 64, 768}, {3, 288, 7}, {1, 768, 768}, {3, 768, 5},
                                 {1, 2048, 768}, {3, 2048, 7}, {2, 96, 33}, {1, 768, 2304}};
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 21);
    int runs = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t N = shapes[si][0], C = shapes[si][1], OC = shapes[si][2];
        float *x = malloc(sizeof(float) * (size_t)(N * C)), *wf = malloc(sizeof(float) * (size_t)(OC * C));
        float *b = malloc(sizeof(float) * (size_t)OC), *ref = malloc(sizeof(float) * (size_t)(N * OC));
        float *got = malloc(sizeof(float) * (size_t)(N * OC));
        uint8_t *wq = malloc(fb_q8_0_row_bytes(C) * (size_t)OC);
        fb_test_fill_normal(&rng, x, (size_t)(N * C), 1.0f);
        fb_test_fill_normal(&rng, wf, (size_t)(OC * C), 0.05f);
        fb_test_fill_normal(&rng, b, (size_t)OC, 0.1f);
        for (int j = 0; j < 32 && j < C; j++) x[j] = 0.0f;                   /* a zero activation block */
        if (N * C >= 64) for (int j = 32; j < 64; j++) x[j] *= 1000.0f;     /* a large one */
        FB_CHECK(fb_q8_0_quantize(wq, wf, OC, C) == FB_OK, "quantize");
        for (int withb = 0; withb < 2; withb++) {
            const float *bias = withb ? b : NULL;
            fb_matmul_q8_0_ref_qx(ref, wq, x, bias, N, C, OC);
            fb_op_args a = {.in = {x, (const float *)wq, bias}, .out = {got}, .d = {N, C, OC}};
            for (int v = 0; v < FB_OP_MAX_VARIANTS && def->fast[v].fn; v++) {
                if (def->fast[v].isa > fb_cpu_best_isa()) continue;
                for (int64_t i = 0; i < N * OC; i++) got[i] = NAN;
                def->fast[v].fn(&a);
                const double err = fb_test_max_rel_err(got, ref, (size_t)(N * OC), 1e-6);
                FB_CHECK(err <= 1e-5, "matmul_q8_0[%s] N=%lld C=%lld OC=%lld bias=%d: rel err %.3g vs quantised-x ref",
                         def->fast[v].variant, (long long)N, (long long)C, (long long)OC, withb, err);
                runs++;
            }
            for (int64_t i = 0; i < N * OC; i++) got[i] = NAN;
            fb_matmul_q8_0_forward(got, wq, x, bias, N, C, OC);
            FB_CHECK(fb_test_max_rel_err(got, ref, (size_t)(N * OC), 1e-6) <= 1e-5, "typed wrapper");
        }
        free(x); free(wf); free(b); free(ref); free(got); free(wq);
    }
    printf("test_quant_q8_0: %d strict variant runs (best ISA %s, selected %s)\n", runs,
           fb_isa_name(fb_cpu_best_isa()), fb_op_selected_variant(FB_OP_MATMUL_Q8_0));
}

int main(void) {
    test_fp16();
    test_quantize_known();
    test_matmul_strict();
    return fb_test_finish("test_quant_q8_0");
}
