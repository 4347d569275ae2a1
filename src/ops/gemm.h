/*
 * fb_sgemm: single-precision GEMM, row-major, BLAS semantics:
 *   C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C
 * op(X) = X (trans 0) or Xᵀ (trans 1); lda/ldb/ldc are row strides of the
 * matrices as stored. beta == 0 never reads C (it may hold NaN garbage),
 * alpha == 0 or K == 0 never reads A, B.
 *
 * Single-threaded on purpose: callers cut their outputs into tiles and run
 * one call per tile on their own OpenMP threads, so the result of every
 * element depends only on the call's arguments, never on the thread count.
 *
 * On CPUs with AVX-512 (fb_cpu_best_isa(), so FLASHBLOCK_ISA can force it
 * off) calls with M >= 8 go to our own packed kernel (gemm.simd.c,
 * BLIS/Goto style: 12x32 micro-kernel); thinner ones (decode GEMVs) and the
 * other ISAs go to OpenBLAS cblas_sgemm. The packed kernel's value for an
 * element depends only on K (its KC blocking), alpha, beta and the data,
 * not on M, N or where the element sits: splitting the columns of a GEMM
 * over threads in any way gives the same bits.
 */
#ifndef FB_OPS_GEMM_H
#define FB_OPS_GEMM_H
#include <stdint.h>

void fb_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* The per-ISA bodies behind fb_sgemm (tests call them directly). The
 * avx512 one is the packed kernel (any shape; needs an AVX-512 CPU); the
 * generic and avx2 builds just call cblas_sgemm. */
#define FB_SGEMM_ARGS                                                                                                \
    int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B, \
        int64_t ldb, float beta, float *C, int64_t ldc
void fb_sgemm_kernel_generic(FB_SGEMM_ARGS);
void fb_sgemm_kernel_avx2(FB_SGEMM_ARGS);
void fb_sgemm_kernel_avx512(FB_SGEMM_ARGS);

#endif
