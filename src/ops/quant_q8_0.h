/*
 * Q8_0 weights, bit-compatible with GGML's block_q8_0:
 *   blocks of 32 values, each stored as {uint16 d (IEEE fp16), int8 q[32]}
 *   (34 bytes, little endian, no padding); value = d·q.
 * Quantisation exactly as ggml's quantize_row_q8_0_ref:
 *   amax = max|x|, d = amax/127, id = d ? 1/d : 0, q = roundf(x·id)
 *   (half away from zero), d stored as fp16 (round to nearest even).
 * A row of C values (C % 32 == 0) is C/32 blocks; row r of a matrix starts
 * at byte r·(C/32)·34.
 *
 * Activations for the int8 matmul are quantised per 32-block on the fly
 * (fb_q8_0_quantize_act): same d = amax/127, id = 1/d, but rounding to
 * nearest even (what the SIMD convert instructions do) and d kept in fp32.
 */
#ifndef FB_OPS_QUANT_Q8_0_H
#define FB_OPS_QUANT_Q8_0_H
#include "flashblock.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FB_Q8_0_BLOCK 32
#define FB_Q8_0_BLOCK_BYTES 34

/* Bytes of a [rows, C] Q8_0 matrix (C % 32 == 0). */
static inline size_t fb_q8_0_row_bytes(int64_t C) { return (size_t)(C / FB_Q8_0_BLOCK) * FB_Q8_0_BLOCK_BYTES; }

/* IEEE binary16 <-> binary32. fp32->fp16 rounds to nearest even, overflows
 * to ±inf, keeps NaN a (quiet) NaN, produces subnormals. Exact inverse for
 * fp16->fp32. */
static inline float fb_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);              /* inf / NaN */
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);      /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        bits = sign;                                           /* ±0 */
    } else {                                                   /* subnormal: normalise */
        uint32_t e = 113, m = man;
        while (!(m & 0x400u)) { m <<= 1; e--; }
        bits = sign | (e << 23) | ((m & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t fb_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) /* inf or NaN */
        return (uint16_t)(sign | 0x7C00u | (ax > 0x7F800000u ? (0x200u | ((ax >> 13) & 0x3FFu)) : 0u));
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);   /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                                      /* below 2^-14: subnormal or 0 */
        if (ax < 0x33000000u) return sign;                       /* < 2^-25: rounds to 0 (tie at 2^-25 -> 0, even) */
        const uint32_t e = ax >> 23, m = (ax & 0x7FFFFFu) | 0x800000u;
        const uint32_t shift = 126u - e;                         /* value = m·2^(e-150); unit 2^-24 */
        uint32_t r = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    /* normal: drop 13 mantissa bits with round to nearest even */
    uint32_t r = ax - 0x38000000u;                               /* rebias 127 -> 15 (exponent field) */
    const uint32_t rem = r & 0x1FFFu;
    r >>= 13;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;      /* carry may bump the exponent: correct */
    return (uint16_t)(sign | r);
}

/* Quantise n values (n % 32 == 0) into n/32 blocks at dst (GGML layout). */
void fb_q8_0_quantize_row(void *dst, const float *x, int64_t n);
/* Quantise a [rows, C] matrix; dst holds rows·fb_q8_0_row_bytes(C) bytes. */
fb_status fb_q8_0_quantize(void *dst, const float *x, int64_t rows, int64_t C);
/* Dequantise n values (n % 32 == 0) of a Q8_0 row. */
void fb_q8_0_dequantize_row(float *y, const void *src, int64_t n);

/* Activation quantisation for the int8 matmul: per 32-block scale d[b]
 * (fp32) and q[n] (int8), round to nearest even. Every SIMD variant
 * reproduces this bit for bit. */
void fb_q8_0_quantize_act(int8_t *q, float *d, const float *x, int64_t n);

/* The matmul as the fast kernels compute it, in double: x quantised with
 * fb_q8_0_quantize_act, Σ_blocks d_w·d_x·Σ q_w·q_x (tests: strict check). */
void fb_matmul_q8_0_ref_qx(float *y, const void *Wq, const float *x, const float *b, int64_t N, int64_t C,
                           int64_t OC);
#endif
