/*
 * FlashAttention backward (Dao 2023, FlashAttention-2) for the CPU: P is
 * recomputed tile by tile from Q, K and the saved logsumexp; no T×T buffer.
 *
 * Everything is computed in the transposed orientation of the forward: score
 * tiles are St[j][r] (BC keys × BR queries), so rows of K and V are read in
 * place as the broadcast operand and the vectors run over queries.
 *
 * Pass 0, over (batch, head, query tile):
 *   Qt  = the query tile transposed to [D][BR], times scale·log2(e)
 *   dOt = the dO tile transposed to [D][BR]
 *   lse2 = lse·log2(e) (+inf for padding rows and rows that see no key, so
 *          that P = 0 there), Dv = rowsum(dO ∘ O)
 *   (O(B·H·T·D) scratch: two transposed copies of the query-sized tensors.)
 * For every (key tile, query tile) pair that is not fully masked:
 *   St  = K·Qtᵀ, dPt = V·dOtᵀ            (4 rows × 4 vectors register blocks)
 *   P   = 2^(St − lse2), masked only on diagonal tiles
 *   dS  = P ∘ (dPt − Dv)
 * Pass 1, over (batch, KV head, key tile): the item owns dK/dV of its tile
 *   and loops over every query head of its group and every query tile:
 *   dV += Pᵀ·dO, dK += dSᵀ·Q   (Q and dO rows read in place); dK ·= scale.
 * Pass 2, over (batch, head, query tile): recomputes P and dS for every key
 *   tile and accumulates dQ += dS·K over key tiles in order; dQ ·= scale.
 *   (One more QKᵀ and dO·Vᵀ than an atomic dQ, but race-free.)
 * Every output element is produced by exactly one work item, which runs the
 * same operations in the same order whatever the thread count, so gradients
 * are bitwise identical across runs and thread counts.
 */
#include "core/simd.h"
#include "attention/attention_plan.h"
#include <math.h>
#include <omp.h>
#include <string.h>

#define BR FLASH_BWD_BR   /* queries per tile */
#define BC FLASH_BWD_BC   /* keys per tile */
#define RB 4           /* rows per register block */
#if FV_N == 8
#define NV 2           /* AVX2: 16 registers, 4×2 accumulators fit without spills */
#else
#define NV 4           /* vectors per register block */
#endif
#define LOG2E 1.44269504088896341f

#define ROUND_UP(x, m) (((x) + (m) - 1) / (m) * (m))


static const float iota[BR] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                               16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                               32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
                               48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

/* C[j][0..BR) = Σ_d A[j·lda + d]·Bt[d·BR + ·] for rows j in [0, rows), rows a
 * multiple of RB (A rows read in place: K or V). */
static void tile_scores(float *restrict C, const float *restrict A, int64_t lda, const float *restrict Bt, int rows,
                        int D) {
    for (int j = 0; j < rows; j += RB) {
        const float *a0 = A + j * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        for (int c0 = 0; c0 < BR; c0 += NV * FV_N) {
            fvec acc[RB][NV];
            for (int i = 0; i < RB; i++)
                for (int u = 0; u < NV; u++) acc[i][u] = fv_zero();
            for (int d = 0; d < D; d++) {
                const float *bt = Bt + d * BR + c0;
                fvec bv[NV];
                for (int u = 0; u < NV; u++) bv[u] = fv_load(bt + u * FV_N);
                const fvec x0 = fv_set1(a0[d]), x1 = fv_set1(a1[d]), x2 = fv_set1(a2[d]), x3 = fv_set1(a3[d]);
                for (int u = 0; u < NV; u++) {
                    acc[0][u] = fv_fma(x0, bv[u], acc[0][u]);
                    acc[1][u] = fv_fma(x1, bv[u], acc[1][u]);
                    acc[2][u] = fv_fma(x2, bv[u], acc[2][u]);
                    acc[3][u] = fv_fma(x3, bv[u], acc[3][u]);
                }
            }
            for (int i = 0; i < RB; i++)
                for (int u = 0; u < NV; u++) fv_store(C + (j + i) * BR + c0 + u * FV_N, acc[i][u]);
        }
    }
}

/* C[i][0..D) += Σ_k A[i·ars + k·aks]·X[k·xs + 0..D) for i in [0, rows) (a
 * multiple of RB), k in [0, K). C rows are Dp floats apart (padded scratch);
 * X rows are read in place, the last vector of a row with a masked load. */
