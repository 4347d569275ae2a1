/* The "packed_avx512" variant of FB_OP_SGEMM (see gemm.h). Compiled once
 * per ISA like every *.simd.c file, but only the AVX-512 build has code: the
 * other builds have no sgemm of their own (the "blas" variant is gemm.c).
 *
 * AVX-512 kernel, BLIS/GotoBLAS style:
 *   for jc (NC columns of C)
 *     for pc (KC deep): pack op(B)[pc:+KC, jc:+NC] into slivers KC x NR
 *       for ic (MC rows): pack op(A)[ic:+MC, pc:+KC] into panels MR x KC
 *         for jr, ir: micro-kernel MR x NR (12 x 32: 24 zmm accumulators,
 *                     per k 2 loads of B, 12 broadcasts of A, 24 FMAs)
 * Packing absorbs the transposes (a 16x16 in-register transpose where the
 * source is contiguous along K), zero-pads panels to MR / NR, and edge tiles
 * are written with masked stores. The first KC block applies beta, later
 * ones accumulate (beta = 1). The pack buffers (an A block and a B block,
 * fb_sgemm_pack_bytes()) are the call's workspace: the caller gives each of
 * its threads its own. */
#include "core/simd.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include <cblas.h>
#include <string.h>

#if !defined(__AVX512F__)

typedef int fb_gemm_simd_no_kernel_in_this_build;

#else

#define MR 12
#define NR 32
#define NV (NR / 16)
#ifndef KC
#define KC 384   /* B sliver KC x NR = 48 KiB: L1-sized; K = 768 in two blocks */
#endif
#ifndef MC
#define MC 120   /* multiple of MR; A block MC x KC = 180 KiB stays in L2 */
#endif
#ifndef NC
#define NC 768   /* multiple of NR; B block KC x NC = 1.1 MiB */
#endif

/* Pack buffers: the A block, then the B block (1.4 MiB in all). */
#define PACK_A_FLOATS ((size_t)MC * KC)
#define PACK_FLOATS (PACK_A_FLOATS + (size_t)NC * KC)
_Static_assert(MC % MR == 0 && NC % NR == 0 && PACK_A_FLOATS % 16 == 0, "GEMM blocking: B block must stay 64-byte aligned");

size_t fb_sgemm_pack_bytes(void) { return PACK_FLOATS * sizeof(float); }

static inline __mmask16 mask_n(int64_t n) { /* first n lanes, n clamped to [0, 16] */
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

#ifndef PF_AHEAD
#define PF_AHEAD 8 /* cache lines ahead that pack_transpose16 prefetches */
#endif

#ifndef PF_ROWS
#define PF_ROWS 4 /* rows ahead that pack_copy prefetches */
#endif

/* In-register transpose of 16 rows of 16 floats. */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* r[4g + j] now holds, in each 128-bit lane L, column 4L + j of rows 4g..4g+3 */
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++) {
            t[8 * h + j] = _mm512_shuffle_f32x4(r[8 * h + j], r[8 * h + 4 + j], 0x88);
            t[8 * h + 4 + j] = _mm512_shuffle_f32x4(r[8 * h + j], r[8 * h + 4 + j], 0xDD);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    }
}

/* dst[k*W + r] = src[r*ld + k] for r < rows (<= 16), k < kc; lanes rows..15
 * of each destination group are written as 0 only up to W (W = 12 or 16). */
static void pack_transpose16(float *restrict dst, int W, const float *restrict src, int64_t ld, int64_t rows, int64_t kc) {
    const __mmask16 wm = mask_n(W);
    int64_t k = 0;
    for (; k < kc; k += 16) {
        const __mmask16 km = mask_n(kc - k);
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_maskz_loadu_ps(km, src + i * ld + k) : _mm512_setzero_ps();
        /* rows far apart (e.g. the [rows, 50257] logits) defeat the hardware prefetcher */
        if (k + 16 * PF_AHEAD < kc)
            for (int i = 0; i < rows; i++) _mm_prefetch((const char *)(src + i * ld + k + 16 * PF_AHEAD), _MM_HINT_T0);
        transpose16(r);
        const int64_t kn = kc - k < 16 ? kc - k : 16;
        for (int i = 0; i < kn; i++) _mm512_mask_storeu_ps(dst + (k + i) * W, wm, r[i]);
    }
}

/* Panels of W (12 or 32) columns from a source contiguous along them:
 * panel p gets dst[p*W*kc + k*W + r] = src[k*ld + p*W + r] for p*W + r < cols,
 * zero up to W. Rows k outer: each source row is read once, left to right
 * (rows may be far apart, e.g. the [rows, 50257] logits: a panel-by-panel
 * walk would fetch every cache line with a stride the prefetchers miss). */
static void pack_copy(float *restrict dst, int W, const float *restrict src, int64_t ld, int64_t cols, int64_t kc) {
    const int64_t np = (cols + W - 1) / W;
    for (int64_t k = 0; k < kc; k++) {
        const float *s = src + k * ld;
        if (k + PF_ROWS < kc)
            for (int64_t c = 0; c < cols; c += 16) _mm_prefetch((const char *)(s + PF_ROWS * ld + c), _MM_HINT_T0);
        for (int64_t p = 0; p < np; p++) {
            const int64_t n = cols - p * W < W ? cols - p * W : W;
            float *d = dst + (p * kc + k) * W;
            _mm512_mask_storeu_ps(d, mask_n(W), _mm512_maskz_loadu_ps(mask_n(n), s + p * W));
            if (W > 16) _mm512_mask_storeu_ps(d + 16, mask_n(W - 16), _mm512_maskz_loadu_ps(mask_n(n - 16), s + p * W + 16));
        }
    }
}

