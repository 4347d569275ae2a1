/* Activation quantisation and the references of FB_OP_MATMUL_Q8_0. The
 * weight quantiser is core/q8_0.c. See quant_q8_0.h. */
#include "ops/quant_q8_0.h"
#include "ops/infer_kernels.h"
#include "core/error.h"
#include <math.h>
#include <stdlib.h>

void fb_q8_0_quantize_act(int8_t *q, float *d, const float *x, int64_t n) {
    for (int64_t b = 0; b < n / FB_Q8_0_BLOCK; b++) {
        const float *xb = x + b * FB_Q8_0_BLOCK;
        float amax = 0.0f;
        for (int j = 0; j < FB_Q8_0_BLOCK; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float db = amax / 127.0f;
        const float id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        for (int j = 0; j < FB_Q8_0_BLOCK; j++) q[b * FB_Q8_0_BLOCK + j] = (int8_t)nearbyintf(xb[j] * id);
    }
}

/* Reference of FB_OP_MATMUL_Q8_0: W dequantised to float, x as given,
 * double accumulation. The fast kernels also quantise x (to int8 per block),
 * so they differ from this by the activation rounding (tolerance 1e-2). */
void matmul_q8_0_forward_ref(const fb_op_args *a) {
    const float *x = a->in[0], *b = a->in[2];
    const uint8_t *W = (const uint8_t *)a->in[1];
    float *y = a->out[0];
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    const size_t rb = fb_q8_0_row_bytes(C);
    float *row = malloc(sizeof(float) * (size_t)(C > 0 ? C : 1));
    if (!row) abort();   /* reference only */
    for (int64_t o = 0; o < OC; o++) {
        fb_q8_0_dequantize_row(row, W + (size_t)o * rb, C);
        for (int64_t n = 0; n < N; n++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t c = 0; c < C; c++) acc += (double)row[c] * x[n * C + c];
            y[n * OC + o] = (float)acc;
        }
    }
    free(row);
}

void fb_matmul_q8_0_ref_qx(float *y, const void *Wq, const float *x, const float *b, int64_t N, int64_t C,
                           int64_t OC) {
    const uint8_t *W = Wq;
    const int64_t nb = C / FB_Q8_0_BLOCK;
    const size_t rb = fb_q8_0_row_bytes(C);
    int8_t *qx = malloc((size_t)(N * C > 0 ? N * C : 1));
    float *dx = malloc(sizeof(float) * (size_t)(N * nb > 0 ? N * nb : 1));
    if (!qx || !dx) abort();   /* test helper */
    for (int64_t n = 0; n < N; n++) fb_q8_0_quantize_act(qx + n * C, dx + n * nb, x + n * C, C);
    for (int64_t o = 0; o < OC; o++)
        for (int64_t n = 0; n < N; n++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t k = 0; k < nb; k++) {
                const uint8_t *blk = W + (size_t)o * rb + (size_t)k * FB_Q8_0_BLOCK_BYTES;
                const double dw = fb_f16_to_f32(fb_load_u16le(blk));
                int32_t s = 0;
                for (int j = 0; j < FB_Q8_0_BLOCK; j++) s += (int32_t)(int8_t)blk[2 + j] * qx[n * C + k * 32 + j];
                acc += dw * dx[n * nb + k] * (double)s;
            }
            y[n * OC + o] = (float)acc;
        }
    free(qx);
    free(dx);
}

/* Test sizes: x[N,C], Wq (bytes rounded up to floats), b[OC]; y[N,OC]. */
void matmul_q8_0_sizes(const int64_t *d, size_t *in, size_t *out) {
    in[0] = (size_t)(d[0] * d[1]);
    in[1] = (fb_q8_0_row_bytes(d[1]) * (size_t)d[2] + 3) / 4;
    in[2] = (size_t)d[2];
    out[0] = (size_t)(d[0] * d[2]);
}

/* Test inputs: W = quantised normal-ish random values, with an all-zero
 * block and one q = -128 (valid in the format, never produced by GGML) to
 * exercise the sign handling of the int8 kernels. */
void matmul_q8_0_prepare(const int64_t *d, float **in, uint64_t seed) {
    const int64_t C = d[1], OC = d[2];
    float *row = malloc(sizeof(float) * (size_t)(C > 0 ? C : 1));
    if (!row) abort();
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    uint8_t *W = (uint8_t *)in[1];
    const size_t rb = fb_q8_0_row_bytes(C);
    for (int64_t o = 0; o < OC; o++) {
        for (int64_t c = 0; c < C; c++) {
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
            const uint64_t r = s * 0x2545F4914F6CDD1Dull;
            /* sum of 4 uniforms: roughly normal, mean 0, sd ~0.58 */
            float v = 0;
            for (int k = 0; k < 4; k++) v += (float)((r >> (16 * k)) & 0xFFFF) / 65536.0f - 0.5f;
            row[c] = v;
        }
        if (o == 0 && C >= 64) for (int c = 32; c < 64; c++) row[c] = 0.0f;
        fb_q8_0_quantize_row(W + (size_t)o * rb, row, C);
        if (o == OC - 1 && C >= 32) W[(size_t)o * rb + 2 + 5] = (uint8_t)(int8_t)-128;
    }
    free(row);
}
