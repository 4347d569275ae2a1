/*
 * y[N,OC] = x[N,C] · dequant(Wq)ᵀ + b with Q8_0 weights (FB_OP_MATMUL_Q8_0),
 * the way llama.cpp runs it: each activation row is quantised on the fly to
 * int8 blocks of 32 with a per-block fp32 scale (fb_q8_0_quantize_act,
 * reproduced bit for bit here), then every output is
 *     Σ_blocks d_w·d_x·(Σ_32 q_w·q_x)
 * with exact int8·int8 → int32 block sums:
 *   AVX-512 VNNI: vpdpbusd on two blocks per 512-bit register;
 *   AVX-512BW / AVX2: vpmaddubsw + vpmaddwd;
 *   generic: scalar integer loops.
 * The unsigned×signed instructions get |q_w| (as u8: -128 -> 128 is right)
 * and q_x with the sign of q_w (q_x is in [-127, 127], so negating it is
 * safe); the int16 pair sums of maddubs stay below 2·128·127 < 32767.
 * Output rows (OC) are split across OpenMP threads (static schedule).
 */
#include "core/simd.h"
#include "ops/ops.h"
#include "ops/quant_q8_0.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

typedef float (*q8_dot_fn)(const uint8_t *w, const int8_t *qx, const float *dx, int64_t nb);

static inline float wscale(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, 2);
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return fb_f16_to_f32(h);
#endif
}

#if defined(__AVX512F__)
/* Same results as fb_q8_0_quantize_act (max, division, rounding to nearest
 * even by vcvtps2dq under the default MXCSR). */
static void quantize_act(int8_t *q, float *d, const float *x, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        const __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float db = amax / 127.0f;
        const float id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        const __m512 vid = _mm512_set1_ps(id);
        const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
        const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        _mm_storeu_si128((__m128i *)(q + 32 * b), _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(q + 32 * b + 16), _mm512_cvtsepi32_epi8(q1));
    }
}
#elif defined(__AVX2__)
static void quantize_act(int8_t *q, float *d, const float *x, int64_t n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < n / 32; b++) {
        __m256 v[4];
        __m256 mx = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 32 * b + 8 * k);
            mx = _mm256_max_ps(mx, _mm256_and_ps(v[k], absmask));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float db = amax / 127.0f;
        const float id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[0], vid));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[1], vid));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v[2], vid));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v[3], vid));
        i0 = _mm256_packs_epi32(i0, i1);   /* per 128-bit lane: 0..3 4..7 | ... */
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_packs_epi16(i0, i2);
        i0 = _mm256_permutevar8x32_epi32(i0, perm);
        _mm256_storeu_si256((__m256i *)(q + 32 * b), i0);
    }
}
#else
static void quantize_act(int8_t *q, float *d, const float *x, int64_t n) { fb_q8_0_quantize_act(q, d, x, n); }
#endif

#if defined(__AVX2__)
/* One block: 8 int32 partial sums of q_w·q_x. */
static inline __m256i block_dot_avx2(const uint8_t *blk, const int8_t *qx) {
    const __m256i w = _mm256_loadu_si256((const __m256i *)(blk + 2));
    const __m256i xq = _mm256_loadu_si256((const __m256i *)qx);
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xq, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}
#endif

#if defined(__AVX512F__)
static inline __m512i load2(const uint8_t *blk) {   /* blocks k and k+1 (34 bytes apart) */
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + 2))),
                              _mm256_loadu_si256((const __m256i *)(blk + 2 + FB_Q8_0_BLOCK_BYTES)), 1);
}
static inline __m512 scale2(const uint8_t *blk, const float *dx) {
    return _mm512_insertf32x8(_mm512_set1_ps(wscale(blk) * dx[0]),
                              _mm256_set1_ps(wscale(blk + FB_Q8_0_BLOCK_BYTES) * dx[1]), 1);
}
static float dot_row(const uint8_t *w, const int8_t *qx, const float *dx, int64_t nb) {
    __m512 acc = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi16(1);
    int64_t k = 0;
    for (; k + 1 < nb; k += 2) {
        const uint8_t *blk = w + k * FB_Q8_0_BLOCK_BYTES;
        const __m512i wq = load2(blk);
        const __m512i xq = _mm512_loadu_si512((const void *)(qx + 32 * k));
        const __m512i sx = _mm512_mask_sub_epi8(xq, _mm512_movepi8_mask(wq), _mm512_setzero_si512(), xq);
        const __m512i p32 = _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(wq), sx), ones);
        acc = _mm512_fmadd_ps(scale2(blk, dx + k), _mm512_cvtepi32_ps(p32), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (k < nb) {
        const uint8_t *blk = w + k * FB_Q8_0_BLOCK_BYTES;
        const __m256 p = _mm256_mul_ps(_mm256_set1_ps(wscale(blk) * dx[k]),
                                       _mm256_cvtepi32_ps(block_dot_avx2(blk, qx + 32 * k)));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        s += _mm_cvtss_f32(h);
    }
    return s;
}

