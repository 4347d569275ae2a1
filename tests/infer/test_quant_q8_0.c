/* Q8_0: fp16 conversions (exhaustive round trip, against F16C where the CPU
 * has it, edge cases), GGML block layout and rounding on known values, the
 * one quantiser (core/q8_0.h, also the GGUF writer's) against a plain
 * reference of its documented rule on random and tricky blocks, and every
 * variant of FB_OP_MATMUL_Q8_0 against the reference that quantises the
 * activations the same way (to 1e-5), via the typed wrapper too. */
#include "core/half.h"
#include "core/q8_0.h"
#include "io/gguf.h"
#include "op_harness.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "ops/quant_q8_0.h"
#include "test_util.h"
#include <float.h>
#include <math.h>
#include <omp.h>
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
        const float f = fb_f16_to_f32((uint16_t)h);
        if (isnan(f)) { FB_CHECK((h & 0x7C00) == 0x7C00 && (h & 0x3FF), "NaN from non-NaN %04x", h); continue; }
        FB_CHECK(fb_f32_to_f16(f) == h, "round trip %04x -> %g -> %04x", h, (double)f, fb_f32_to_f16(f));
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
        FB_CHECK(fb_f32_to_f16(known[i].f) == known[i].h, "fp32 %.9g -> %04x, expected %04x", (double)known[i].f,
                 fb_f32_to_f16(known[i].f), known[i].h);
    FB_CHECK(isnan(fb_f16_to_f32(fb_f32_to_f16(NAN))), "NaN does not stay NaN");
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
            bad += fb_f32_to_f16(f) != f16c_from_f32(f);
        }
        FB_CHECK(bad == 0, "%d fp32 -> fp16 conversions differ from F16C", bad);
        for (uint32_t h = 0; h < 65536; h++) {
            const float a = fb_f16_to_f32((uint16_t)h), b = f16c_to_f32((uint16_t)h);
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
    FB_CHECK((q[0] | (q[1] << 8)) == fb_f32_to_f16(d), "block 0 scale bits %04x", q[0] | (q[1] << 8));
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
    FB_CHECK(y[1] == fb_f16_to_f32(fb_f32_to_f16(1.0f)) * 3.0f, "dequantize");
    /* quantize(dequantize(q)) is q again for a GGML-made block */
    uint8_t q2[34];
    fb_q8_0_quantize_row(q2, y, 32);
    FB_CHECK(memcmp(q, q2, 34) == 0, "requantising a dequantised block changed it");
    FB_CHECK(fb_q8_0_quantize(q2, y, 1, 48) == FB_ERR_SHAPE, "C %% 32 != 0 not rejected");
}

/* ---- the rule of core/q8_0.h, written out plainly ------------------------
 * amax as ggml's MAX(amax, fabsf(x)); d = amax/127 and id = d ? 1/d : 0 in
 * fp32; q = x·id (fp32 product) rounded half away from zero, done here in
 * double from the integer part (not with roundf, not with (int)(v + 0.5f));
 * NaN -> 0, saturation at ±127; d stored as fp16. */
static int8_t ref_round(float v) {
    if (isnan(v)) return 0;
    const double a = fabs((double)v), fl = floor(a);
    double r = a - fl >= 0.5 ? fl + 1.0 : fl;   /* a - fl is exact */
    if (r > 127.0) r = 127.0;
    return (int8_t)(v < 0 ? -r : r);
}

static void ref_quantize_block(const float *x, uint8_t *out) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t h = fb_f32_to_f16(d);
    out[0] = (uint8_t)(h & 0xFF);
    out[1] = (uint8_t)(h >> 8);
    for (int j = 0; j < 32; j++) {
        const float v = x[j] * id;
        out[2 + j] = (uint8_t)ref_round(v);
    }
}

/* Quantises nb blocks with the one quantiser, both entry points (the
 * engine's fb_q8_0_quantize and the GGUF writer's fb_quant_q8_0), and
 * compares every byte with the reference; returns the mismatching blocks. */
static int check_blocks(const float *x, int nb, const char *what) {
    uint8_t *got = malloc((size_t)nb * 34), *gguf = malloc((size_t)nb * 34), want[34];
    FB_CHECK(fb_q8_0_quantize(got, x, 1, (int64_t)nb * 32) == FB_OK, "%s: quantize", what);
    fb_quant_q8_0(x, gguf, (uint64_t)nb * 32);
    int bad = 0;
    for (int b = 0; b < nb; b++) {
        ref_quantize_block(x + 32 * b, want);
        const uint8_t *g = got + 34 * b;
        if (memcmp(g, want, 34) != 0) {
            if (bad++ < 4)
                for (int j = 0; j < 34; j++)
                    if (g[j] != want[j]) {
                        FB_CHECK(0, "%s: block %d byte %d: got %d, reference %d (x = %.9g, d bits %04x)", what, b, j,
                                 j < 2 ? g[j] : (int8_t)g[j], j < 2 ? want[j] : (int8_t)want[j],
                                 j < 2 ? 0.0 : (double)x[32 * b + j - 2], want[0] | (want[1] << 8));
                        break;
                    }
        }
        FB_CHECK(memcmp(g, gguf + 34 * b, 34) == 0, "%s: block %d: GGUF writer and engine quantise differently", what, b);
    }
    free(got);
    free(gguf);
    return bad;
}

