/* Scalar fp16 / bf16 <-> fp32 conversions and GGML Q8_0 blocks for the format
 * readers and writers (bit-exact, round-to-nearest-even on narrowing). The
 * compute kernels keep their own vectorised versions. */
#ifndef FB_IO_HALFCONV_H
#define FB_IO_HALFCONV_H
#include <stdint.h>
#include <string.h>

static inline float fb_io_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t fb_io_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf / nan (keep nan quiet and non-zero) */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? (0x200u | ((ax >> 13) & 0x3ffu)) : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign; /* < 2^-25: rounds to 0 */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15, still shifted by 13 */
    uint32_t q = r >> 13, rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

static inline float fb_io_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t fb_io_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* GGML Q8_0: blocks of 32 values, fp16 scale d then 32 int8, value = d*q. */
#define FB_Q8_0_BLOCK 32
#define FB_Q8_0_BYTES 34

static inline void fb_io_q8_0_quantize_block(const float *x, uint8_t *out) {
    float amax = 0.0f;
    for (int i = 0; i < FB_Q8_0_BLOCK; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > amax) amax = a;
    }
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    uint16_t dh = fb_io_f32_to_f16(d);
    out[0] = (uint8_t)dh;
    out[1] = (uint8_t)(dh >> 8);
    for (int i = 0; i < FB_Q8_0_BLOCK; i++) {
        float v = x[i] * id;
        /* roundf, as ggml's reference quantizer (half away from zero) */
        int q = (int)(v < 0 ? v - 0.5f : v + 0.5f);
        if (q > 127) q = 127;
        if (q < -127) q = -127;
        out[2 + i] = (uint8_t)(int8_t)q;
    }
}

static inline void fb_io_q8_0_dequantize_block(const uint8_t *in, float *y) {
    float d = fb_io_f16_to_f32((uint16_t)(in[0] | (in[1] << 8)));
    for (int i = 0; i < FB_Q8_0_BLOCK; i++) y[i] = d * (float)(int8_t)in[2 + i];
}
#endif
