/*
 * FlashAttention forward (Dao et al. 2022; FlashAttention-2 loop order) for
 * the CPU: O(T·D) memory, never a T×T buffer.
 *
 * Work item = (batch, query head, tile of BR queries); items are handed to
 * threads largest-first (under a causal mask late query tiles see more keys).
 * For each item:
 *   Qs  = the BR query rows, pre-multiplied by scale·log2(e) so the softmax
 *         runs on exp2;
 *   for each tile of BC keys that is not fully masked:
 *     Kt  = the key tile transposed to [D][BC] (one packing per tile),
 *     S   = Qs·Kt                        (4×(4 vectors) register blocks)
 *     mask S only on the diagonal tiles and the ragged last tile,
 *     online softmax per row: m' = max(m, max S); α = 2^(m-m');
 *                             P = 2^(S-m'); l = α·l + ΣP
 *     O   = α·O + P·V                    (V rows read in place)
 * Keys and values are read through row pointers of each tile, so the same
 * loop serves contiguous buffers and the KV cache's paged blocks
 * (attention/kv_rows.h).
 *   O /= l and lse = ln 2·(m + log2 l) is saved for the backward pass.
 * GQA is by index: head h reads KV head h/(H/Hkv); nothing is copied per
 * query head. Per-thread scratch is BR·D + D·BC + BR·BC + BR·D floats.
 */
#include "attention/kv_rows.h"
#include "core/simd.h"
#include "attention/attention_plan.h"
#include <math.h>
#include <omp.h>
#include <string.h>

#define BR FLASH_FWD_BR   /* query rows per tile */
#define BC FLASH_FWD_BC   /* keys per tile */
#define RB 4           /* rows per register block */
#if FV_N == 8
#define NV 2           /* AVX2: 16 registers, 4×2 accumulators (+ loads, broadcast) fit without spills */
#else
#define NV 4           /* vectors per register block */
#endif
#define LOG2E 1.44269504088896341f
#define LN2 0.69314718055994531f

#define ROUND_UP(x, m) (((x) + (m) - 1) / (m) * (m))

/* S[r][0..BC) = Qs[r]·Kt for rows [0, rows) (rows a multiple of RB). */
static void scores_tile(float *restrict S, const float *restrict Qs, const float *restrict Kt, int rows, int D,
                        int Dp) {
    for (int r = 0; r < rows; r += RB) {
        for (int jb = 0; jb < BC; jb += NV * FV_N) {
            fvec acc[RB][NV];
            for (int i = 0; i < RB; i++)
                for (int u = 0; u < NV; u++) acc[i][u] = fv_zero();
            for (int d = 0; d < D; d++) {
                const float *kt = Kt + d * BC + jb;
                fvec kv[NV];
                for (int u = 0; u < NV; u++) kv[u] = fv_load(kt + u * FV_N);
                for (int i = 0; i < RB; i++) {
                    fvec qb = fv_set1(Qs[(r + i) * Dp + d]);
                    for (int u = 0; u < NV; u++) acc[i][u] = fv_fma(qb, kv[u], acc[i][u]);
                }
            }
            for (int i = 0; i < RB; i++)
                for (int u = 0; u < NV; u++) fv_store(S + (r + i) * BC + jb + u * FV_N, acc[i][u]);
        }
    }
}

/* O[r] = alpha[r]·O[r] + Σ_j P[r][j]·V[j] for rows [0, rows), keys [0, n). */
static void pv_tile(float *restrict O, const float *restrict P, const float *restrict alpha, const float *const *V,
                    int rows, int n, int D, int Dp) {
    for (int r = 0; r < rows; r += RB) {
        for (int d0 = 0; d0 < D; d0 += NV * FV_N) {
            int nvec = (D - d0 + FV_N - 1) / FV_N;
            if (nvec > NV) nvec = NV;
            const int rest = (D - d0) - (nvec - 1) * FV_N;
            const int tail = rest < FV_N ? rest : FV_N;    /* lanes in the last vector */
            fvec acc[RB][NV];
            for (int i = 0; i < RB; i++) {
                fvec al = fv_set1(alpha[r + i]);
                for (int u = 0; u < NV; u++)
                    acc[i][u] = u < nvec ? fv_mul(al, fv_load(O + (r + i) * Dp + d0 + u * FV_N)) : fv_zero();
            }
            if (nvec == NV && tail == FV_N) {
                for (int j = 0; j < n; j++) {
                    const float *vr = V[j] + d0;
                    fvec vv[NV];
                    for (int u = 0; u < NV; u++) vv[u] = fv_load(vr + u * FV_N);
                    for (int i = 0; i < RB; i++) {
                        fvec p = fv_set1(P[(r + i) * BC + j]);
                        for (int u = 0; u < NV; u++) acc[i][u] = fv_fma(p, vv[u], acc[i][u]);
                    }
                }
            } else {
                for (int j = 0; j < n; j++) {
                    const float *vr = V[j] + d0;
                    fvec vv[NV];
                    for (int u = 0; u < NV; u++)
                        vv[u] = u < nvec - 1 ? fv_load(vr + u * FV_N) : (u == nvec - 1 ? fv_loadn(vr + u * FV_N, tail) : fv_zero());
                    for (int i = 0; i < RB; i++) {
                        fvec p = fv_set1(P[(r + i) * BC + j]);
                        for (int u = 0; u < NV; u++) acc[i][u] = fv_fma(p, vv[u], acc[i][u]);
                    }
                }
            }
            for (int i = 0; i < RB; i++)
                for (int u = 0; u < nvec; u++) fv_store(O + (r + i) * Dp + d0 + u * FV_N, acc[i][u]);
        }
    }
}

