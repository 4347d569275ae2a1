/* fb_sgemm dispatch (see gemm.h): our AVX-512 kernel where the CPU has it and
 * the shape is worth packing, OpenBLAS otherwise. */
#include "ops/gemm.h"
#include "flashblock.h"
#include <cblas.h>

void fb_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    /* A few rows (decode GEMVs, memory bound) would spend more on packing all
     * of B than on FMAs: OpenBLAS. The choice looks at M only, never at N:
     * callers that split columns by thread count (matmul forward) then get
     * the same kernel, hence the same bits, for any number of threads (the
     * packed kernel's result for an element does not depend on N or on the
     * tile it sits in, only on K). */
    if (fb_cpu_best_isa() >= FB_ISA_AVX512 && M >= 8) {
        fb_sgemm_kernel_avx512(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}
