/* The LM head + softmax + cross-entropy UNFUSED: the baseline the fused op
 * (crossentropy.simd.c) is measured against (`flashblock bench train
 * --baseline`). The whole [N, V] logits matrix is materialised by one
 * matmul, softmax, loss and gradient are computed row by row in that
 * buffer, then the two backward GEMMs run over the full matrix
 * (FB_OP_MATMUL_BWD: dh += dlogits·W, dW += dlogitsᵀ·h). Same slots and
 * results as FB_OP_CROSSENTROPY_FUSED; the extra memory is N·V floats, in
 * the workspace. Listed last in the op table so it is never chosen by
 * default (FLASHBLOCK_KERNEL_CROSSENTROPY_FUSED=unfused selects it). */
#include "core/runtime.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>

static size_t logits_bytes(const int64_t *d) { return fb_ws_round(sizeof(float) * (size_t)(d[0] * d[2] > 0 ? d[0] * d[2] : 1)); }

/* The logits, then the workspace of the two GEMM ops it runs. */
size_t crossentropy_unfused_ws(const fb_op_args *a, int n_threads) {
    size_t need = 0;
    fb_ws_plan(&need, FB_OP_MATMUL_FWD, &(fb_op_args){.d = {a->d[0], a->d[1], a->d[2]}}, n_threads);
    fb_ws_plan(&need, FB_OP_MATMUL_BWD, &(fb_op_args){.d = {a->d[0], a->d[1], a->d[2]}}, n_threads);
    return logits_bytes(a->d) + need;
}

fb_status crossentropy_unfused(const fb_op_args *a) {
    const float *h = fb_in_f32(a, 0), *W = fb_in_f32(a, 1);
    const int32_t *tg = fb_in_i32(a, 2);
    float *loss = fb_out_f32(a, 0), *dh = fb_out_f32(a, 1), *dW = fb_out_f32(a, 2);
    const int64_t N = a->d[0], C = a->d[1], V = a->d[2];
    const int fwd_only = a->d[3] != 0;
    const float scale = a->f[0];
    FB_TRY(fb_ws_check(a, crossentropy_unfused_ws(a, omp_get_max_threads()), "crossentropy_fused[unfused]"));
    float *lg = a->ws.data;
    const fb_workspace inner = {(char *)a->ws.data + logits_bytes(a->d), a->ws.bytes - logits_bytes(a->d)};
    FB_TRY(fb_matmul_forward(&inner, lg, h, W, NULL, N, C, V));
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
    if (!fwd_only) FB_TRY(fb_matmul_backward(&inner, dh, dW, NULL, lg, h, W, N, C, V));
    return FB_OK;
}
