/*
 * GGML Q8_0, the one Q8_0 quantiser of the project: the GGUF writer
 * (io/gguf.c, `flashblock convert`/`quantize`) and the inference kernels
 * (`--q8`, ops/quant_q8_0.h) both call it, so a GGUF file we write holds the
 * same bytes the engine computes with.
 *
 * Layout, bit-compatible with ggml's block_q8_0: blocks of 32 values, each
 * {uint16 d (IEEE fp16, little endian), int8 q[32]} (34 bytes, no padding);
 * value = d·q. A row of C values (C % 32 == 0) is C/32 blocks; row r of a
 * matrix starts at byte r·(C/32)·34.
 *
 * Rounding rule (exactly ggml's quantize_row_q8_0_ref, and gguf-py's
 * quantize_q8_0, so our files are byte-identical to llama.cpp's), all in fp32:
 *   amax = max|x| over the block, as ggml's MAX(amax, fabsf(x)),
 *   d    = amax / 127,            stored as fp16 (round to nearest even),
 *   id   = d != 0 ? 1/d : 0,
 *   q    = roundf(x·id)           (round half AWAY from zero: ±2.5 -> ±3).
 * Half away from zero rather than to even: that is what ggml writes. Note
 * that roundf is not (int)(v + 0.5f): for v = 0.49999997 (0.5 - 2^-25) the
 * sum rounds up to 1.0f, roundf gives 0.
 * Where ggml's reference is undefined (its float -> int8 conversion
 * overflows), ours is defined: q saturates at ±127 and a NaN x·id gives 0.
 * That happens only when d is subnormal in fp32 (amax < ~1.5e-36, fp16 d is
 * then 0 anyway) or amax is inf/NaN; for every other block |x·id| <= 127
 * plus a few ulps and the clamp never acts. q = -128 is never produced (the
 * format allows it; the kernels handle it).
 */
#ifndef FB_CORE_Q8_0_H
#define FB_CORE_Q8_0_H
#include "flashblock.h"
#include <stddef.h>
#include <stdint.h>

#define FB_Q8_0_BLOCK 32
#define FB_Q8_0_BLOCK_BYTES 34

/* Bytes of one row of C values (C % 32 == 0). */
static inline size_t fb_q8_0_row_bytes(int64_t C) { return (size_t)(C / FB_Q8_0_BLOCK) * FB_Q8_0_BLOCK_BYTES; }

/* Quantise n values (n % 32 == 0) into n/32 blocks at dst. */
void fb_q8_0_quantize_row(void *dst, const float *x, int64_t n);
/* Quantise a [rows, C] matrix; dst holds rows·fb_q8_0_row_bytes(C) bytes.
 * FB_ERR_SHAPE unless C % 32 == 0. */
fb_status fb_q8_0_quantize(void *dst, const float *x, int64_t rows, int64_t C);
/* Dequantise n values (n % 32 == 0): y = fp32(d)·q. */
void fb_q8_0_dequantize_row(float *y, const void *src, int64_t n);
#endif
