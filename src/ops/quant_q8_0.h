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
#include "io/halfconv.h"

#define FB_Q8_0_BLOCK 32
#define FB_Q8_0_BLOCK_BYTES 34

/* Bytes of a [rows, C] Q8_0 matrix (C % 32 == 0). */
static inline size_t fb_q8_0_row_bytes(int64_t C) { return (size_t)(C / FB_Q8_0_BLOCK) * FB_Q8_0_BLOCK_BYTES; }

/* IEEE binary16 <-> binary32 (one implementation for the whole project, in
 * io/halfconv.h): fp32->fp16 rounds to nearest even, overflows to ±inf,
 * keeps NaN a NaN, produces subnormals; fp16->fp32 is exact. */
static inline float fb_fp16_to_fp32(uint16_t h) { return fb_io_f16_to_f32(h); }
static inline uint16_t fb_fp32_to_fp16(float f) { return fb_io_f32_to_f16(f); }

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
