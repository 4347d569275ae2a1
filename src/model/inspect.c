/* Attention statistics, ablations and residual norms from the training
 * forward (see inspect.h for the definitions). */
#include "model/inspect.h"
#include "core/error.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void fb_inspect_report_free(fb_inspect_report *r) {
    if (!r) return;
    free(r->entropy);
    free(r->distance);
    free(r->first);
    free(r->prev);
    free(r->loss_no_attn);
    free(r->loss_no_mlp);
    free(r->resid_norm);
    free(r->maps);
    memset(r, 0, sizeof *r);
}

/* ids/targets of windows [w0, w0 + B). */
static void fill_batch(const int32_t *win, int T, int w0, int B, int32_t *ids, int32_t *tgt) {
    for (int b = 0; b < B; b++) {
        const int32_t *w = win + (size_t)(w0 + b) * (size_t)(T + 1);
        memcpy(ids + (size_t)b * T, w, sizeof(int32_t) * (size_t)T);
        memcpy(tgt + (size_t)b * T, w + 1, sizeof(int32_t) * (size_t)T);
    }
}

/* Sum of the per-token losses of the last forward, in order. */
static double loss_sum(const fb_model *m, size_t N) {
    double s = 0;
    for (size_t i = 0; i < N; i++) s += m->losses[i];
    return s;
}

/* Mean loss over all windows with the current weights. */
static fb_status eval_loss(fb_model *m, const int32_t *win, int n_windows, int T, int batch, int32_t *ids, int32_t *tgt,
                           double *out) {
    double sum = 0;
    for (int w0 = 0; w0 < n_windows; w0 += batch) {
        const int B = n_windows - w0 < batch ? n_windows - w0 : batch;
        float l;
        fill_batch(win, T, w0, B, ids, tgt);
        FB_TRY(fb_model_forward(m, ids, tgt, B, T, &l));
        sum += loss_sum(m, (size_t)B * (size_t)T);
    }
    *out = sum / ((double)n_windows * (double)T);
    return FB_OK;
}

/* Statistics of one query row (window row b of the batch, head h, position
 * t): softmax in double over keys 0..t. st: entropy/log(t+1), distance,
 * p_0, p_{t-1}. map (or NULL): receives p_0..p_t. */