__attribute__((target("avx512vnni"))) static float dot_row_vnni(const uint8_t *w, const int8_t *qx, const float *dx,
                                                                int64_t nb) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 3 < nb; k += 4) {
        const uint8_t *blk = w + k * FB_Q8_0_BLOCK_BYTES;
        const __m512i wa = load2(blk), wb = load2(blk + 2 * FB_Q8_0_BLOCK_BYTES);
        const __m512i xa = _mm512_loadu_si512((const void *)(qx + 32 * k));
        const __m512i xb = _mm512_loadu_si512((const void *)(qx + 32 * k + 64));
        const __m512i sa = _mm512_mask_sub_epi8(xa, _mm512_movepi8_mask(wa), _mm512_setzero_si512(), xa);
        const __m512i sb = _mm512_mask_sub_epi8(xb, _mm512_movepi8_mask(wb), _mm512_setzero_si512(), xb);
        const __m512i pa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wa), sa);
        const __m512i pb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wb), sb);
        acc0 = _mm512_fmadd_ps(scale2(blk, dx + k), _mm512_cvtepi32_ps(pa), acc0);
        acc1 = _mm512_fmadd_ps(scale2(blk + 2 * FB_Q8_0_BLOCK_BYTES, dx + k + 2), _mm512_cvtepi32_ps(pb), acc1);
    }
    for (; k + 1 < nb; k += 2) {
        const uint8_t *blk = w + k * FB_Q8_0_BLOCK_BYTES;
        const __m512i wa = load2(blk);
        const __m512i xa = _mm512_loadu_si512((const void *)(qx + 32 * k));
        const __m512i sa = _mm512_mask_sub_epi8(xa, _mm512_movepi8_mask(wa), _mm512_setzero_si512(), xa);
        const __m512i pa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wa), sa);
        acc0 = _mm512_fmadd_ps(scale2(blk, dx + k), _mm512_cvtepi32_ps(pa), acc0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    if (k < nb) {
        const uint8_t *blk = w + k * FB_Q8_0_BLOCK_BYTES;
        const __m256 p = _mm256_mul_ps(_mm256_set1_ps(wscale(blk) * dx[k]),
                                       _mm256_cvtepi32_ps(block_dot_avx2(blk, qx + 32 * k)));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        s += _mm_cvtss_f32(h);
    }
    return s;
}

#elif defined(__AVX2__)
static float dot_row(const uint8_t *w, const int8_t *qx, const float *dx, int64_t nb) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 1 < nb; k += 2) {
        const uint8_t *blk = w + k * FB_Q8_0_BLOCK_BYTES;
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(wscale(blk) * dx[k]),
                               _mm256_cvtepi32_ps(block_dot_avx2(blk, qx + 32 * k)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(wscale(blk + FB_Q8_0_BLOCK_BYTES) * dx[k + 1]),
                               _mm256_cvtepi32_ps(block_dot_avx2(blk + FB_Q8_0_BLOCK_BYTES, qx + 32 * k + 32)), acc1);
    }
    if (k < nb) {
        const uint8_t *blk = w + k * FB_Q8_0_BLOCK_BYTES;
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(wscale(blk) * dx[k]),
                               _mm256_cvtepi32_ps(block_dot_avx2(blk, qx + 32 * k)), acc0);
    }
    const __m256 p = _mm256_add_ps(acc0, acc1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
#else
static float dot_row(const uint8_t *w, const int8_t *qx, const float *dx, int64_t nb) {
    float s = 0.0f;
    for (int64_t k = 0; k < nb; k++) {
        const uint8_t *blk = w + k * FB_Q8_0_BLOCK_BYTES;
        int32_t acc = 0;
        for (int j = 0; j < 32; j++) acc += (int32_t)(int8_t)blk[2 + j] * qx[32 * k + j];
        s += wscale(blk) * dx[k] * (float)acc;
    }
    return s;
}
#endif

static fb_status q8_0_forward(const fb_op_args *a, q8_dot_fn dot, const char *name) {
    const float *x = fb_in_f32(a, 0), *bias = fb_in_f32(a, 2);
    const uint8_t *W = fb_in_q8_0(a, 1);
    float *y = fb_out_f32(a, 0);
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    const int64_t nb = C / FB_Q8_0_BLOCK;
    const size_t rb = fb_q8_0_row_bytes(C);
    if (N <= 0 || OC <= 0) return FB_OK;
    /* x quantised: N·C int8 (64-byte aligned rows not needed: unaligned loads) and N·nb scales */
    FB_TRY(fb_ws_check(a, matmul_q8_0_ws(a, 1), name));
    int8_t *qx = a->ws.data;
    float *dx = (float *)((char *)a->ws.data + fb_ws_round((size_t)(N * C) + 64));
    const int par = OC * C >= 16384;
    #pragma omp parallel if (par)
    {
        #pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) quantize_act(qx + n * C, dx + n * nb, x + n * C, C);
        #pragma omp for schedule(static)
        for (int64_t o = 0; o < OC; o++) {
            const uint8_t *wr = W + (size_t)o * rb;
            const float bo = bias ? bias[o] : 0.0f;
            for (int64_t n = 0; n < N; n++) y[n * OC + o] = dot(wr, qx + n * C, dx + n * nb, nb) + bo;
        }
    }
    return FB_OK;
}

fb_status FB_SIMD(matmul_q8_0_forward)(const fb_op_args *a) { return q8_0_forward(a, dot_row, "matmul_q8_0"); }

#if defined(__AVX512F__)
/* The "avx512_vnni" variant: the op table runs it only where AVX512_VNNI is
 * usable (core/cpu.h), so it has no CPUID check of its own. */
fb_status FB_SIMD(matmul_q8_0_forward_vnni)(const fb_op_args *a) {
    return q8_0_forward(a, dot_row_vnni, "matmul_q8_0[avx512_vnni]");
}
#endif
