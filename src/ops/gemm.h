/*
 * fb_sgemm: single-precision GEMM, row-major, BLAS semantics:
 *   C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C
 * op(X) = X (trans 0) or Xᵀ (trans 1); lda/ldb/ldc are row strides of the
 * matrices as stored. beta == 0 never reads C (it may hold NaN garbage),
 * alpha == 0 or K == 0 never reads A, B.
 *
 * It is an op of the table (FB_OP_SGEMM), so the choice of kernel is a
 * variant like any other: "packed_avx512" (our BLIS/Goto style kernel,
 * gemm.simd.c: 12x32 micro-kernel) where AVX-512 is usable, else "blas"
 * (OpenBLAS cblas_sgemm). The packed variant sends calls with M < 8 (decode
 * GEMVs: packing all of B would cost more than the FMAs) to OpenBLAS too.
 * The choice looks at M only, never at N: callers that split columns by
 * thread count (matmul forward) get the same kernel, hence the same bits,
 * for any number of threads, and the packed kernel's value for an element
 * depends only on K (its KC blocking), alpha, beta and the data, not on M, N
 * or where the element sits.
 *
 * Single-threaded on purpose: callers cut their outputs into tiles and run
 * one call per tile on their own OpenMP threads, each with its own slice of
 * workspace (fb_sgemm_workspace(M) bytes: the pack buffers), so the result
 * of every element depends only on the call's arguments.
 */
#ifndef FB_OPS_GEMM_H
#define FB_OPS_GEMM_H
#include "flashblock.h"
#include "ops/workspace.h"
#include <stdint.h>

fb_status fb_sgemm(fb_workspace ws, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* Workspace of one fb_sgemm call with M rows, for the selected variant. */
size_t fb_sgemm_workspace(int64_t M);

/* The packed AVX-512 kernel itself, any shape (needs an AVX-512 CPU; tests
 * call it directly); pack holds fb_sgemm_pack_bytes(), 64-byte aligned. */
#define FB_SGEMM_ARGS                                                                                                \
    int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B, \
        int64_t ldb, float beta, float *C, int64_t ldc
void   fb_sgemm_kernel_avx512(FB_SGEMM_ARGS, float *pack);
size_t fb_sgemm_pack_bytes(void);
#endif
