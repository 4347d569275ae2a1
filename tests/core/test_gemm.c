/*
 * fb_sgemm, every runnable variant of FB_OP_SGEMM and, on AVX-512 CPUs, the
 * packed kernel called directly on every shape (thin ones included, which
 * the variant sends to OpenBLAS) against a double-precision reference loop:
 * all four transpose combinations, alpha in {1, 0.5}, beta in {0, 1, 0.25},
 * strides larger than minimal, awkward sizes (1, 2, 7, 15, 16, 17, 31, 33,
 * 63, 64, 65, 100, 257, 768). With beta == 0, C starts as NaN (it must not be
 * read); A and B strides' padding holds NaN (it must not be used); the
 * padding of C's rows and guard words behind C must stay untouched.
 * Errors are measured relative to the reference's largest magnitude.
 */
#include "flashblock.h"
#include "core/runtime.h"
#include "op_harness.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "test_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 16
#define SENTINEL 12345.0f
static const int64_t SIZES[] = {1, 2, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 257, 768};
#define NSIZES ((int)(sizeof(SIZES) / sizeof(SIZES[0])))

/* The function under test: one of the ways in below. */
typedef void (*sgemm_fn)(FB_SGEMM_ARGS);

static int n_cases = 0;
static const fb_kernel *variant;   /* for run_variant */

/* Through fb_sgemm (the selected variant) with a workspace of its size. */
static void run_dispatch(FB_SGEMM_ARGS) {
    fb_workspace ws = {0};
    FB_CHECK(fb_workspace_reserve(&ws, fb_sgemm_workspace(M)) == FB_OK &&
                 fb_sgemm(ws, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == FB_OK,
             "fb_sgemm: %s", fb_last_error());
    fb_workspace_free(&ws);
}
/* One variant of the op, called directly. */
#define S(p) {.data = (p)}   /* fb_test_args_complete adds dtype and shape */
static void run_variant(FB_SGEMM_ARGS) {
    fb_op_args a = {.in = {S(A), S(B)}, .out = {S(C)}, .d = {transA, transB, M, N, K, lda, ldb, ldc}, .f = {alpha, beta}};
    fb_test_args_complete(FB_OP_SGEMM, &a);
    FB_CHECK(fb_test_run_kernel(variant, &a, 1) == FB_OK, "sgemm[%s]: %s", variant->name, fb_last_error());
}
/* The packed kernel itself, any M. */
static void run_packed(FB_SGEMM_ARGS) {
    float *pack = fb_aligned_alloc(fb_sgemm_pack_bytes());
    if (pack) fb_sgemm_kernel_avx512(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pack);
    free(pack);
}

static void run_case(const char *name, sgemm_fn fn, fb_test_rng *rng, int ta, int tb, int64_t M, int64_t N, int64_t K,
                     float alpha, float beta) {
    const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    const int64_t lda = ac + (int64_t)(fb_test_rng_u64(rng) % 3) * 5, ldb = bc + (int64_t)(fb_test_rng_u64(rng) % 3) * 3;
    const int64_t ldc = N + (int64_t)(fb_test_rng_u64(rng) % 3) * 7;
    float *A = malloc(sizeof(float) * (size_t)(ar * lda)), *B = malloc(sizeof(float) * (size_t)(br * ldb));
    float *C = malloc(sizeof(float) * (size_t)(M * ldc + GUARD)), *C0 = malloc(sizeof(float) * (size_t)(M * ldc));
    double *ref = malloc(sizeof(double) * (size_t)(M * N));
    for (int64_t i = 0; i < ar * lda; i++) A[i] = (i % lda) < ac ? 2.0f * fb_test_rng_uniform(rng) - 1.0f : NAN;
    for (int64_t i = 0; i < br * ldb; i++) B[i] = (i % ldb) < bc ? 2.0f * fb_test_rng_uniform(rng) - 1.0f : NAN;
    for (int64_t i = 0; i < M * ldc; i++)
        C0[i] = (i % ldc) >= N ? SENTINEL : beta == 0.0f ? NAN : 2.0f * fb_test_rng_uniform(rng) - 1.0f;
    memcpy(C, C0, sizeof(float) * (size_t)(M * ldc));
    for (int g = 0; g < GUARD; g++) C[M * ldc + g] = SENTINEL;
    double scale = 1e-30;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
            s *= alpha;
            if (beta != 0.0f) s += (double)beta * C0[i * ldc + j];
            ref[i * N + j] = s;
            if (fabs(s) > scale) scale = fabs(s);
        }
    fn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double err = 0;
    int bad_pad = 0, bad_guard = 0, nan = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < ldc; j++) {
            if (j >= N) { bad_pad |= C[i * ldc + j] != SENTINEL; continue; }
            double e = fabs((double)C[i * ldc + j] - ref[i * N + j]);
            if (e != e) nan = 1;
            else if (e > err) err = e;
        }
    for (int g = 0; g < GUARD; g++) bad_guard |= C[M * ldc + g] != SENTINEL;
    FB_CHECK(err / scale <= 1e-5 && !nan && !bad_pad && !bad_guard,
             "%s ta=%d tb=%d M=%lld N=%lld K=%lld alpha=%g beta=%g lda=%lld ldb=%lld ldc=%lld: rel err %.3g nan %d pad %d "
             "guard %d",
             name, ta, tb, (long long)M, (long long)N, (long long)K, alpha, beta, (long long)lda, (long long)ldb,
             (long long)ldc, err / scale, nan, bad_pad, bad_guard);
    n_cases++;
    free(A); free(B); free(C); free(C0); free(ref);
}

