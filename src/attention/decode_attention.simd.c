/*
 * Decode attention (FlashDecoding, split-K) for a few query tokens against a
 * long KV cache. Same slots as FB_OP_ATTENTION_FWD (see ops.h).
 *
 * Work item = (batch b, KV head kh, split s). The R = G·Tq query rows that
 * read KV head kh (G = H/Hkv query heads × Tq queries) are processed
 * together, so every K and V row of the split is read from memory once per
 * group, not once per query head. The visible key range [0, kend) is cut into
 * n_split contiguous chunks; each item runs the online softmax (exp2 domain,
 * queries pre-scaled by scale·log2 e) over its chunk in tiles of BC keys and
 * leaves an unnormalised partial output O_s with its running max m_s and sum
 * l_s. A second pass merges the partials of each row in split order:
 *     M = max_s m_s,  w_s = 2^(m_s - M),  L = Σ w_s·l_s,
 *     o = Σ w_s·O_s / L,  lse = ln 2·(M + log2 L).
 * Partition and merge order depend only on the shape and the thread count
 * (no atomics, no dynamic scheduling of the merge), so results are
 * deterministic for a given thread count.
 *
 * K and V rows are read through the row pointers of each tile
 * (attention/kv_rows.h): contiguous buffers and the KV cache's paged blocks
 * take the same loop and give the same bits.
 *
 * Splits: enough items for about 4 per thread, chunks of at least DECODE_MIN_CHUNK
 * keys. Scratch: partials n_items·R·Dp (≈ O(threads·H·D) for decode) plus per
 * thread R·Dp + R·BC floats; nothing proportional to Tk.
 */
#include "attention/kv_rows.h"
#include "core/simd.h"
#include "attention/attention_plan.h"
#include <math.h>
#include <omp.h>
#include <string.h>

#define BC DECODE_BC   /* keys per tile */
#define LOG2E 1.44269504088896341f
#define LN2 0.69314718055994531f
#define ROUND_UP(x, m) (((x) + (m) - 1) / (m) * (m))

/* Online softmax of the R rows over keys [j0, j1) of one KV head. On entry
 * O (R×Dp), m, l hold the running state (O = 0, m = -inf, l = 0 at start). */
