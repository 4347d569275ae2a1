/*
 * A small vector layer so each kernel is written once and compiled three
 * times (see CMakeLists.txt: *.simd.c files). FB_ISA_SUFFIX names the build
 * (generic, avx2, avx512) and FB_SIMD(name) appends it to a symbol.
 *
 *   fvec            one vector of FV_N floats
 *   fv_loadn/storen first n (< FV_N) lanes only: tails without overruns
 *   fv_exp2         2^x, relative error < 2e-7, exactly 0 for x < -126
 *
 * The generic build uses one float per "vector": slow but obviously right,
 * and tested against the same references as the SIMD builds.
 */
#ifndef FB_CORE_SIMD_H
#define FB_CORE_SIMD_H

#include <math.h>
#include <stdint.h>

#ifndef FB_ISA_SUFFIX
#error "simd.h is only for *.simd.c files (compiled once per ISA)"
#endif
#define FB_SIMD_CAT2(a, b) a##_##b
#define FB_SIMD_CAT(a, b) FB_SIMD_CAT2(a, b)
#define FB_SIMD(name) FB_SIMD_CAT(name, FB_ISA_SUFFIX)

#if defined(__AVX512F__)
#include <immintrin.h>
typedef __m512 fvec;
#define FV_N 16
static inline fvec fv_zero(void) { return _mm512_setzero_ps(); }
static inline fvec fv_set1(float x) { return _mm512_set1_ps(x); }
static inline fvec fv_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void fv_store(float *p, fvec v) { _mm512_storeu_ps(p, v); }
static inline fvec fv_loadn(const float *p, int n) { return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p); }
static inline void fv_storen(float *p, fvec v, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v); }
static inline fvec fv_add(fvec a, fvec b) { return _mm512_add_ps(a, b); }
static inline fvec fv_sub(fvec a, fvec b) { return _mm512_sub_ps(a, b); }
static inline fvec fv_mul(fvec a, fvec b) { return _mm512_mul_ps(a, b); }
static inline fvec fv_div(fvec a, fvec b) { return _mm512_div_ps(a, b); }
static inline fvec fv_sqrt(fvec a) { return _mm512_sqrt_ps(a); }
static inline fvec fv_fma(fvec a, fvec b, fvec c) { return _mm512_fmadd_ps(a, b, c); }
static inline fvec fv_max(fvec a, fvec b) { return _mm512_max_ps(a, b); }
static inline fvec fv_min(fvec a, fvec b) { return _mm512_min_ps(a, b); }
static inline float fv_hsum(fvec v) { return _mm512_reduce_add_ps(v); }
static inline float fv_hmax(fvec v) { return _mm512_reduce_max_ps(v); }
static inline fvec fv_round(fvec x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline fvec fv_pow2i(fvec n) { /* 2^n for integral n in [-126, 127] */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
static inline fvec fv_zero_below(fvec v, fvec x, float lo) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(lo), _CMP_GE_OQ), v);
}
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
typedef __m256 fvec;
#define FV_N 8
static inline __m256i fv_mask_(int n) {
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}
static inline fvec fv_zero(void) { return _mm256_setzero_ps(); }
static inline fvec fv_set1(float x) { return _mm256_set1_ps(x); }
static inline fvec fv_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void fv_store(float *p, fvec v) { _mm256_storeu_ps(p, v); }
static inline fvec fv_loadn(const float *p, int n) { return _mm256_maskload_ps(p, fv_mask_(n)); }
static inline void fv_storen(float *p, fvec v, int n) { _mm256_maskstore_ps(p, fv_mask_(n), v); }
static inline fvec fv_add(fvec a, fvec b) { return _mm256_add_ps(a, b); }
static inline fvec fv_sub(fvec a, fvec b) { return _mm256_sub_ps(a, b); }
static inline fvec fv_mul(fvec a, fvec b) { return _mm256_mul_ps(a, b); }
static inline fvec fv_div(fvec a, fvec b) { return _mm256_div_ps(a, b); }
static inline fvec fv_sqrt(fvec a) { return _mm256_sqrt_ps(a); }
static inline fvec fv_fma(fvec a, fvec b, fvec c) { return _mm256_fmadd_ps(a, b, c); }
static inline fvec fv_max(fvec a, fvec b) { return _mm256_max_ps(a, b); }
static inline fvec fv_min(fvec a, fvec b) { return _mm256_min_ps(a, b); }
static inline float fv_hsum(fvec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float fv_hmax(fvec v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline fvec fv_round(fvec x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline fvec fv_pow2i(fvec n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
static inline fvec fv_zero_below(fvec v, fvec x, float lo) {
    return _mm256_and_ps(v, _mm256_cmp_ps(x, _mm256_set1_ps(lo), _CMP_GE_OQ));
}
#else
typedef float fvec;
#define FV_N 1
static inline fvec fv_zero(void) { return 0.0f; }
static inline fvec fv_set1(float x) { return x; }
static inline fvec fv_load(const float *p) { return *p; }
static inline void fv_store(float *p, fvec v) { *p = v; }
static inline fvec fv_loadn(const float *p, int n) { return n > 0 ? *p : 0.0f; }
static inline void fv_storen(float *p, fvec v, int n) { if (n > 0) *p = v; }
static inline fvec fv_add(fvec a, fvec b) { return a + b; }
static inline fvec fv_sub(fvec a, fvec b) { return a - b; }
static inline fvec fv_mul(fvec a, fvec b) { return a * b; }
static inline fvec fv_div(fvec a, fvec b) { return a / b; }
static inline fvec fv_sqrt(fvec a) { return sqrtf(a); }
static inline fvec fv_fma(fvec a, fvec b, fvec c) { return fmaf(a, b, c); }
static inline fvec fv_max(fvec a, fvec b) { return a > b ? a : b; }
static inline fvec fv_min(fvec a, fvec b) { return a < b ? a : b; }
static inline float fv_hsum(fvec v) { return v; }
static inline float fv_hmax(fvec v) { return v; }
static inline fvec fv_round(fvec x) { return nearbyintf(x); }
static inline fvec fv_pow2i(fvec n) { return ldexpf(1.0f, (int)n); }
static inline fvec fv_zero_below(fvec v, fvec x, float lo) { return x >= lo ? v : 0.0f; }
#endif

/* Hint that p will be read soon (streaming weights in GEMV). */
#if defined(__GNUC__)
#define fv_prefetch(p) __builtin_prefetch((p), 0, 0)
#else
#define fv_prefetch(p) ((void)(p))
#endif

/* 2^x: split x = n + f with |f| <= 0.5, 2^f by a degree-6 polynomial
 * (Cephes exp2f coefficients), 2^n through the exponent bits. */
static inline fvec fv_exp2(fvec x) {
    fvec xc = fv_min(fv_max(x, fv_set1(-126.0f)), fv_set1(126.0f));
    fvec n = fv_round(xc);
    fvec f = fv_sub(xc, n);
    fvec p = fv_set1(1.535336188319500e-4f);
    p = fv_fma(p, f, fv_set1(1.339887440266574e-3f));
    p = fv_fma(p, f, fv_set1(9.618437357674640e-3f));
    p = fv_fma(p, f, fv_set1(5.550332471162809e-2f));
    p = fv_fma(p, f, fv_set1(2.402264791363012e-1f));
    p = fv_fma(p, f, fv_set1(6.931472028550421e-1f));
    p = fv_fma(p, f, fv_set1(1.0f));
    return fv_zero_below(fv_mul(p, fv_pow2i(n)), x, -126.0f);
}
static inline fvec fv_exp(fvec x) { return fv_exp2(fv_mul(x, fv_set1(1.44269504088896341f))); }
/* tanh(x) = 1 - 2 / (e^{2x} + 1); saturates cleanly at +-1. */
static inline fvec fv_tanh(fvec x) {
    fvec e = fv_exp(fv_mul(fv_set1(2.0f), fv_min(x, fv_set1(40.0f))));
    return fv_sub(fv_set1(1.0f), fv_div(fv_set1(2.0f), fv_add(e, fv_set1(1.0f))));
}
#endif
