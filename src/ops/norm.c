/* Reference LayerNorm and RMSNorm (double accumulation, one thread). */
#include "ops/ops.h"
#include <math.h>

fb_status layernorm_forward_ref(const fb_op_args *a) {
    const float *x = fb_in_f32(a, 0), *w = fb_in_f32(a, 1), *b = fb_in_f32(a, 2);
    float *y = fb_out_f32(a, 0), *mean = fb_out_f32(a, 1), *rstd = fb_out_f32(a, 2);
    int64_t N = a->d[0], C = a->d[1];
    double eps = a->f[0];
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        double m = 0, v = 0;
        for (int64_t c = 0; c < C; c++) m += xr[c];
        m /= (double)C;
        for (int64_t c = 0; c < C; c++) v += ((double)xr[c] - m) * ((double)xr[c] - m);
        v /= (double)C;
        double r = 1.0 / sqrt(v + eps);
        for (int64_t c = 0; c < C; c++)
            y[n * C + c] = (float)(((double)xr[c] - m) * r * w[c] + (b ? b[c] : 0.0));
        mean[n] = (float)m;
        rstd[n] = (float)r;
    }
    return FB_OK;
}

fb_status rmsnorm_forward_ref(const fb_op_args *a) {
    const float *x = fb_in_f32(a, 0), *w = fb_in_f32(a, 1);
    float *y = fb_out_f32(a, 0), *rstd = fb_out_f32(a, 1);
    int64_t N = a->d[0], C = a->d[1];
    double eps = a->f[0];
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        double ss = 0;
        for (int64_t c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        double r = 1.0 / sqrt(ss / (double)C + eps);
        for (int64_t c = 0; c < C; c++) y[n * C + c] = (float)((double)xr[c] * r * w[c]);
        rstd[n] = (float)r;
    }
    return FB_OK;
}
