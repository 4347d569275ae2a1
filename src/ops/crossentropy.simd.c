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
#include "ops/gemm.h"
#include <math.h>
#include <stdlib.h>

#define CHUNK_MIN 64             /* rows per chunk, at least ... */
#define CHUNK_FLOATS (1 << 24)   /* ... and as many as fit a 64 MiB logits block: fewer, larger dW GEMMs */
#define TILE_V 512    /* vocabulary columns per logits / dW tile */
#define TILE_C 128    /* columns of dh per tile */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

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

void FB_SIMD(crossentropy_fused)(const fb_op_args *a) {
    const float *h = a->in[0], *W = a->in[1];
    const int32_t *tg = (const int32_t *)(const void *)a->in[2];
    float *loss = a->out[0], *dh = a->out[1], *dW = a->out[2];
    const int64_t N = a->d[0], C = a->d[1], V = a->d[2];
    const int fwd_only = a->d[3] != 0;
    const float scale = a->f[0];
    if (N <= 0) return;
    int64_t CHUNK = CHUNK_FLOATS / (V > 0 ? V : 1);
    if (CHUNK < CHUNK_MIN) CHUNK = CHUNK_MIN;
    const int64_t R = min64(CHUNK, N);
    float *L = malloc(sizeof(float) * (size_t)(R * V > 0 ? R * V : 1));
    const int64_t tv = (V + TILE_V - 1) / TILE_V, tc = (C + TILE_C - 1) / TILE_C;
    #pragma omp parallel if (R * V * C > (1 << 18))
    for (int64_t n0 = 0; n0 < N; n0 += CHUNK) {   /* every thread walks the chunks; work split inside */
        const int64_t rows = min64(CHUNK, N - n0);
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
            int64_t v0 = t * TILE_V, cols = min64(TILE_V, V - v0);
            fb_sgemm(0, 1, rows, cols, C, 1.0f, hc, C, W + v0 * C, C, 0.0f, L + v0, V);
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
                int64_t c0 = t * TILE_C, cols = min64(TILE_C, C - c0);
                fb_sgemm(0, 0, rows, cols, V, 1.0f, L, V, W + c0, C, 1.0f, dh + n0 * C + c0, C);
            } else {        /* dW[v0:v1, :] += L[:, v0:v1]ᵀ · h_chunk */
                int64_t v0 = (t - tc) * TILE_V, vr = min64(TILE_V, V - v0);
                fb_sgemm(1, 0, vr, C, rows, 1.0f, L + v0, V, hc, C, 1.0f, dW + v0 * C, C);
            }
        }
    }
    free(L);
}