static void decode_chunk(float *restrict O, float *restrict m, float *restrict l, float *restrict S,
                         const float *restrict Qs, const fb_kv_rows *kv, int64_t b, int64_t off, int64_t j0,
                         int64_t j1, int R, int Tq, int D, int Dp, int causal, int64_t offset) {
    const int nfull = D / FV_N, tail = D - nfull * FV_N;
    const float *rows_a[2][BC], *rows_b[2][BC];   /* this tile's K, V rows and the next tile's */
    const float **krow = rows_a[0], **vrow = rows_b[0], **knext = rows_a[1], **vnext = rows_b[1];
    if (j0 < j1) fb_kv_rows_tile(kv, b, off, j0, (int)(j1 - j0 < BC ? j1 - j0 : BC), krow, vrow);
    for (int64_t t0 = j0; t0 < j1; t0 += BC) {
        const int n = (int)(j1 - t0 < BC ? j1 - t0 : BC);
        /* Prefetch the next tile while this one is computed: in the paged
         * layout its rows sit in other blocks, where the hardware's stride
         * prefetcher has to start over (every 16 rows at the default block
         * size), which cost a quarter of the speed on Zen 3. */
        if (t0 + BC < j1) {
            const int nn = (int)(j1 - t0 - BC < BC ? j1 - t0 - BC : BC);
            fb_kv_rows_tile(kv, b, off, t0 + BC, nn, knext, vnext);
            for (int j = 0; kv->table && j < nn; j++)
                for (int d = 0; d < D; d += 16) { __builtin_prefetch(knext[j] + d, 0, 3); __builtin_prefetch(vnext[j] + d, 0, 3); }
        }
        /* S[r][j] = Qs[r]·K[t0+j]; the K tile (n·D floats) stays in L1 across rows. */
        for (int r = 0; r < R; r++) {
            const float *qr = Qs + (int64_t)r * Dp;
            float *srow = S + r * BC;
            int valid = n;
            if (causal) {
                const int64_t pos = r % Tq + offset;       /* row r = (head g, query r % Tq) */
                const int64_t lim = pos + 1 - t0;
                valid = lim < n ? (lim > 0 ? (int)lim : 0) : n;
            }
            for (int j = 0; j < valid; j++) {
                const float *kr = krow[j];
                fvec acc0 = fv_zero(), acc1 = fv_zero();
                int dv = 0;
                for (; dv + 1 < nfull; dv += 2) {
                    acc0 = fv_fma(fv_load(qr + dv * FV_N), fv_load(kr + dv * FV_N), acc0);
                    acc1 = fv_fma(fv_load(qr + (dv + 1) * FV_N), fv_load(kr + (dv + 1) * FV_N), acc1);
                }
                if (dv < nfull) acc0 = fv_fma(fv_load(qr + dv * FV_N), fv_load(kr + dv * FV_N), acc0);
                if (tail) acc1 = fv_fma(fv_load(qr + nfull * FV_N), fv_loadn(kr + nfull * FV_N, tail), acc1);
                srow[j] = fv_hsum(fv_add(acc0, acc1));
            }
            for (int j = valid; j < BC; j++) srow[j] = -INFINITY;
        }
        /* Online softmax per row, then O[r] = alpha·O[r] + Σ_j P[r][j]·V[t0+j]. */
        for (int r = 0; r < R; r++) {
            float *srow = S + r * BC;
            fvec mx = fv_set1(m[r]);
            for (int j = 0; j < BC; j += FV_N) mx = fv_max(mx, fv_load(srow + j));
            const float mnew = fv_hmax(mx);
            if (mnew == -INFINITY) continue;                /* row sees no key yet */
            const fvec vm = fv_set1(mnew);
            fvec sum = fv_zero();
            for (int j = 0; j < BC; j += FV_N) {
                fvec p = fv_exp2(fv_sub(fv_load(srow + j), vm));
                fv_store(srow + j, p);
                sum = fv_add(sum, p);
            }
            const float alpha = exp2f(m[r] - mnew);
            l[r] = l[r] * alpha + fv_hsum(sum);
            m[r] = mnew;
            float *orow = O + (int64_t)r * Dp;
            const fvec va = fv_set1(alpha);
            /* 4 output vectors at a time in registers; V rows of the tile from L1. */
            for (int d0 = 0; d0 < Dp; d0 += 4 * FV_N) {
                const int nv = (Dp - d0) / FV_N < 4 ? (Dp - d0) / FV_N : 4;
                fvec acc[4];
                for (int u = 0; u < nv; u++) acc[u] = fv_mul(va, fv_load(orow + d0 + u * FV_N));
                for (int j = 0; j < n; j++) {
                    const float pj = srow[j];
                    if (pj == 0.0f) continue;
                    const fvec vp = fv_set1(pj);
                    const float *vr = vrow[j] + d0;
                    for (int u = 0; u < nv; u++) {
                        const int left = D - d0 - u * FV_N;
                        fvec vv = left >= FV_N ? fv_load(vr + u * FV_N)
                                               : (left > 0 ? fv_loadn(vr + u * FV_N, left) : fv_zero());
                        acc[u] = fv_fma(vp, vv, acc[u]);
                    }
                }
                for (int u = 0; u < nv; u++) fv_store(orow + d0 + u * FV_N, acc[u]);
            }
        }
        const float **tk = krow, **tv = vrow;
        krow = knext; vrow = vnext; knext = tk; vnext = tv;
    }
}

