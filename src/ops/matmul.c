/* Matmul y[N,OC] = x[N,C]·Wᵀ + b. The reference is three loops; the fast
 * path hands column blocks of y to fb_sgemm (ops/gemm.h: our AVX-512 kernel,
 * or OpenBLAS), one single-threaded call per OpenMP thread, which also
 * covers N = 1 (decode) as a parallel GEMV (fb_sgemm sends it to OpenBLAS). */
#include "ops/ops.h"
#include "ops/gemm.h"
#include <omp.h>
#include <string.h>

/* Threads the BLAS path uses: one below 64K multiply-adds. */
static int blas_threads(const int64_t *d, int n_threads) { return d[0] * d[1] * d[2] < (1 << 16) ? 1 : n_threads; }

/* One fb_sgemm workspace (pack buffers) per thread. */
size_t matmul_forward_blas_ws(const fb_op_args *a, int n_threads) {
    return (size_t)blas_threads(a->d, n_threads) * fb_ws_round(fb_sgemm_workspace(a->d[0]));
}

/* The GEMV variants hand more than 8 rows to the BLAS path. */
size_t matmul_forward_gemv_ws(const fb_op_args *a, int n_threads) {
    return a->d[0] > 8 ? matmul_forward_blas_ws(a, n_threads) : 0;
}

fb_status matmul_forward_ref(const fb_op_args *a) {
    const float *x = fb_in_f32(a, 0), *W = fb_in_f32(a, 1), *b = fb_in_f32(a, 2);
    float *y = fb_out_f32(a, 0);
    int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t c = 0; c < C; c++) acc += (double)x[n * C + c] * W[o * C + c];
            y[n * OC + o] = (float)acc;
        }
    return FB_OK;
}

fb_status matmul_forward_blas(const fb_op_args *a) {
    const float *x = fb_in_f32(a, 0), *W = fb_in_f32(a, 1), *b = fb_in_f32(a, 2);
    float *y = fb_out_f32(a, 0);
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    const int nt = blas_threads(a->d, omp_get_max_threads());
    FB_TRY(fb_ws_check(a, matmul_forward_blas_ws(a, omp_get_max_threads()), "matmul_forward[blas]"));
    const size_t per_thread = fb_ws_round(fb_sgemm_workspace(N));
    /* Column blocks, multiples of 16 so each thread writes whole cache lines.
     * Their number follows the machine's cores, not the thread count: a
     * BLAS may round a column differently depending on the block it is in
     * (OpenBLAS does), and results must be the same bits for any --threads.
     * (Not a fixed larger count: every block packs x again, which costs
     * about 5% of a 512-token prefill at 16 blocks on 2 cores.) */
    const int64_t procs = omp_get_num_procs(), max_blocks = (OC + 63) / 64;
    const int64_t n_blocks = blas_threads(a->d, 2) == 1 ? 1 : procs < max_blocks ? procs : max_blocks;
    const int64_t chunk = ((OC + n_blocks - 1) / n_blocks + 15) / 16 * 16;
    int err = 0;
    #pragma omp parallel for schedule(static) num_threads(nt) reduction(| : err)
    for (int64_t t = 0; t < n_blocks; t++) {
        int64_t o0 = t * chunk, o1 = o0 + chunk < OC ? o0 + chunk : OC;
        if (o0 < o1) {
            int64_t w = o1 - o0;
            if (b) {
                for (int64_t n = 0; n < N; n++) memcpy(y + n * OC + o0, b + o0, (size_t)w * sizeof(float));
            }
            err |= fb_sgemm(fb_ws_slice(a->ws, (size_t)omp_get_thread_num() * per_thread, per_thread), 0, 1, N, w, C, 1.0f, x, C,
                            W + o0 * C, C, b ? 1.0f : 0.0f, y + o0, OC) != FB_OK;
        }
    }
    return err ? fb_fail(FB_ERR_WORKSPACE, "matmul_forward[blas]: a GEMM tile failed") : FB_OK;
}