static inline __attribute__((always_inline)) void tile_acc(float *restrict C, int Dp, const float *restrict A,
                                                           int ars, int aks, const float *restrict X, int64_t xs,
                                                           int rows, int K, int D) {
    for (int r = 0; r < rows; r += RB) {
        const float *ar = A + r * ars;
        for (int d0 = 0; d0 < D; d0 += NV * FV_N) {
            int nvec = (D - d0 + FV_N - 1) / FV_N;
            if (nvec > NV) nvec = NV;
            const int rest = (D - d0) - (nvec - 1) * FV_N;
            const int tail = rest < FV_N ? rest : FV_N;
            fvec acc[RB][NV];
            for (int i = 0; i < RB; i++)
                for (int u = 0; u < NV; u++) acc[i][u] = u < nvec ? fv_load(C + (r + i) * Dp + d0 + u * FV_N) : fv_zero();
            if (nvec == NV && tail == FV_N) {
                for (int k = 0; k < K; k++) {
                    const float *xr = X + k * xs + d0;
                    fvec xv[NV];
                    for (int u = 0; u < NV; u++) xv[u] = fv_load(xr + u * FV_N);
                    const float *ak = ar + k * aks;
                    const fvec p0 = fv_set1(ak[0]), p1 = fv_set1(ak[ars]), p2 = fv_set1(ak[2 * ars]),
                               p3 = fv_set1(ak[3 * ars]);
                    for (int u = 0; u < NV; u++) {
                        acc[0][u] = fv_fma(p0, xv[u], acc[0][u]);
                        acc[1][u] = fv_fma(p1, xv[u], acc[1][u]);
                        acc[2][u] = fv_fma(p2, xv[u], acc[2][u]);
                        acc[3][u] = fv_fma(p3, xv[u], acc[3][u]);
                    }
                }
            } else {
                for (int k = 0; k < K; k++) {
                    const float *xr = X + k * xs + d0;
                    fvec xv[NV];
                    for (int u = 0; u < NV; u++)
                        xv[u] = u < nvec - 1 ? fv_load(xr + u * FV_N)
                                             : (u == nvec - 1 ? fv_loadn(xr + u * FV_N, tail) : fv_zero());
                    const float *ak = ar + k * aks;
                    for (int i = 0; i < RB; i++) {
                        const fvec p = fv_set1(ak[i * ars]);
                        for (int u = 0; u < NV; u++) acc[i][u] = fv_fma(p, xv[u], acc[i][u]);
                    }
                }
            }
            for (int i = 0; i < RB; i++)
                for (int u = 0; u < nvec; u++) fv_store(C + (r + i) * Dp + d0 + u * FV_N, acc[i][u]);
        }
    }
}

/* St (log2 scores) becomes P = 2^(St − lse2), dPt becomes dS = P ∘ (dPt − Dv),
 * for key rows [0, rows). diag: key j is hidden from query columns
 * r < lim0 + j (causal diagonal tile). */
static void tile_softmax_grad(float *restrict St, float *restrict dPt, const float *restrict lse2,
                              const float *restrict Dv, int rows, int diag, int64_t lim0) {
    for (int j = 0; j < rows; j++) {
        float *s = St + j * BR, *dp = dPt + j * BR;
        const int64_t lim = diag ? lim0 + j : 0;
        for (int r0 = 0; r0 < BR; r0 += FV_N) {
            fvec p = fv_exp2(fv_sub(fv_load(s + r0), fv_load(lse2 + r0)));
            if (lim > r0) p = fv_zero_below(p, fv_load(iota + r0), (float)lim);
            fv_store(s + r0, p);
            fv_store(dp + r0, fv_mul(p, fv_sub(fv_load(dp + r0), fv_load(Dv + r0))));
        }
    }
}

/* Rows [0, n) of an in-place tile into Kp [rows_p][Dp] with zero padding. */
static void pack_rows(float *restrict dst, int Dp, const float *restrict src, int64_t stride, int n, int rows_p,
                      int D) {
    for (int j = 0; j < rows_p; j++) {
        if (j < n) memcpy(dst + j * Dp, src + j * stride, sizeof(float) * (size_t)D);
        else memset(dst + j * Dp, 0, sizeof(float) * (size_t)D);
    }
}

