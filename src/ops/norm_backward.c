/* Reference LayerNorm and RMSNorm backward (double accumulation, one thread).
 *
 * LayerNorm, per row with x̂ = (x - mean)·rstd and g = dy·w:
 *   dx += rstd·(g - mean(g) - x̂·mean(g·x̂)),  dw += dy·x̂,  db += dy
 * RMSNorm, with x̂ = x·rstd and g = dy·w:
 *   dx += rstd·(g - x̂·mean(g·x̂)),            dw += dy·x̂
 * (mean and rstd are the ones the forward saved, so these are the exact
 * gradients of the forward as a function of x.) */
#include "ops/ops.h"
#include <string.h>

/* Two accumulators of C doubles (dw, db). */
size_t norm_backward_ref_ws(const fb_op_args *a, int n_threads) {
    (void)n_threads;
    return 2 * fb_ws_round(sizeof(double) * (size_t)(a->d[1] > 0 ? a->d[1] : 1));
}

fb_status layernorm_backward_ref(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0), *x = fb_in_f32(a, 1), *w = fb_in_f32(a, 2);
    const float *mean = fb_in_f32(a, 3), *rstd = fb_in_f32(a, 4);
    float *dx = fb_out_f32(a, 0), *dw = fb_out_f32(a, 1), *db = fb_out_f32(a, 2);
    const int64_t N = a->d[0], C = a->d[1];
    FB_TRY(fb_ws_check(a, norm_backward_ref_ws(a, 1), "layernorm_backward[reference]"));
    double *dwa = a->ws.data, *dba = (double *)((char *)a->ws.data + norm_backward_ref_ws(a, 1) / 2);
    memset(dwa, 0, sizeof(double) * (size_t)C);
    memset(dba, 0, sizeof(double) * (size_t)C);
    for (int64_t n = 0; n < N; n++) {
        const float *dyr = dy + n * C, *xr = x + n * C;
        double m = mean[n], r = rstd[n], gm = 0, gxm = 0;
        for (int64_t c = 0; c < C; c++) {
            double xh = ((double)xr[c] - m) * r, g = (double)dyr[c] * w[c];
            gm += g;
            gxm += g * xh;
            dwa[c] += (double)dyr[c] * xh;
            dba[c] += dyr[c];
        }
        gm /= (double)C;
        gxm /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            double xh = ((double)xr[c] - m) * r, g = (double)dyr[c] * w[c];
            dx[n * C + c] = (float)((double)dx[n * C + c] + r * (g - gm - xh * gxm));
        }
    }
    for (int64_t c = 0; c < C; c++) {
        dw[c] = (float)((double)dw[c] + dwa[c]);
        if (db) db[c] = (float)((double)db[c] + dba[c]);
    }
    return FB_OK;
}

fb_status rmsnorm_backward_ref(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0), *x = fb_in_f32(a, 1), *w = fb_in_f32(a, 2), *rstd = fb_in_f32(a, 3);
    float *dx = fb_out_f32(a, 0), *dw = fb_out_f32(a, 1);
    const int64_t N = a->d[0], C = a->d[1];
    FB_TRY(fb_ws_check(a, norm_backward_ref_ws(a, 1), "rmsnorm_backward[reference]"));
    double *dwa = a->ws.data;
    memset(dwa, 0, sizeof(double) * (size_t)C);
    for (int64_t n = 0; n < N; n++) {
        const float *dyr = dy + n * C, *xr = x + n * C;
        double r = rstd[n], gxm = 0;
        for (int64_t c = 0; c < C; c++) {
            double xh = (double)xr[c] * r;
            gxm += (double)dyr[c] * w[c] * xh;
            dwa[c] += (double)dyr[c] * xh;
        }
        gxm /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            double xh = (double)xr[c] * r, g = (double)dyr[c] * w[c];
            dx[n * C + c] = (float)((double)dx[n * C + c] + r * (g - xh * gxm));
        }
    }
    for (int64_t c = 0; c < C; c++) dw[c] = (float)((double)dw[c] + dwa[c]);
    return FB_OK;
}
