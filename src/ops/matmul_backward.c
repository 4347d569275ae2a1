/* Matmul backward: dx += dy·W, dW += dyᵀ·x, db += Σ_n dy.
 *
 * The reference is plain loops with double accumulators. The fast path cuts
 * every output into tiles of a FIXED size (independent of the thread count)
 * and hands each tile to one single-threaded fb_sgemm call (ops/gemm.h: our
 * AVX-512 kernel, or OpenBLAS single-threaded); the reduction over N of dW and db is
 * never split, so each output element is computed by exactly one call with
 * the same arguments whatever the number of threads: bitwise deterministic,
 * no atomics. */
#include "ops/ops.h"
#include "ops/gemm.h"
#include <stdlib.h>

void matmul_backward_ref(const fb_op_args *a) {
    const float *dy = a->in[0], *x = a->in[1], *W = a->in[2];
    float *dx = a->out[0], *dW = a->out[1], *db = a->out[2];
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    double *acc = malloc(sizeof(double) * (size_t)(C > 0 ? C : 1));
    for (int64_t n = 0; n < N; n++) {
        for (int64_t c = 0; c < C; c++) acc[c] = 0;
        for (int64_t o = 0; o < OC; o++) {
            double g = dy[n * OC + o];
            for (int64_t c = 0; c < C; c++) acc[c] += g * W[o * C + c];
        }
        for (int64_t c = 0; c < C; c++) dx[n * C + c] = (float)((double)dx[n * C + c] + acc[c]);
    }
    for (int64_t o = 0; o < OC; o++) {
        double sb = 0;
        for (int64_t c = 0; c < C; c++) acc[c] = 0;
        for (int64_t n = 0; n < N; n++) {
            double g = dy[n * OC + o];
            sb += g;
            for (int64_t c = 0; c < C; c++) acc[c] += g * x[n * C + c];
        }
        for (int64_t c = 0; c < C; c++) dW[o * C + c] = (float)((double)dW[o * C + c] + acc[c]);
        if (db) db[o] = (float)((double)db[o] + sb);
    }
    free(acc);
}

#define TILE_N 512   /* rows of dx per tile */
#define TILE_C 256   /* columns of dx / dW per tile */
#define TILE_O 512   /* rows of dW / entries of db per tile */

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

void matmul_backward_blas(const fb_op_args *a) {
    const float *dy = a->in[0], *x = a->in[1], *W = a->in[2];
    float *dx = a->out[0], *dW = a->out[1], *db = a->out[2];
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    const int64_t tn = cdiv(N, TILE_N), tc = cdiv(C, TILE_C), to = cdiv(OC, TILE_O);
    const int64_t n_dx = tn * tc, n_dw = to * tc, n_db = db ? to : 0;
    const int64_t total = n_dx + n_dw + n_db;
    #pragma omp parallel for schedule(dynamic, 1) if (N * C * OC > (1 << 18))
    for (int64_t t = 0; t < total; t++) {
        if (t < n_dx) {
            /* dx[n0:n1, c0:c1] += dy[n0:n1, :] · W[:, c0:c1] */
            int64_t n0 = (t / tc) * TILE_N, c0 = (t % tc) * TILE_C;
            int64_t rows = min64(TILE_N, N - n0), cols = min64(TILE_C, C - c0);
            fb_sgemm(0, 0, rows, cols, OC, 1.0f, dy + n0 * OC, OC, W + c0, C, 1.0f, dx + n0 * C + c0, C);
        } else if (t < n_dx + n_dw) {
            /* dW[o0:o1, c0:c1] += dy[:, o0:o1]ᵀ · x[:, c0:c1] */
            int64_t u = t - n_dx, o0 = (u / tc) * TILE_O, c0 = (u % tc) * TILE_C;
            int64_t rows = min64(TILE_O, OC - o0), cols = min64(TILE_C, C - c0);
            fb_sgemm(1, 0, rows, cols, N, 1.0f, dy + o0, OC, x + c0, C, 1.0f, dW + o0 * C + c0, C);
        } else {
            /* db[o0:o1] += Σ_n dy[n, o0:o1], rows in order */
            int64_t o0 = (t - n_dx - n_dw) * TILE_O, cols = min64(TILE_O, OC - o0);
            float acc[TILE_O] = {0};
            for (int64_t n = 0; n < N; n++)
                for (int64_t o = 0; o < cols; o++) acc[o] += dy[n * OC + o0 + o];
            for (int64_t o = 0; o < cols; o++) db[o0 + o] += acc[o];
        }
    }
}
