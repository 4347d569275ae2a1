/* Matmul y[N,OC] = x[N,C]·Wᵀ + b. The reference is three loops; the fast
 * path hands column blocks of y to fb_sgemm (ops/gemm.h: our AVX-512 kernel,
 * or OpenBLAS), one single-threaded call per OpenMP thread, which also
 * covers N = 1 (decode) as a parallel GEMV (fb_sgemm sends it to OpenBLAS). */
#include "ops/ops.h"
#include "ops/gemm.h"
#include <omp.h>
#include <string.h>

void matmul_forward_ref(const fb_op_args *a) {
    const float *x = a->in[0], *W = a->in[1], *b = a->in[2];
    float *y = a->out[0];
    int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t c = 0; c < C; c++) acc += (double)x[n * C + c] * W[o * C + c];
            y[n * OC + o] = (float)acc;
        }
}

void matmul_forward_blas(const fb_op_args *a) {
    const float *x = a->in[0], *W = a->in[1], *b = a->in[2];
    float *y = a->out[0];
    const int64_t N = a->d[0], C = a->d[1], OC = a->d[2];
    const int64_t work = N * C * OC;
    int nt = work < (1 << 16) ? 1 : omp_get_max_threads();
    /* Column blocks, multiples of 16 so each thread writes whole cache lines. */
    int64_t chunk = ((OC + nt - 1) / nt + 15) / 16 * 16;
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int t = 0; t < nt; t++) {
        int64_t o0 = (int64_t)t * chunk, o1 = o0 + chunk < OC ? o0 + chunk : OC;
        if (o0 < o1) {
            int64_t w = o1 - o0;
            if (b) {
                for (int64_t n = 0; n < N; n++) memcpy(y + n * OC + o0, b + o0, (size_t)w * sizeof(float));
            }
            fb_sgemm(0, 1, N, w, C, 1.0f, x, C, W + o0 * C, C, b ? 1.0f : 0.0f, y + o0, OC);
        }
    }
}