/* op(A)[i0:+mc, p0:+kc] -> panels of MR rows, each kc x MR (row index fastest). */
static void pack_a(float *restrict dst, int transA, const float *A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
    if (transA) {   /* A[k*lda + i] */
        pack_copy(dst, MR, A + p0 * lda + i0, lda, mc, kc);
        return;
    }
    for (int64_t ir = 0; ir < mc; ir += MR) {   /* A[i*lda + k] */
        const int64_t rows = mc - ir < MR ? mc - ir : MR;
        pack_transpose16(dst + ir * kc, MR, A + (i0 + ir) * lda + p0, lda, rows, kc);
    }
}

/* op(B)[p0:+kc, j0:+nc] -> slivers of NR columns, each kc x NR (column index fastest). */
static void pack_b(float *restrict dst, int transB, const float *B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc) {
    if (!transB) {   /* B[k*ldb + j] */
        pack_copy(dst, NR, B + p0 * ldb + j0, ldb, nc, kc);
        return;
    }
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int64_t cols = nc - jr < NR ? nc - jr : NR;
        float *d = dst + jr * kc;
        for (int h = 0; h < NR / 16; h++) /* B[j*ldb + k]: two 16-row transposes */
            pack_transpose16(d + 16 * h, NR, B + (j0 + jr + 16 * h) * ldb + p0, ldb,
                             cols - 16 * h > 16 ? 16 : (cols - 16 * h > 0 ? cols - 16 * h : 0), kc);
    }
}

/* C[0:mr, 0:nr] = alpha · a·b + beta · C (beta == 0: C not read). */
static void micro_kernel(int64_t kc, const float *restrict a, const float *restrict b, float *C, int64_t ldc, int64_t mr,
                         int64_t nr, float alpha, float beta) {
    __m512 c[MR][NV];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) c[i][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m512 bv[NV];
        for (int v = 0; v < NV; v++) bv[v] = _mm512_load_ps(b + 16 * v);
        for (int i = 0; i < MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            for (int v = 0; v < NV; v++) c[i][v] = _mm512_fmadd_ps(ai, bv[v], c[i][v]);
        }
        a += MR;
        b += NR;
    }
    __mmask16 m[NV];
    for (int v = 0; v < NV; v++) m[v] = mask_n(nr - 16 * v);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < MR; i++) {
        if (i >= mr) break;
        float *cr = C + i * ldc;
        for (int v = 0; v < NV; v++) {
            __m512 r;
            if (beta == 0.0f) r = _mm512_mul_ps(va, c[i][v]);
            else if (beta == 1.0f) r = _mm512_fmadd_ps(va, c[i][v], _mm512_maskz_loadu_ps(m[v], cr + 16 * v));
            else r = _mm512_fmadd_ps(va, c[i][v], _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m[v], cr + 16 * v)));
            _mm512_mask_storeu_ps(cr + 16 * v, m[v], r);
        }
    }
}

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

void fb_sgemm_kernel_avx512(FB_SGEMM_ARGS, float *pack) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        if (beta != 1.0f) scale_c(M, N, beta, C, ldc);
        return;
    }
    float *pa = pack, *pb = pa + PACK_A_FLOATS;
    for (int64_t jc = 0; jc < N; jc += NC) {
        const int64_t nc = N - jc < NC ? N - jc : NC;
        for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = K - pc < KC ? K - pc : KC;
            const float beta_k = pc == 0 ? beta : 1.0f;
            pack_b(pb, transB, B, ldb, pc, kc, jc, nc);
            for (int64_t ic = 0; ic < M; ic += MC) {
                const int64_t mc = M - ic < MC ? M - ic : MC;
                pack_a(pa, transA, A, lda, ic, mc, pc, kc);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t nr = nc - jr < NR ? nc - jr : NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t mr = mc - ir < MR ? mc - ir : MR;
                        micro_kernel(kc, pa + ir * kc, pb + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha,
                                     beta_k);
                    }
                }
            }
        }
    }
}

/* The variant: M >= 8 packs, thinner calls go to OpenBLAS (gemm.h). */
#define PACK_MIN_M 8

size_t sgemm_packed_ws(const fb_op_args *a, int n_threads) {
    (void)n_threads;   /* single-threaded */
    return a->d[2] >= PACK_MIN_M ? fb_sgemm_pack_bytes() : 0;
}

fb_status sgemm_packed_avx512(const fb_op_args *a) {
    const int64_t *d = a->d;
    if (d[2] < PACK_MIN_M) {
        if (d[2] > 0 && d[3] > 0)
            cblas_sgemm(CblasRowMajor, d[0] ? CblasTrans : CblasNoTrans, d[1] ? CblasTrans : CblasNoTrans, (int)d[2],
                        (int)d[3], (int)d[4], a->f[0], fb_in_f32(a, 0), (int)d[5], fb_in_f32(a, 1), (int)d[6], a->f[1],
                        fb_out_f32(a, 0), (int)d[7]);
        return FB_OK;
    }
    FB_TRY(fb_ws_check(a, sgemm_packed_ws(a, 1), "sgemm[packed_avx512]"));
    fb_sgemm_kernel_avx512((int)d[0], (int)d[1], d[2], d[3], d[4], a->f[0], fb_in_f32(a, 0), d[5], fb_in_f32(a, 1),
                           d[6], a->f[1], fb_out_f32(a, 0), d[7], a->ws.data);
    return FB_OK;
}

#endif
