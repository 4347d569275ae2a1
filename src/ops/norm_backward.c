/* Reference LayerNorm and RMSNorm backward (double accumulation, one thread).
 *
 * LayerNorm, per row with x̂ = (x - mean)·rstd and g = dy·w:
 *   dx += rstd·(g - mean(g) - x̂·mean(g·x̂)),  dw += dy·x̂,  db += dy
 * RMSNorm, with x̂ = x·rstd and g = dy·w:
 *   dx += rstd·(g - x̂·mean(g·x̂)),            dw += dy·x̂
 * (mean and rstd are the ones the forward saved, so these are the exact
 * gradients of the forward as a function of x.) */
#include "ops/ops.h"
#include <stdlib.h>

void layernorm_backward_ref(const fb_op_args *a) {
    const float *dy = a->in[0], *x = a->in[1], *w = a->in[2], *mean = a->in[3], *rstd = a->in[4];
    float *dx = a->out[0], *dw = a->out[1], *db = a->out[2];
    const int64_t N = a->d[0], C = a->d[1];
    double *dwa = calloc((size_t)(C > 0 ? C : 1), sizeof(double));
    double *dba = calloc((size_t)(C > 0 ? C : 1), sizeof(double));
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
    free(dwa);
    free(dba);
}

void rmsnorm_backward_ref(const fb_op_args *a) {
    const float *dy = a->in[0], *x = a->in[1], *w = a->in[2], *rstd = a->in[3];
    float *dx = a->out[0], *dw = a->out[1];
    const int64_t N = a->d[0], C = a->d[1];
    double *dwa = calloc((size_t)(C > 0 ? C : 1), sizeof(double));
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
    free(dwa);
}
