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
#include <omp.h>

size_t matmul_backward_ref_ws(const fb_op_args *a, int n_threads) {
    (void)n_threads;
    return sizeof(double) * (size_t)(a->d[1] > 0 ? a->d[1] : 1);   /* C accumulators */
}

fb_status matmul_backward_ref(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0), *x = fb_in_f32(a, 1), *W = fb_in_f32(a, 2);
    float *dx = fb_out_f32(a, 0), *dW = fb_out_f32(a, 1), *db = fb_out_f32(a, 2);
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    FB_TRY(fb_ws_check(a, matmul_backward_ref_ws(a, 1), "matmul_backward[reference]"));
    double *acc = a->ws.data;
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
    return FB_OK;
}

#define TILE_N 512   /* rows of dx per tile */
#define TILE_C 256   /* columns of dx / dW per tile */
#define TILE_O 512   /* rows of dW / entries of db per tile */

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* One fb_sgemm workspace per thread, for the tallest tile. */
size_t matmul_backward_blas_ws(const fb_op_args *a, int n_threads) {
    const int64_t m = min64(TILE_N, a->d[0]) > min64(TILE_O, a->d[2]) ? min64(TILE_N, a->d[0]) : min64(TILE_O, a->d[2]);
    return (size_t)n_threads * fb_ws_round(fb_sgemm_workspace(m));
}

fb_status matmul_backward_blas(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0), *x = fb_in_f32(a, 1), *W = fb_in_f32(a, 2);
    float *dx = fb_out_f32(a, 0), *dW = fb_out_f32(a, 1), *db = fb_out_f32(a, 2);
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    const int64_t tn = cdiv(N, TILE_N), tc = cdiv(C, TILE_C), to = cdiv(OC, TILE_O);
    const int64_t n_dx = tn * tc, n_dw = to * tc, n_db = db ? to : 0;
    const int64_t total = n_dx + n_dw + n_db;
    FB_TRY(fb_ws_check(a, matmul_backward_blas_ws(a, omp_get_max_threads()), "matmul_backward[blas]"));
    const size_t per_thread = matmul_backward_blas_ws(a, 1);
    int err = 0;
    #pragma omp parallel for schedule(dynamic, 1) if (N * C * OC > (1 << 18)) reduction(| : err)
    for (int64_t t = 0; t < total; t++) {
        const fb_workspace ws = fb_ws_slice(a->ws, (size_t)omp_get_thread_num() * per_thread, per_thread);
        if (t < n_dx) {
            /* dx[n0:n1, c0:c1] += dy[n0:n1, :] · W[:, c0:c1] */
            int64_t n0 = (t / tc) * TILE_N, c0 = (t % tc) * TILE_C;
            int64_t rows = min64(TILE_N, N - n0), cols = min64(TILE_C, C - c0);
            err |= fb_sgemm(ws, 0, 0, rows, cols, OC, 1.0f, dy + n0 * OC, OC, W + c0, C, 1.0f, dx + n0 * C + c0, C) !=
                   FB_OK;
        } else if (t < n_dx + n_dw) {
            /* dW[o0:o1, c0:c1] += dy[:, o0:o1]ᵀ · x[:, c0:c1] */
            int64_t u = t - n_dx, o0 = (u / tc) * TILE_O, c0 = (u % tc) * TILE_C;
            int64_t rows = min64(TILE_O, OC - o0), cols = min64(TILE_C, C - c0);
            err |= fb_sgemm(ws, 1, 0, rows, cols, N, 1.0f, dy + o0, OC, x + c0, C, 1.0f, dW + o0 * C + c0, C) != FB_OK;
        } else {
            /* db[o0:o1] += Σ_n dy[n, o0:o1], rows in order */
            int64_t o0 = (t - n_dx - n_dw) * TILE_O, cols = min64(TILE_O, OC - o0);
            float acc[TILE_O] = {0};
            for (int64_t n = 0; n < N; n++)
                for (int64_t o = 0; o < cols; o++) acc[o] += dy[n * OC + o0 + o];
            for (int64_t o = 0; o < cols; o++) db[o0 + o] += acc[o];
        }
    }
    return err ? fb_fail(FB_ERR_WORKSPACE, "matmul_backward[blas]: a GEMM tile failed") : FB_OK;
}