static void row_stats(const float *qkv, int64_t QKV, int64_t H, int64_t Hkv, int64_t D, int T, int b, int h, int t,
                      double *s, double st[4], float *map) {
    const float *q = qkv + ((int64_t)b * T + t) * QKV + (int64_t)h * D;
    const int64_t kvh = h / (H / Hkv);
    const double scale = 1.0 / sqrt((double)D);
    double mx = -INFINITY;
    for (int j = 0; j <= t; j++) {
        const float *k = qkv + ((int64_t)b * T + j) * QKV + (H + kvh) * D;
        double dot = 0;
        for (int64_t d = 0; d < D; d++) dot += (double)q[d] * (double)k[d];
        s[j] = dot * scale;
        if (s[j] > mx) mx = s[j];
    }
    double sum = 0;
    for (int j = 0; j <= t; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
    double ent = 0, dist = 0;
    for (int j = 0; j <= t; j++) {
        const double p = s[j] / sum;
        s[j] = p;
        if (p > 0) ent -= p * log(p);
        dist += p * (double)(t - j);
        if (map) map[j] = (float)p;
    }
    st[0] = t > 0 ? ent / log((double)t + 1.0) : 0.0;
    st[1] = dist;
    st[2] = s[0];
    st[3] = t > 0 ? s[t - 1] : 0.0;
}

fb_status fb_inspect_run(fb_model *m, const int32_t *windows, int n_windows, const fb_inspect_config *cfg,
                         fb_inspect_report *out) {
    if (!m || !windows || !cfg || !out) return fb_fail(FB_ERR_INVALID_ARG, "inspect: NULL argument");
    memset(out, 0, sizeof *out);
    const fb_block_config *c = &m->cfg.block;
    const int L = m->cfg.n_layers, H = c->n_heads, Hkv = c->n_kv_heads, T = cfg->ctx;
    const int64_t C = c->d_model, D = C / H, QKV = (int64_t)(H + 2 * Hkv) * D;
    const int batch = cfg->batch > 0 ? (cfg->batch < n_windows ? cfg->batch : n_windows) : (n_windows < 4 ? n_windows : 4);
    const int S = cfg->map_tokens;
    if (n_windows <= 0) return fb_fail(FB_ERR_INVALID_ARG, "inspect: no window to inspect");
    if (T < 2 || T > m->cfg.max_seq)
        return fb_fail(FB_ERR_SHAPE, "inspect: context %d must be in [2, %d] (the model's max_seq)", T, m->cfg.max_seq);
    if (S < 0 || S > T) return fb_fail(FB_ERR_SHAPE, "inspect: map size %d must be in [0, %d] (the context)", S, T);
    FB_TRY(fb_model_alloc_training(m, batch, T, 0));

    const size_t LH = (size_t)L * (size_t)H, N = (size_t)batch * (size_t)T;
    out->n_layers = L; out->n_heads = H; out->n_kv_heads = Hkv; out->ctx = T; out->n_windows = n_windows;
    out->map_tokens = S;
    out->n_queries = (size_t)n_windows * (size_t)(T - 1);
    out->entropy = calloc(LH, sizeof(double));
    out->distance = calloc(LH, sizeof(double));
    out->first = calloc(LH, sizeof(double));
    out->prev = calloc(LH, sizeof(double));
    out->loss_no_attn = calloc((size_t)L, sizeof(double));
    out->loss_no_mlp = calloc((size_t)L, sizeof(double));
    out->resid_norm = calloc((size_t)L + 1, sizeof(double));
    out->maps = S ? calloc(LH * (size_t)S * (size_t)S, sizeof(float)) : NULL;
    int32_t *ids = malloc(sizeof(int32_t) * N), *tgt = malloc(sizeof(int32_t) * N);
    double *rows = malloc(sizeof(double) * 4 * (size_t)batch * (size_t)H * (size_t)T);
    size_t max_w = 0;
    for (int p = FB_P_ATTN_OUT_W; p <= FB_P_FFN_DOWN_B; p++) max_w = m->blk.numel[p] > max_w ? m->blk.numel[p] : max_w;
    float *saved = malloc(sizeof(float) * (max_w ? max_w : 1));
    fb_status st = FB_OK;
    if (!out->entropy || !out->distance || !out->first || !out->prev || !out->loss_no_attn || !out->loss_no_mlp ||
        !out->resid_norm || (S && !out->maps) || !ids || !tgt || !rows || !saved) {
        st = fb_fail(FB_ERR_OOM, "inspect: out of memory");
        goto done;
    }

    /* 1. intact forward: loss, residual norms, attention statistics */
    double loss = 0;
    for (int w0 = 0; w0 < n_windows && st == FB_OK; w0 += batch) {
        const int B = n_windows - w0 < batch ? n_windows - w0 : batch;
        const size_t NB = (size_t)B * (size_t)T;
        float l;
        fill_batch(windows, T, w0, B, ids, tgt);
        if ((st = fb_model_forward(m, ids, tgt, B, T, &l)) != FB_OK) break;
        loss += loss_sum(m, NB);
        for (int r = 0; r <= L; r++) {
            const float *x = m->resid + (size_t)r * NB * (size_t)C;
            for (size_t i = 0; i < NB; i++) {
                double ss = 0;
                for (int64_t k = 0; k < C; k++) ss += (double)x[i * (size_t)C + (size_t)k] * x[i * (size_t)C + (size_t)k];
                out->resid_norm[r] += sqrt(ss);
            }
        }
        for (int layer = 0; layer < L; layer++) {
            const float *qkv = m->blk_acts[layer].qkv;
            float *maps = out->maps ? out->maps + (size_t)layer * (size_t)H * (size_t)S * (size_t)S : NULL;
            const int64_t items = (int64_t)B * H * T;
            int oom = 0;
            #pragma omp parallel reduction(| : oom)
            {
                double *s = malloc(sizeof(double) * (size_t)T);
                if (!s) oom = 1;
                #pragma omp for schedule(dynamic, 16)
                for (int64_t it = 0; it < items; it++) {
                    if (!s) continue;
                    const int b = (int)(it / ((int64_t)H * T)), h = (int)(it / T % H), t = (int)(it % T);
                    float *map = maps && w0 + b == 0 && t < S ? maps + ((size_t)h * (size_t)S + (size_t)t) * (size_t)S : NULL;
                    row_stats(qkv, QKV, H, Hkv, D, T, b, h, t, s, rows + 4 * (size_t)it, map);
                }
                free(s);
            }
            if (oom) { st = fb_fail(FB_ERR_OOM, "inspect: out of memory"); break; }
            for (int b = 0; b < B; b++)   /* fixed order: the same sums for any thread count */
                for (int h = 0; h < H; h++)
                    for (int t = 1; t < T; t++) {
                        const double *r = rows + 4 * (((size_t)b * (size_t)H + (size_t)h) * (size_t)T + (size_t)t);
                        const size_t k = (size_t)layer * (size_t)H + (size_t)h;
                        out->entropy[k] += r[0];
                        out->distance[k] += r[1];
                        out->first[k] += r[2];
                        out->prev[k] += r[3];
                    }
        }
    }
    if (st != FB_OK) goto done;
    const double nq = (double)out->n_queries, ntok = (double)n_windows * (double)T;
    out->loss = loss / ntok;
    for (size_t k = 0; k < LH; k++) {
        out->entropy[k] /= nq;
        out->distance[k] /= nq;
        out->first[k] /= nq;
        out->prev[k] /= nq;
    }
    for (int r = 0; r <= L; r++) out->resid_norm[r] /= ntok;

    /* 2. ablations: one block's attention or MLP output removed at a time */
    for (int layer = 0; layer < L && st == FB_OK; layer++)
        for (int kind = 0; kind < 2 && st == FB_OK; kind++) {
            float *p = fb_model_block_params(m, layer);
            const fb_block_param wp = kind == 0 ? FB_P_ATTN_OUT_W : FB_P_FFN_DOWN_W;
            const fb_block_param bp = kind == 0 ? FB_P_ATTN_OUT_B : FB_P_FFN_DOWN_B;
            float *w = p + m->blk.offset[wp], *bias = p + m->blk.offset[bp];
            const size_t nw = m->blk.numel[wp], nb = m->blk.numel[bp];
            double l = 0;
            memcpy(saved, w, sizeof(float) * nw);
            memset(w, 0, sizeof(float) * nw);
            float *saved_b = nb ? malloc(sizeof(float) * nb) : NULL;
            if (nb && !saved_b) { memcpy(w, saved, sizeof(float) * nw); st = fb_fail(FB_ERR_OOM, "inspect: out of memory"); break; }
            if (nb) { memcpy(saved_b, bias, sizeof(float) * nb); memset(bias, 0, sizeof(float) * nb); }
            st = eval_loss(m, windows, n_windows, T, batch, ids, tgt, &l);
            memcpy(w, saved, sizeof(float) * nw);
            if (nb) memcpy(bias, saved_b, sizeof(float) * nb);
            free(saved_b);
            (kind == 0 ? out->loss_no_attn : out->loss_no_mlp)[layer] = l;
        }
done:
    free(ids);
    free(tgt);
    free(rows);
    free(saved);
    if (st != FB_OK) fb_inspect_report_free(out);
    return st;
}