fb_status FB_SIMD(flash_attention_backward)(const fb_op_args *a) {
    const float *q = fb_in_f32(a, 0), *k = fb_in_f32(a, 1), *v = fb_in_f32(a, 2);
    const float *o = fb_in_f32(a, 3), *lse = fb_in_f32(a, 4), *dout = fb_in_f32(a, 5);
    float *dq = fb_out_f32(a, 0), *dk = fb_out_f32(a, 1), *dv = fb_out_f32(a, 2);
    const int64_t B = a->d[0], Tq = a->d[1], Tk = a->d[2], H = a->d[3], Hkv = a->d[4];
    const int D = (int)a->d[5];
    const int causal = (int)a->d[6];
    const int64_t qs = a->d[7], kvs = a->d[8], os = a->d[9];
    const float scale = a->f[0] > 0 ? a->f[0] : 1.0f / sqrtf((float)D);
    const int64_t group = H / Hkv, offset = Tk - Tq;
    const int Dp = (int)ROUND_UP(D, 16);
    const int64_t n_qt = (Tq + BR - 1) / BR, n_kt = (Tk + BC - 1) / BC;
    const int64_t n_qitems = B * H * n_qt, n_kitems = B * Hkv * n_kt;
    const float qscale = scale * LOG2E;
    const size_t tile = (size_t)D * BR;   /* one transposed query tile */

    /* Workspace: the transposed query-sized tiles of every item (shared),
     * then a few tiles per thread (attention_plan.h). */
    FB_TRY(fb_ws_check(a, flash_attention_backward_ws(a, omp_get_max_threads()), "attention_backward[flash]"));
    const size_t shared = flash_bwd_shared_bytes(a->d), per_thread = flash_bwd_thread_bytes(a->d);
    float *Qt = a->ws.data, *dOt = Qt + (size_t)n_qitems * tile;
    float *lse2 = dOt + (size_t)n_qitems * tile, *Dvec = lse2 + n_qitems * BR;

    #pragma omp parallel if (n_qitems + n_kitems > 2)
    {
        float *scratch = (float *)((char *)a->ws.data + shared + (size_t)omp_get_thread_num() * per_thread);
        float *St = scratch, *dPt = St + BC * BR, *Kp = dPt + BC * BR, *Vp = Kp + BC * Dp;
        float *dKa = Vp + BC * Dp, *dVa = dKa + BC * Dp, *dQa = dVa + BC * Dp;

        /* Pass 0: transposed Q and dO tiles, lse in log2, Dv = rowsum(dO ∘ O). */
        #pragma omp for schedule(static)
        for (int64_t item = 0; item < n_qitems; item++) {
            const int64_t bh = item / n_qt, qt = item % n_qt, b = bh / H, h = bh % H, i0 = qt * BR;
            const int rows = (int)(Tq - i0 < BR ? Tq - i0 : BR);
            float *qt_ = Qt + (size_t)item * tile, *dot = dOt + (size_t)item * tile;
            float *l2 = lse2 + item * BR, *dvv = Dvec + item * BR;
            for (int r = 0; r < BR; r++) {
                if (r >= rows) {
                    for (int d = 0; d < D; d++) qt_[d * BR + r] = dot[d * BR + r] = 0.0f;
                    l2[r] = INFINITY;
                    dvv[r] = 0.0f;
                    continue;
                }
                const int64_t row = b * Tq + i0 + r;
                const float *qr = q + row * qs + h * D, *dr = dout + row * os + h * D, *orow = o + row * os + h * D;
                float acc = 0.0f;
                for (int d = 0; d < D; d++) {
                    qt_[d * BR + r] = qr[d] * qscale;
                    dot[d * BR + r] = dr[d];
                    acc += dr[d] * orow[d];
                }
                const float l = lse[(b * H + h) * Tq + i0 + r];
                l2[r] = l == -INFINITY ? INFINITY : l * LOG2E;
                dvv[r] = acc;
            }
        }

        /* Pass 1: dK, dV of one key tile of one KV head, summed over its query heads. */
        #pragma omp for schedule(dynamic, 1)
        for (int64_t item = 0; item < n_kitems; item++) {
            /* Causal: early key tiles are seen by more queries, so they go first. */
            const int64_t kt = item / (B * Hkv), bkh = item % (B * Hkv), b = bkh / Hkv, kh = bkh % Hkv;
            const int64_t j0 = kt * BC;
            const int n = (int)(Tk - j0 < BC ? Tk - j0 : BC), n_p = (int)ROUND_UP(n, RB);
            const float *kb = k + (b * Tk + j0) * kvs + kh * D, *vb = v + (b * Tk + j0) * kvs + kh * D;
            const float *Ka = kb, *Va = vb;
            int64_t lda = kvs;
            if (n_p != n) {
                pack_rows(Kp, Dp, kb, kvs, n, n_p, D);
                pack_rows(Vp, Dp, vb, kvs, n, n_p, D);
                Ka = Kp; Va = Vp; lda = Dp;
            }
            memset(dKa, 0, sizeof(float) * (size_t)(n_p * Dp));
            memset(dVa, 0, sizeof(float) * (size_t)(n_p * Dp));
            for (int64_t h = kh * group; h < (kh + 1) * group; h++)
                for (int64_t qt = 0; qt < n_qt; qt++) {
                    const int64_t i0 = qt * BR;
                    const int rows = (int)(Tq - i0 < BR ? Tq - i0 : BR);
                    if (causal && i0 + rows - 1 + offset < j0) continue;   /* fully masked */
                    const int diag = causal && j0 + n - 1 > i0 + offset;
                    const int64_t qi = (b * H + h) * n_qt + qt;
                    tile_scores(St, Ka, lda, Qt + (size_t)qi * tile, n_p, D);
                    tile_scores(dPt, Va, lda, dOt + (size_t)qi * tile, n_p, D);
                    tile_softmax_grad(St, dPt, lse2 + qi * BR, Dvec + qi * BR, n_p, diag, j0 - i0 - offset);
                    const int64_t row0 = b * Tq + i0;
                    tile_acc(dVa, Dp, St, BR, 1, dout + row0 * os + h * D, os, n_p, rows, D);
                    tile_acc(dKa, Dp, dPt, BR, 1, q + row0 * qs + h * D, qs, n_p, rows, D);
                }
            for (int j = 0; j < n; j++) {
                float *gk = dk + (b * Tk + j0 + j) * kvs + kh * D, *gv = dv + (b * Tk + j0 + j) * kvs + kh * D;
                for (int d = 0; d < D; d++) {
                    gk[d] = dKa[j * Dp + d] * scale;
                    gv[d] = dVa[j * Dp + d];
                }
            }
        }

        /* Pass 2: dQ of one query tile, over key tiles in order. */
        #pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < n_qitems; it++) {
            /* Causal: late query tiles see more keys, so they go first. */
            const int64_t qt = n_qt - 1 - it / (B * H), bh = it % (B * H), b = bh / H, h = bh % H, kh = h / group;
            const int64_t qi = bh * n_qt + qt, i0 = qt * BR;
            const int rows = (int)(Tq - i0 < BR ? Tq - i0 : BR), rows_p = (int)ROUND_UP(rows, RB);
            const int64_t first_pos = i0 + offset, last_pos = i0 + rows - 1 + offset;
            const int64_t kend = causal ? (last_pos + 1 < Tk ? last_pos + 1 : Tk) : Tk;
            memset(dQa, 0, sizeof(float) * (size_t)(rows_p * Dp));
            for (int64_t j0 = 0; j0 < kend; j0 += BC) {
                const int n = (int)(kend - j0 < BC ? kend - j0 : BC), n_p = (int)ROUND_UP(n, RB);
                const float *kb = k + (b * Tk + j0) * kvs + kh * D, *vb = v + (b * Tk + j0) * kvs + kh * D;
                const float *Ka = kb, *Va = vb;
                int64_t lda = kvs;
                if (j0 + n_p > Tk) {
                    pack_rows(Kp, Dp, kb, kvs, n, n_p, D);
                    pack_rows(Vp, Dp, vb, kvs, n, n_p, D);
                    Ka = Kp; Va = Vp; lda = Dp;
                }
                const int diag = causal && j0 + n_p - 1 > first_pos;
                tile_scores(St, Ka, lda, Qt + (size_t)qi * tile, n_p, D);
                tile_scores(dPt, Va, lda, dOt + (size_t)qi * tile, n_p, D);
                tile_softmax_grad(St, dPt, lse2 + qi * BR, Dvec + qi * BR, n_p, diag, j0 - i0 - offset);
                tile_acc(dQa, Dp, dPt, 1, BR, kb, kvs, rows_p, n, D);
            }
            for (int r = 0; r < rows; r++) {
                float *g = dq + (b * Tq + i0 + r) * qs + h * D;
                for (int d = 0; d < D; d++) g[d] = dQa[r * Dp + d] * scale;
            }
        }
    }
    return FB_OK;
}