static void fill_block(float *x, float v) { for (int j = 0; j < 32; j++) x[j] = v; }

static void test_quantize_rule(void) {
    /* random blocks over 78 decades of scale (finite), with ±0 sprinkled in */
    enum { NR = 4096 };
    float *x = malloc(sizeof(float) * NR * 32);
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 5);
    for (int b = 0; b < NR; b++) {
        const float scale = powf(10.0f, -42.0f + 78.0f * fb_test_rng_uniform(&rng));
        for (int j = 0; j < 32; j++) x[32 * b + j] = fb_test_rng_normal(&rng) * scale;
        if (b % 7 == 0) x[32 * b + b % 32] = (b & 8) ? -0.0f : 0.0f;
    }
    FB_CHECK(check_blocks(x, NR, "random") == 0, "random blocks differ from the reference");

    /* tricky blocks; 127 in slot 0 makes d = 1 and id = 1 exactly, so x·id = x */
    float t[32 * 16];
    int nb = 0;
    float *k;
    /* 0: exact .5 ties: half away from zero */
    k = t + 32 * nb++; fill_block(k, 0.0f);
    k[0] = 127.0f;
    const float ties[] = {0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 3.5f, -3.5f, 63.5f, -64.5f, 125.5f, -126.5f};
    for (int j = 0; j < 12; j++) k[1 + j] = ties[j];
    /* the value on which the two old quantisers disagreed: 0.49999997 =
     * 0.5 - 2^-25 (and its negative), and the neighbours of 1.5 and 0.5 */
    k[13] = 0.49999997f; k[14] = -0.49999997f; k[15] = nextafterf(1.5f, 0.0f); k[16] = nextafterf(0.5f, 1.0f);
    /* 1: all zero; 2: all -0 */
    k = t + 32 * nb++; fill_block(k, 0.0f);
    k = t + 32 * nb++; fill_block(k, -0.0f);
    /* 3: one huge value (fp16 d overflows to inf) among ordinary ones */
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = (float)(j - 16) * 0.25f; }
    k[9] = 3e38f;
    /* 4: FLT_MAX negative */
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = (float)j; }
    k[31] = -FLT_MAX;
    /* 5: negative maximum */
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = 0.1f * (float)(j % 5) - 0.2f; }
    k[20] = -5.0f;
    /* 6: denormals: d underflows to a subnormal, 1/d to inf */
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = ldexpf((float)(j - 16), -140); }
    /* 7: the smallest denormal: d = 0 */
    k = t + 32 * nb++; fill_block(k, 0.0f);
    k[3] = ldexpf(1.0f, -149); k[4] = -ldexpf(1.0f, -149);
    /* 8: normal amax 2^-120, subnormal d, finite id */
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = ldexpf((float)(j + 1), -125) * ((j & 1) ? -1.0f : 1.0f); }
    /* 9: tiny but normal d (fp16 d is 0) */
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = 1e-9f * (float)(j - 10); }
    /* 10: ±0 with a positive maximum */
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = (j & 1) ? -0.0f : 0.0f; }
    k[7] = 1.0f;
    /* 11: inf; 12: NaN in the middle; 13: NaN last (ggml's MAX keeps it) */
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = (float)j; }
    k[5] = -INFINITY;
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = (float)j; }
    k[5] = NAN;
    k = t + 32 * nb++;
    for (int j = 0; j < 32; j++) { k[j] = (float)j; }
    k[31] = NAN;
    FB_CHECK(check_blocks(t, nb, "tricky") == 0, "tricky blocks differ from the reference");

    /* the expected values, spelled out */
    uint8_t q[34 * 16];
    fb_q8_0_quantize_row(q, t, 32 * nb);
    const int want_ties[] = {1, -1, 2, -2, 3, -3, 4, -4, 64, -65, 126, -127};
    FB_CHECK(fb_load_u16le(q) == 0x3C00, "d = 1: %04x", fb_load_u16le(q));
    for (int j = 0; j < 12; j++)
        FB_CHECK((int8_t)q[3 + j] == want_ties[j], "tie %g -> %d, want %d", (double)ties[j], (int8_t)q[3 + j], want_ties[j]);
    FB_CHECK((int8_t)q[15] == 0 && (int8_t)q[16] == 0 && (int8_t)q[17] == 1 && (int8_t)q[18] == 1,
             "just below/above the tie: %d %d %d %d, want 0 0 1 1", (int8_t)q[15], (int8_t)q[16], (int8_t)q[17],
             (int8_t)q[18]);
    {   /* the trap the old writer fell into: (int)(v + 0.5f) is not roundf */
        volatile float v = 0.49999997f;
        FB_CHECK((int)(v + 0.5f) == 1 && roundf(v) == 0.0f, "0.49999997 + 0.5f should round to 1.0f in fp32");
    }
    for (int b = 1; b <= 2; b++)
        for (int j = 0; j < 34; j++) FB_CHECK(q[34 * b + j] == 0, "zero block %d byte %d = %d", b, j, q[34 * b + j]);
    FB_CHECK(fb_load_u16le(q + 34 * 3) == 0x7C00 && (int8_t)q[34 * 3 + 2 + 9] == 127 && q[34 * 3 + 2 + 8] == 0,
             "huge value: d bits %04x, q %d", fb_load_u16le(q + 34 * 3), (int8_t)q[34 * 3 + 2 + 9]);
    FB_CHECK((int8_t)q[34 * 4 + 2 + 31] == -127, "-FLT_MAX -> -127");
    FB_CHECK((int8_t)q[34 * 5 + 2 + 20] == -127 && fb_load_u16le(q + 34 * 5) == fb_f32_to_f16(5.0f / 127.0f),
             "negative maximum: q %d", (int8_t)q[34 * 5 + 2 + 20]);
    FB_CHECK((int8_t)q[34 * 6 + 2 + 0] == -127 && (int8_t)q[34 * 6 + 2 + 16] == 0 && (int8_t)q[34 * 6 + 2 + 17] == 127 &&
                 fb_load_u16le(q + 34 * 6) == 0,
             "denormal block: %d %d %d", (int8_t)q[34 * 6 + 2], (int8_t)q[34 * 6 + 18], (int8_t)q[34 * 6 + 19]);
    for (int j = 0; j < 34; j++) FB_CHECK(q[34 * 7 + j] == 0, "smallest denormal block byte %d = %d", j, q[34 * 7 + j]);
    for (int j = 0; j < 32; j++) {
        const int v = (int8_t)q[34 * 8 + 2 + j];
        FB_CHECK(v >= -127 && v <= 127 && ((j & 1) ? v < 0 : v > 0), "subnormal d: q[%d] = %d", j, v);
    }
    FB_CHECK((int8_t)q[34 * 10 + 2 + 7] == 127 && fb_load_u16le(q + 34 * 10) == fb_f32_to_f16(1.0f / 127.0f),
             "±0 block");
    free(x);
}

