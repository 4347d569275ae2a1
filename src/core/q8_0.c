/* The Q8_0 quantiser and dequantiser (rule and layout in q8_0.h). */
#include "core/q8_0.h"
#include "core/error.h"
#include "core/half.h"
#include <math.h>

/* roundf(v) as an int8 q: half away from zero; saturating at ±127 and 0 for
 * NaN, the cases where ggml's conversion is undefined (see q8_0.h). */
static inline int8_t q8_0_round(float v) {
    const float r = roundf(v);
    if (r >= 127.0f) return 127;
    if (r <= -127.0f) return -127;
    if (r != r) return 0;
    return (int8_t)r;
}

void fb_q8_0_quantize_row(void *dst, const float *x, int64_t n) {
    uint8_t *out = dst;
    for (int64_t b = 0; b < n / FB_Q8_0_BLOCK; b++) {
        const float *xb = x + b * FB_Q8_0_BLOCK;
        float amax = 0.0f;
        for (int j = 0; j < FB_Q8_0_BLOCK; j++) {   /* ggml's amax = MAX(amax, fabsf(v)) */
            const float v = fabsf(xb[j]);
            amax = amax > v ? amax : v;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t *blk = out + b * FB_Q8_0_BLOCK_BYTES;
        fb_store_u16le(blk, fb_f32_to_f16(d));
        for (int j = 0; j < FB_Q8_0_BLOCK; j++) blk[2 + j] = (uint8_t)q8_0_round(xb[j] * id);
    }
}

fb_status fb_q8_0_quantize(void *dst, const float *x, int64_t rows, int64_t C) {
    if (!dst || !x || rows < 0 || C < 0) return fb_fail(FB_ERR_INVALID_ARG, "q8_0 quantize: bad arguments");
    if (C % FB_Q8_0_BLOCK) return fb_fail(FB_ERR_SHAPE, "q8_0 quantize: row length %lld is not a multiple of 32",
                                          (long long)C);
    const size_t rb = fb_q8_0_row_bytes(C);
    for (int64_t r = 0; r < rows; r++) fb_q8_0_quantize_row((uint8_t *)dst + (size_t)r * rb, x + r * C, C);
    return FB_OK;
}

void fb_q8_0_dequantize_row(float *y, const void *src, int64_t n) {
    const uint8_t *in = src;
    for (int64_t b = 0; b < n / FB_Q8_0_BLOCK; b++) {
        const uint8_t *blk = in + b * FB_Q8_0_BLOCK_BYTES;
        const float d = fb_f16_to_f32(fb_load_u16le(blk));
        for (int j = 0; j < FB_Q8_0_BLOCK; j++) y[b * FB_Q8_0_BLOCK + j] = d * (float)(int8_t)blk[2 + j];
    }
}