static void run_all(const char *name, sgemm_fn fn) {
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 1234);
    const float alphas[] = {1.0f, 0.5f}, betas[] = {0.0f, 1.0f, 0.25f};
    /* every small shape, every transpose */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int im = 0; im < 8; im++)
                for (int in = 0; in < 8; in++)
                    for (int ik = 0; ik < 8; ik++)
                        run_case(name, fn, &rng, ta, tb, SIZES[im], SIZES[in], SIZES[ik], alphas[(im + ik) % 2],
                                 betas[(in + ik) % 3]);
    /* random mixes of all sizes, bounded work, every alpha/beta */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int ab = 0; ab < 6; ab++)
                for (int c = 0; c < 10;) {
                    int64_t M = SIZES[fb_test_rng_u64(&rng) % NSIZES], N = SIZES[fb_test_rng_u64(&rng) % NSIZES];
                    int64_t K = SIZES[fb_test_rng_u64(&rng) % NSIZES];
                    if (M * N * K > 12000000 || M * N * K < 4000) continue;
                    run_case(name, fn, &rng, ta, tb, M, N, K, alphas[ab % 2], betas[ab / 2]);
                    c++;
                }
    /* a few large ones: several KC blocks, several MC blocks, edge tiles */
    run_case(name, fn, &rng, 0, 1, 257, 100, 768, 1.0f, 0.0f);
    run_case(name, fn, &rng, 0, 0, 100, 257, 768, 1.0f, 1.0f);
    run_case(name, fn, &rng, 1, 0, 65, 768, 257, 0.5f, 0.25f);
    run_case(name, fn, &rng, 1, 1, 300, 65, 600, 1.0f, 0.0f);
    run_case(name, fn, &rng, 0, 1, 17, 1600, 65, 1.0f, 1.0f); /* more than one NC block */
    /* K == 0 and alpha == 0: C = beta·C, A and B never read */
    run_case(name, fn, &rng, 0, 0, 17, 33, 0, 1.0f, 0.25f);
    run_case(name, fn, &rng, 0, 0, 17, 33, 0, 1.0f, 0.0f);
    run_case(name, fn, &rng, 1, 1, 17, 33, 15, 0.0f, 0.25f);
}

int main(void) {
    run_all("fb_sgemm", run_dispatch);
    int n_variants = 0;
    for (variant = fb_op_get(FB_OP_SGEMM)->variants; variant->fn; variant++)
        if (fb_kernel_runnable(variant)) {
            run_all(variant->name, run_variant);
            n_variants++;
        }
    if (fb_cpu_best_isa() >= FB_ISA_AVX512) run_all("fb_sgemm_kernel_avx512", run_packed);
    else printf("test_gemm: no AVX-512 on this CPU, packed kernel not tested directly\n");
    printf("test_gemm: %d sgemm variant(s) run (selected: %s)\n", n_variants, fb_op_selected_variant(FB_OP_SGEMM));
    printf("test_gemm: %d cases\n", n_cases);
    return fb_test_finish("test_gemm");
}