fb_status FB_SIMD(flash_attention_forward)(const fb_op_args *a) {
    const float *q = fb_in_f32(a, 0);
    const fb_kv_rows kv = fb_kv_rows_of(a);
    float *o = fb_out_f32(a, 0), *lse = fb_out_f32(a, 1);
    const int64_t B = a->d[0], Tq = a->d[1], Tk = a->d[2], H = a->d[3], Hkv = a->d[4];
    const int D = (int)a->d[5];
    const int causal = (int)a->d[6];
    const int64_t qs = a->d[7], os = a->d[9];
    const float scale = a->f[0] > 0 ? a->f[0] : 1.0f / sqrtf((float)D);
    const int64_t group = H / Hkv, offset = Tk - Tq;
    const int Dp = (int)ROUND_UP(D, 16);           /* padded row length of scratch tiles */
    const int64_t n_qt = (Tq + BR - 1) / BR, n_items = B * H * n_qt;
    const float qscale = scale * LOG2E;
    FB_TRY(fb_ws_check(a, flash_attention_forward_ws(a, omp_get_max_threads()), "attention_forward[flash]"));
    const size_t per_thread = flash_fwd_thread_bytes(a->d);

    #pragma omp parallel if (n_items > 1)
    {
        float *scratch = (float *)((char *)a->ws.data + (size_t)omp_get_thread_num() * per_thread);
        float *Qs = scratch, *O = Qs + BR * Dp, *Kt = O + BR * Dp, *S = Kt + Dp * BC;
        float *m = S + BR * BC, *l = m + BR, *alpha = l + BR;
        const float *krow[BC], *vrow[BC];

        #pragma omp for schedule(dynamic, 1)
        for (int64_t item = 0; item < n_items; item++) {
            /* Largest tiles first: the query-tile index runs backwards. */
            const int64_t qt = n_qt - 1 - item / (B * H), bh = item % (B * H);
            const int64_t b = bh / H, h = bh % H, kh = h / group;
            const int64_t i0 = qt * BR;
            const int rows = (int)(Tq - i0 < BR ? Tq - i0 : BR);
            const int rows_p = (int)ROUND_UP(rows, RB);

            for (int r = 0; r < rows_p; r++) {
                float *dst = Qs + r * Dp;
                if (r < rows) {
                    const float *src = q + (b * Tq + i0 + r) * qs + h * D;
                    for (int d = 0; d < D; d++) dst[d] = src[d] * qscale;
                } else {
                    memset(dst, 0, sizeof(float) * (size_t)D);
                }
                memset(O + r * Dp, 0, sizeof(float) * (size_t)Dp);
                m[r] = -INFINITY;
                l[r] = 0.0f;
            }

            /* Keys visible to this tile: all, or up to its last query's position. */
            const int64_t first_pos = i0 + offset, last_pos = i0 + rows - 1 + offset;
            const int64_t kend = causal ? (last_pos + 1 < Tk ? last_pos + 1 : Tk) : Tk;

            for (int64_t j0 = 0; j0 < kend; j0 += BC) {
                const int n = (int)(kend - j0 < BC ? kend - j0 : BC);
                /* Pack K tile transposed; zero the padding columns. */
                fb_kv_rows_tile(&kv, b, kh * D, j0, n, krow, vrow);
                for (int j = 0; j < n; j++) {
                    const float *kr = krow[j];
                    for (int d = 0; d < D; d++) Kt[d * BC + j] = kr[d];
                }
                if (n < BC)
                    for (int d = 0; d < D; d++) memset(Kt + d * BC + n, 0, sizeof(float) * (size_t)(BC - n));

                scores_tile(S, Qs, Kt, rows_p, D, Dp);

                const int diagonal = causal && (j0 + BC - 1 > first_pos);
                for (int r = 0; r < rows; r++) {
                    float *srow = S + r * BC;
                    int valid = n;               /* keys [0, valid) of this tile are visible to row r */
                    if (diagonal) {
                        int64_t lim = i0 + r + offset - j0 + 1;
                        valid = lim < valid ? (int)lim : valid;
                    }
                    for (int j = valid; j < BC; j++) srow[j] = -INFINITY;
                    fvec mx = fv_set1(m[r]);
                    for (int j = 0; j < BC; j += FV_N) mx = fv_max(mx, fv_load(srow + j));
                    const float mnew = fv_hmax(mx);
                    if (mnew == -INFINITY) { alpha[r] = 1.0f; continue; }   /* row sees nothing yet */
                    const fvec vm = fv_set1(mnew);
                    fvec sum = fv_zero();
                    for (int j = 0; j < BC; j += FV_N) {
                        fvec p = fv_exp2(fv_sub(fv_load(srow + j), vm));
                        fv_store(srow + j, p);
                        sum = fv_add(sum, p);
                    }
                    alpha[r] = exp2f(m[r] - mnew);
                    l[r] = l[r] * alpha[r] + fv_hsum(sum);
                    m[r] = mnew;
                }
                for (int r = rows; r < rows_p; r++) {
                    alpha[r] = 0.0f;
                    memset(S + r * BC, 0, sizeof(float) * BC);
                }
                pv_tile(O, S, alpha, vrow, rows_p, n, D, Dp);
            }

            for (int r = 0; r < rows; r++) {
                float *dst = o + (b * Tq + i0 + r) * os + h * D;
                const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
                for (int d = 0; d < D; d++) dst[d] = O[r * Dp + d] * inv;
                lse[(b * H + h) * Tq + i0 + r] = l[r] > 0 ? LN2 * (m[r] + log2f(l[r])) : -INFINITY;
            }
        }
    }
    return FB_OK;
}