static void test_matmul_strict(void) {
    const fb_op_def *def = fb_op_get(FB_OP_MATMUL_Q8_0);
    FB_CHECK(def && def->reference.fn, "FB_OP_MATMUL_Q8_0 has no table entry");
    if (!def || !def->reference.fn) return;
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
            FB_CHECK(fb_matmul_q8_0_ref_qx(ref, wq, x, bias, N, C, OC) == FB_OK, "ref_qx: %s", fb_last_error());
            for (const fb_kernel *k = def->variants; k->fn; k++) {
                if (!fb_kernel_runnable(k)) continue;
                fb_op_args a = {.in = {fb_src_f32(x, N, C, C), fb_src_q8_0(wq, OC, C, C), fb_src_f32(bias, 1, OC, OC)},
                                .out = {fb_dst_f32(got, N, OC, OC)}, .d = {N, C, OC}};
                for (int64_t i = 0; i < N * OC; i++) got[i] = NAN;
                FB_CHECK(fb_test_run_kernel(k, &a, omp_get_max_threads()) == FB_OK, "matmul_q8_0[%s]: %s", k->name,
                         fb_last_error());
                const double err = fb_test_max_rel_err(got, ref, (size_t)(N * OC), 1e-6);
                FB_CHECK(err <= 1e-5, "matmul_q8_0[%s] N=%lld C=%lld OC=%lld bias=%d: rel err %.3g vs quantised-x ref",
                         k->name, (long long)N, (long long)C, (long long)OC, withb, err);
                runs++;
            }
            for (int64_t i = 0; i < N * OC; i++) got[i] = NAN;
            fb_workspace ws = {0};
            fb_op_args dims = {.d = {N, C, OC}};
            FB_CHECK(fb_workspace_reserve(&ws, fb_op_workspace(FB_OP_MATMUL_Q8_0, &dims, fb_get_threads())) == FB_OK &&
                         fb_matmul_q8_0_forward(&ws, got, wq, x, bias, N, C, OC) == FB_OK,
                     "typed wrapper: %s", fb_last_error());
            fb_workspace_free(&ws);
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
    test_quantize_rule();
    test_matmul_strict();
    return fb_test_finish("test_quant_q8_0");
}
