/* Fast fused LM head + softmax + cross-entropy (+ backward).
 *
 * Rows are processed in chunks of CHUNK, so only a [CHUNK, V] block of logits
 * exists at a time (12.9 MB for V = 50257):
 *   L = h_chunk·Wᵀ                      (sgemm, tiles over V)
 *   per row: stable softmax, loss = logsumexp - L[target],
 *            L <- (softmax - onehot)·grad_scale   (0 for ignored rows)
 *   dh_chunk += L·W                     (sgemm, tiles over C)
 *   dW       += Lᵀ·h_chunk              (sgemm, tiles over V)
 * Chunks run in a fixed order and every GEMM is cut in tiles of a fixed size,
 * each computed by one single-threaded fb_sgemm call (ops/gemm.h): dW accumulates chunk after
 * chunk in the same order whatever the thread count, so the results are the
 * same bits for any number of threads. */
#include "core/simd.h"
#include "ops/ops.h"
#include "ops/crossentropy.h"
#include "ops/gemm.h"
#include <math.h>
#include <omp.h>

/* Softmax of one row of logits in place, turned into dlogits (unless fwd_only);
 * returns the loss. */
static float row_softmax_ce(float *l, int64_t V, int32_t target, float scale, int fwd_only) {
    fvec vmx = fv_set1(-INFINITY);
    int64_t v = 0;
    for (; v + FV_N <= V; v += FV_N) vmx = fv_max(vmx, fv_load(l + v));
    float mx = fv_hmax(vmx);
    for (; v < V; v++) mx = l[v] > mx ? l[v] : mx;
    const float lt = l[target];
    const fvec vm = fv_set1(mx);
    fvec s = fv_zero();
    float st = 0;
    if (fwd_only) {
        for (v = 0; v + FV_N <= V; v += FV_N) s = fv_add(s, fv_exp(fv_sub(fv_load(l + v), vm)));
        for (; v < V; v++) st += expf(l[v] - mx);
    } else {
        for (v = 0; v + FV_N <= V; v += FV_N) {
            fvec e = fv_exp(fv_sub(fv_load(l + v), vm));
            fv_store(l + v, e);
            s = fv_add(s, e);
        }
        for (; v < V; v++) { l[v] = expf(l[v] - mx); st += l[v]; }
    }
    const float sum = fv_hsum(s) + st;
    const float loss = mx + logf(sum) - lt;
    if (!fwd_only) {
        const fvec k = fv_set1(scale / sum);
        for (v = 0; v + FV_N <= V; v += FV_N) fv_store(l + v, fv_mul(fv_load(l + v), k));
        for (; v < V; v++) l[v] *= scale / sum;
        l[target] -= scale;
    }
    return loss;
}

fb_status FB_SIMD(crossentropy_fused)(const fb_op_args *a) {
    const float *h = fb_in_f32(a, 0), *W = fb_in_f32(a, 1);
    const int32_t *tg = fb_in_i32(a, 2);
    float *loss = fb_out_f32(a, 0), *dh = fb_out_f32(a, 1), *dW = fb_out_f32(a, 2);
    const int64_t N = a->d[0], C = a->d[1], V = a->d[2];
    const int fwd_only = a->d[3] != 0;
    const float scale = a->f[0];
    if (N <= 0) return FB_OK;
    const int64_t CHUNK = ce_chunk_rows(V), R = ce_min64(CHUNK, N);
    FB_TRY(fb_ws_check(a, crossentropy_fused_ws(a, omp_get_max_threads()), "crossentropy_fused"));
    const size_t l_bytes = fb_ws_round(sizeof(float) * (size_t)(R * V > 0 ? R * V : 1));
    const size_t per_thread = (crossentropy_fused_ws(a, 1) - l_bytes);
    float *L = a->ws.data;
    const int64_t tv = (V + CE_TILE_V - 1) / CE_TILE_V, tc = (C + CE_TILE_C - 1) / CE_TILE_C;
    int err = 0;
    #pragma omp parallel if (R * V * C > (1 << 18)) reduction(| : err)
    for (int64_t n0 = 0; n0 < N; n0 += CHUNK) {   /* every thread walks the chunks; work split inside */
        const fb_workspace ws = fb_ws_slice(a->ws, l_bytes + (size_t)omp_get_thread_num() * per_thread, per_thread);
        const int64_t rows = ce_min64(CHUNK, N - n0);
        const float *hc = h + n0 * C;
        int any = 0;
        for (int64_t r = 0; r < rows; r++) any |= tg[n0 + r] >= 0;
        if (!any) {
            #pragma omp single
            for (int64_t r = 0; r < rows; r++) loss[n0 + r] = 0.0f;
            continue;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tv; t++) {
            int64_t v0 = t * CE_TILE_V, cols = ce_min64(CE_TILE_V, V - v0);
            err |= fb_sgemm(ws, 0, 1, rows, cols, C, 1.0f, hc, C, W + v0 * C, C, 0.0f, L + v0, V) != FB_OK;
        }
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            float *l = L + r * V;
            int32_t t = tg[n0 + r];
            if (t < 0) {
                loss[n0 + r] = 0.0f;
                if (!fwd_only)
                    for (int64_t v = 0; v < V; v++) l[v] = 0.0f;
            } else {
                loss[n0 + r] = row_softmax_ce(l, V, t, scale, fwd_only);
            }
        }
        if (fwd_only) continue;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tc + tv; t++) {
            if (t < tc) {   /* dh[chunk, c0:c1] += L · W[:, c0:c1] */
                int64_t c0 = t * CE_TILE_C, cols = ce_min64(CE_TILE_C, C - c0);
                err |= fb_sgemm(ws, 0, 0, rows, cols, V, 1.0f, L, V, W + c0, C, 1.0f, dh + n0 * C + c0, C) != FB_OK;
            } else {        /* dW[v0:v1, :] += L[:, v0:v1]ᵀ · h_chunk */
                int64_t v0 = (t - tc) * CE_TILE_V, vr = ce_min64(CE_TILE_V, V - v0);
                err |= fb_sgemm(ws, 1, 0, vr, C, rows, 1.0f, L + v0, V, hc, C, 1.0f, dW + v0 * C, C) != FB_OK;
            }
        }
    }
    return err ? fb_fail(FB_ERR_WORKSPACE, "crossentropy_fused: a GEMM tile failed") : FB_OK;
}
