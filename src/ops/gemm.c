/* fb_sgemm through the op table (see gemm.h): the reference, the OpenBLAS
 * variant and the call wrapper; the packed AVX-512 variant is gemm.simd.c. */
#include "ops/gemm.h"
#include "ops/ops.h"
#include <cblas.h>

fb_status sgemm_blas(const fb_op_args *a) {
    const int64_t *d = a->d;
    if (d[2] <= 0 || d[3] <= 0) return FB_OK;
    cblas_sgemm(CblasRowMajor, d[0] ? CblasTrans : CblasNoTrans, d[1] ? CblasTrans : CblasNoTrans, (int)d[2], (int)d[3],
                (int)d[4], a->f[0], fb_in_f32(a, 0), (int)d[5], fb_in_f32(a, 1), (int)d[6], a->f[1], fb_out_f32(a, 0),
                (int)d[7]);
    return FB_OK;
}

/* Three loops in double; beta == 0 never reads C, alpha == 0 never reads A, B. */
fb_status sgemm_ref(const fb_op_args *a) {
    const int ta = (int)a->d[0], tb = (int)a->d[1];
    const int64_t M = a->d[2], N = a->d[3], K = a->d[4], lda = a->d[5], ldb = a->d[6], ldc = a->d[7];
    const float *A = fb_in_f32(a, 0), *B = fb_in_f32(a, 1);
    float *C = fb_out_f32(a, 0);
    const double alpha = a->f[0], beta = a->f[1];
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0;
            if (alpha != 0)
                for (int64_t k = 0; k < K; k++)
                    acc += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            const double c = beta == 0 ? 0.0 : beta * C[i * ldc + j];
            C[i * ldc + j] = (float)(alpha * acc + c);
        }
    return FB_OK;
}

fb_status fb_sgemm(fb_workspace ws, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    fb_op_args a = {
        .in = {transA ? fb_src_f32(A, K, M, lda) : fb_src_f32(A, M, K, lda),
               transB ? fb_src_f32(B, N, K, ldb) : fb_src_f32(B, K, N, ldb)},
        .out = {fb_dst_f32(C, M, N, ldc)},
        .d = {transA, transB, M, N, K, lda, ldb, ldc},
        .f = {alpha, beta},
        .ws = ws,
    };
    return fb_op_run(FB_OP_SGEMM, &a);
}

size_t fb_sgemm_workspace(int64_t M) {
    fb_op_args a = {.d = {0, 0, M}};
    return fb_op_workspace(FB_OP_SGEMM, &a, 1);
}
