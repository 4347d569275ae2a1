/* Activation quantisation and the references of FB_OP_MATMUL_Q8_0. The
 * weight quantiser is core/q8_0.c. See quant_q8_0.h. */
#include "ops/quant_q8_0.h"
#include "core/error.h"
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>

/* The reference dequantises one row of W at a time: C floats. */
size_t matmul_q8_0_ref_ws(const fb_op_args *a, int n_threads) {
    (void)n_threads;
    return sizeof(float) * (size_t)(a->d[1] > 0 ? a->d[1] : 1);
}

/* The fast kernels (matmul_q8_0.simd.c) quantise x first: N·C int8 values
 * (+64 bytes of slack for whole-vector loads) and N·C/32 fp32 scales. */
size_t matmul_q8_0_ws(const fb_op_args *a, int n_threads) {
    (void)n_threads;
    const int64_t N = a->d[0] > 0 ? a->d[0] : 0, C = a->d[1] > 0 ? a->d[1] : 0;
    return fb_ws_round((size_t)(N * C) + 64) + sizeof(float) * (size_t)(N * (C / FB_Q8_0_BLOCK) + 1);
}

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
fb_status matmul_q8_0_forward_ref(const fb_op_args *a) {
    const float *x = fb_in_f32(a, 0), *b = fb_in_f32(a, 2);
    const uint8_t *W = fb_in_q8_0(a, 1);
    float *y = fb_out_f32(a, 0);
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    const size_t rb = fb_q8_0_row_bytes(C);
    FB_TRY(fb_ws_check(a, matmul_q8_0_ref_ws(a, 1), "matmul_q8_0[reference]"));
    float *row = a->ws.data;
    for (int64_t o = 0; o < OC; o++) {
        fb_q8_0_dequantize_row(row, W + (size_t)o * rb, C);
        for (int64_t n = 0; n < N; n++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t c = 0; c < C; c++) acc += (double)row[c] * x[n * C + c];
            y[n * OC + o] = (float)acc;
        }
    }
    return FB_OK;
}

fb_status fb_matmul_q8_0_ref_qx(float *y, const void *Wq, const float *x, const float *b, int64_t N, int64_t C,
                                int64_t OC) {
    const uint8_t *W = Wq;
    const int64_t nb = C / FB_Q8_0_BLOCK;
    const size_t rb = fb_q8_0_row_bytes(C);
    int8_t *qx = malloc((size_t)(N * C > 0 ? N * C : 1));
    float *dx = malloc(sizeof(float) * (size_t)(N * nb > 0 ? N * nb : 1));
    if (!qx || !dx) {
        free(qx);
        free(dx);
        return fb_fail(FB_ERR_OOM, "fb_matmul_q8_0_ref_qx: out of memory");
    }
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
    return FB_OK;
}
