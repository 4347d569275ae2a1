/* Reference LM head + softmax + cross-entropy (+ backward), everything
 * materialised in double: logits[N, V], then dlogits = (softmax - onehot) ·
 * grad_scale, dh += dlogits·W, dW += dlogitsᵀ·h. Rows with target < 0 are
 * ignored (loss 0, no gradient). One thread, for tests only. */
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>

void crossentropy_fused_ref(const fb_op_args *a) {
    const float *h = a->in[0], *W = a->in[1];
    const int32_t *tg = (const int32_t *)(const void *)a->in[2];
    float *loss = a->out[0], *dh = a->out[1], *dW = a->out[2];
    const int64_t N = a->d[0], C = a->d[1], V = a->d[2];
    const int fwd_only = a->d[3] != 0;
    const double scale = a->f[0];
    double *dl = malloc(sizeof(double) * (size_t)(N * V > 0 ? N * V : 1));
    double *acc = malloc(sizeof(double) * (size_t)(C > 0 ? C : 1));
    for (int64_t n = 0; n < N; n++) {
        double *l = dl + n * V;
        if (tg[n] < 0) { loss[n] = 0.0f; continue; }
        double mx = -INFINITY, sum = 0;
        for (int64_t v = 0; v < V; v++) {
            double s = 0;
            for (int64_t c = 0; c < C; c++) s += (double)h[n * C + c] * W[v * C + c];
            l[v] = s;
            if (s > mx) mx = s;
        }
        for (int64_t v = 0; v < V; v++) sum += exp(l[v] - mx);
        double lse = mx + log(sum);
        loss[n] = (float)(lse - l[tg[n]]);
        for (int64_t v = 0; v < V; v++) l[v] = (exp(l[v] - lse) - (v == tg[n] ? 1.0 : 0.0)) * scale;
    }
    if (!fwd_only) {
        for (int64_t n = 0; n < N; n++) {
            if (tg[n] < 0) continue;
            for (int64_t c = 0; c < C; c++) acc[c] = 0;
            for (int64_t v = 0; v < V; v++)
                for (int64_t c = 0; c < C; c++) acc[c] += dl[n * V + v] * W[v * C + c];
            for (int64_t c = 0; c < C; c++) dh[n * C + c] = (float)((double)dh[n * C + c] + acc[c]);
        }
        for (int64_t v = 0; v < V; v++) {
            for (int64_t c = 0; c < C; c++) acc[c] = 0;
            for (int64_t n = 0; n < N; n++) {
                if (tg[n] < 0) continue;
                for (int64_t c = 0; c < C; c++) acc[c] += dl[n * V + v] * h[n * C + c];
            }
            for (int64_t c = 0; c < C; c++) dW[v * C + c] = (float)((double)dW[v * C + c] + acc[c]);
        }
    }
    free(dl);
    free(acc);
}
