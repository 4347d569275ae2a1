/* The LM head + softmax + cross-entropy UNFUSED: the baseline the fused op
 * (crossentropy.simd.c) is measured against (`flashblock bench train
 * --baseline`). The whole [N, V] logits matrix is materialised by one
 * matmul, softmax, loss and gradient are computed row by row in that
 * buffer, then the two backward GEMMs run over the full matrix
 * (FB_OP_MATMUL_BWD: dh += dlogits·W, dW += dlogitsᵀ·h). Same slots and
 * results as FB_OP_CROSSENTROPY_FUSED; the extra memory is N·V floats.
 * Listed last in the op table so it is never chosen by default
 * (FLASHBLOCK_KERNEL_CROSSENTROPY_FUSED=unfused selects it). Kernels cannot
 * fail: if the buffer cannot be allocated every loss is NaN, which the
 * trainer refuses. */
#include "core/runtime.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>

void crossentropy_unfused(const fb_op_args *a) {
    const float *h = a->in[0], *W = a->in[1];
    const int32_t *tg = (const int32_t *)(const void *)a->in[2];
    float *loss = a->out[0], *dh = a->out[1], *dW = a->out[2];
    const int64_t N = a->d[0], C = a->d[1], V = a->d[2];
    const int fwd_only = a->d[3] != 0;
    const float scale = a->f[0];
    float *lg = fb_aligned_alloc(sizeof(float) * (size_t)(N * V > 0 ? N * V : 1));
    if (!lg) {
        for (int64_t n = 0; n < N; n++) loss[n] = NAN;
        return;
    }
    fb_matmul_forward(lg, h, W, NULL, N, C, V);
    #pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *l = lg + n * V;
        if (tg[n] < 0) {
            loss[n] = 0.0f;
            for (int64_t v = 0; v < V; v++) l[v] = 0.0f;
            continue;
        }
        float mx = l[0];
        for (int64_t v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        double sum = 0;
        for (int64_t v = 0; v < V; v++) sum += exp((double)(l[v] - mx));
        const double lse = (double)mx + log(sum);
        loss[n] = (float)(lse - (double)l[tg[n]]);
        for (int64_t v = 0; v < V; v++) l[v] = (float)exp((double)l[v] - lse) * scale;
        l[tg[n]] -= scale;
    }
    if (!fwd_only) {
        fb_op_args b = {.in = {lg, h, W}, .out = {dh, dW, NULL}, .d = {N, C, V}};
        fb_op_run(FB_OP_MATMUL_BWD, &b);
    }
    free(lg);
}
