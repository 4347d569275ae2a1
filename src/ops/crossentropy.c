/* Reference LM head + softmax + cross-entropy (+ backward), everything
 * materialised in double: logits[N, V], then dlogits = (softmax - onehot) ·
 * grad_scale, dh += dlogits·W, dW += dlogitsᵀ·h. Rows with target < 0 are
 * ignored (loss 0, no gradient). One thread, for tests only. */
#include "ops/ops.h"
#include "ops/crossentropy.h"
#include "ops/gemm.h"
#include <math.h>

/* Fast kernels (crossentropy.simd.c): the logits of one chunk [R, V], then
 * one fb_sgemm workspace per thread for the tallest GEMM (R rows of logits
 * or dh, CE_TILE_V rows of dW). */
size_t crossentropy_fused_ws(const fb_op_args *a, int n_threads) {
    const int64_t N = a->d[0], V = a->d[2], R = ce_min64(ce_chunk_rows(V), N);
    const int64_t m = R > ce_min64(CE_TILE_V, V) ? R : ce_min64(CE_TILE_V, V);
    return fb_ws_round(sizeof(float) * (size_t)(R * V > 0 ? R * V : 1)) +
           (size_t)n_threads * fb_ws_round(fb_sgemm_workspace(m));
}

/* dlogits [N, V] and accumulators [C], in double. */
size_t crossentropy_fused_ref_ws(const fb_op_args *a, int n_threads) {
    (void)n_threads;
    const int64_t N = a->d[0], C = a->d[1], V = a->d[2];
    return fb_ws_round(sizeof(double) * (size_t)(N * V > 0 ? N * V : 1)) + sizeof(double) * (size_t)(C > 0 ? C : 1);
}

fb_status crossentropy_fused_ref(const fb_op_args *a) {
    const float *h = fb_in_f32(a, 0), *W = fb_in_f32(a, 1);
    const int32_t *tg = fb_in_i32(a, 2);
    float *loss = fb_out_f32(a, 0), *dh = fb_out_f32(a, 1), *dW = fb_out_f32(a, 2);
    const int64_t N = a->d[0], C = a->d[1], V = a->d[2];
    const int fwd_only = a->d[3] != 0;
    const double scale = a->f[0];
    FB_TRY(fb_ws_check(a, crossentropy_fused_ref_ws(a, 1), "crossentropy_fused[reference]"));
    double *dl = a->ws.data;
    double *acc = (double *)((char *)dl + fb_ws_round(sizeof(double) * (size_t)(N * V > 0 ? N * V : 1)));
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
    return FB_OK;
}
