/*
 * Q8_0 for the int8 matmul (FB_OP_MATMUL_Q8_0). The weight format and its
 * one quantiser (fb_q8_0_quantize, ggml's rounding: half away from zero,
 * fp16 d) are core/q8_0.h, shared with the GGUF writer; included here.
 *
 * Activations for the int8 matmul are quantised per 32-block on the fly
 * (fb_q8_0_quantize_act). That is not a stored format: same d = amax/127,
 * id = 1/d, but rounding to nearest even (what the SIMD convert
 * instructions do; ggml's AVX activation quantiser rounds the same way) and
 * d kept in fp32.
 */
#ifndef FB_OPS_QUANT_Q8_0_H
#define FB_OPS_QUANT_Q8_0_H
#include "flashblock.h"
#include <stddef.h>
#include <stdint.h>
#include "core/half.h"
#include "core/q8_0.h"

/* Activation quantisation for the int8 matmul: per 32-block scale d[b]
 * (fp32) and q[n] (int8), round to nearest even. Every SIMD variant
 * reproduces this bit for bit. */
void fb_q8_0_quantize_act(int8_t *q, float *d, const float *x, int64_t n);

/* The matmul as the fast kernels compute it, in double: x quantised with
 * fb_q8_0_quantize_act, Σ_blocks d_w·d_x·Σ q_w·q_x (tests: strict check).
 * A test helper, not an op kernel: it allocates its scratch. */
fb_status fb_matmul_q8_0_ref_qx(float *y, const void *Wq, const float *x, const float *b, int64_t N, int64_t C,
                                int64_t OC);
#endif