fb_status FB_SIMD(attention_decode)(const fb_op_args *a) {
    const float *q = fb_in_f32(a, 0);
    const fb_kv_rows kv = fb_kv_rows_of(a);
    float *o = fb_out_f32(a, 0), *lse = fb_out_f32(a, 1);
    const int64_t B = a->d[0], Tq = a->d[1], Tk = a->d[2], H = a->d[3], Hkv = a->d[4];
    const int D = (int)a->d[5];
    const int causal = (int)a->d[6];
    const int64_t qs = a->d[7], os = a->d[9];
    if (B <= 0 || Tq <= 0 || H <= 0) return FB_OK;
    const float scale = a->f[0] > 0 ? a->f[0] : 1.0f / sqrtf((float)D);
    const int64_t G = H / Hkv, offset = Tk - Tq;
    const int nthreads = omp_get_max_threads();
    /* The split (attention_plan.h): depends only on the shape and the thread count. */
    const decode_plan plan = decode_plan_for(a->d, nthreads);
    const int R = plan.R, Dp = plan.Dp;
    const int64_t kvis = plan.kvis, n_split = plan.n_split, chunk = plan.chunk, n_items = plan.n_items;
    const int64_t groups = B * Hkv;
    FB_TRY(fb_ws_check(a, attention_decode_ws(a, nthreads), "attention_decode"));

    /* Partials: per item R×Dp outputs, then R maxima and R sums. */
    const size_t per_item = plan.per_item;
    float *part = a->ws.data;

    #pragma omp parallel if (n_items > 1)
    {
        float *scratch =
            (float *)((char *)a->ws.data + plan.shared_bytes + (size_t)omp_get_thread_num() * plan.thread_bytes);
        float *Qs = scratch, *S = Qs + (size_t)R * Dp;
        int64_t loaded_group = -1;
        #pragma omp for schedule(static)
        for (int64_t item = 0; item < n_items; item++) {
            const int64_t grp = item / n_split, s = item % n_split;
            const int64_t b = grp / Hkv, kh = grp % Hkv;
            float *O = part + (size_t)item * per_item;
            float *m = O + (size_t)R * Dp, *l = m + R;
            if (grp != loaded_group) {      /* Qs rows: r = g·Tq + i, head kh·G + g */
                for (int r = 0; r < R; r++) {
                    const int64_t g = r / Tq, i = r % Tq;
                    const float *src = q + (b * Tq + i) * qs + (kh * G + g) * D;
                    float *dst = Qs + (size_t)r * Dp;
                    for (int d = 0; d < D; d++) dst[d] = src[d] * scale * LOG2E;
                    for (int d = D; d < Dp; d++) dst[d] = 0.0f;
                }
                loaded_group = grp;
            }
            memset(O, 0, sizeof(float) * (size_t)R * Dp);
            for (int r = 0; r < R; r++) { m[r] = -INFINITY; l[r] = 0.0f; }
            const int64_t j0 = s * chunk, j1 = j0 + chunk < kvis ? j0 + chunk : kvis;
            if (j0 < j1)
                decode_chunk(O, m, l, S, Qs, &kv, b, kh * D, j0, j1, R, (int)Tq, D, Dp, causal, offset);
        }

        /* Merge the splits of each output row in split order. */
        #pragma omp for schedule(static)
        for (int64_t row = 0; row < groups * R; row++) {
            const int64_t grp = row / R, r = row % R;
            const int64_t b = grp / Hkv, kh = grp % Hkv, g = r / Tq, i = r % Tq, h = kh * G + g;
            float M = -INFINITY;
            for (int64_t s = 0; s < n_split; s++) {
                const float *ms = part + (size_t)(grp * n_split + s) * per_item + (size_t)R * Dp;
                if (ms[r] > M) M = ms[r];
            }
            float *dst = o + (b * Tq + i) * os + h * D;
            float L = 0.0f;
            for (int d = 0; d < D; d++) dst[d] = 0.0f;
            if (M != -INFINITY) {
                for (int64_t s = 0; s < n_split; s++) {
                    const float *Os = part + (size_t)(grp * n_split + s) * per_item;
                    const float ms = Os[(size_t)R * Dp + r], ls = Os[(size_t)R * Dp + R + r];
                    if (ls == 0.0f) continue;
                    const float w = exp2f(ms - M);
                    L += w * ls;
                    const float *orow = Os + (size_t)r * Dp;
                    for (int d = 0; d < D; d++) dst[d] += w * orow[d];
                }
            }
            const float inv = L > 0 ? 1.0f / L : 0.0f;
            for (int d = 0; d < D; d++) dst[d] *= inv;
            lse[(b * H + h) * Tq + i] = L > 0 ? LN2 * (M + log2f(L)) : -INFINITY;
        }
    }
    return FB_OK;
}
