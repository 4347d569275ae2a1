#include "infer/engine.h"
#include "core/error.h"
#include "core/runtime.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "ops/quant_q8_0.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Matrices of one layer in the order they are used, for the Q8_0 copies. */
enum { W_QKV, W_OUT, W_UP, W_DOWN, W_PER_LAYER };

typedef struct q8_weights {
    void **w;          /* [n_layers·W_PER_LAYER + 1] (last: LM head); NULL = keep fp32 */
} q8_weights;


/* y[N,OC] = x·Wᵀ + b with the layer's Q8_0 copy when there is one. */
static fb_status linear(fb_engine *e, int widx, float *y, const float *x, const float *W, const float *b, int64_t N,
                        int64_t C, int64_t OC) {
    q8_weights *q = e->q8;
    if (q && q->w[widx]) return fb_matmul_q8_0_forward(&e->ops_ws, y, q->w[widx], x, b, N, C, OC);
    return fb_matmul_forward(&e->ops_ws, y, x, W, b, N, C, OC);
}

/* The kernel workspace of fb_engine_step for up to max_rows rows and
 * max_T cached positions: every op call below at its largest dims (the
 * workspace functions only read the dims). */
#define PLAN(op, ...) fb_ws_plan(&need, op, &(fb_op_args){.d = {__VA_ARGS__}}, nt)
static fb_status plan_workspace(fb_engine *e) {
    const fb_model *m = e->m;
    const fb_block_config *c = &m->cfg.block;
    const int64_t R = e->max_rows, Tmax = e->kv.max_T, C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = C / H;
    const int64_t QKV = (H + 2 * Hkv) * D, F = c->d_ff, hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    const int64_t V = m->cfg.vocab_size;
    const int nt = fb_get_threads();
    const int64_t lin[5][2] = {{C, QKV}, {C, C}, {C, hF}, {F, C}, {C, V}};
    size_t need = 0;
    for (int i = 0; i < 5; i++) {
        PLAN(FB_OP_MATMUL_FWD, R, lin[i][0], lin[i][1]);
        if (e->q8) PLAN(FB_OP_MATMUL_Q8_0, R, lin[i][0], lin[i][1]);
    }
    PLAN(c->norm == FB_NORM_LAYERNORM ? FB_OP_LAYERNORM_FWD : FB_OP_RMSNORM_FWD, R, C);
    PLAN(FB_OP_ROPE_FWD, 1, R, H, D, QKV, 0);
    PLAN(FB_OP_ATTENTION_DECODE, 1, R < 4 ? R : 4, Tmax, H, Hkv, D, 1, QKV, Hkv * D, C);
    if (R > 4) PLAN(FB_OP_ATTENTION_FWD, 1, R, Tmax, H, Hkv, D, 1, QKV, Hkv * D, C);
    PLAN(FB_OP_RESIDUAL_FWD, R * C);
    PLAN(FB_OP_SWIGLU_FWD, R, F);
    PLAN(c->mlp == FB_MLP_GELU_TANH ? FB_OP_GELU_TANH_FWD : FB_OP_GELU_FWD, R * F);
    FB_TRY(fb_workspace_reserve(&e->ops_ws, need));
    e->ops_ws_threads = nt;
    return FB_OK;
}
#undef PLAN

static fb_status build_q8(fb_engine *e) {
    fb_model *m = e->m;
    const fb_block_config *c = &m->cfg.block;
    const int L = m->cfg.n_layers;
    const int64_t C = c->d_model, D = C / c->n_heads, QKV = (c->n_heads + 2 * c->n_kv_heads) * D, F = c->d_ff;
    const int64_t hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    q8_weights *q = calloc(1, sizeof *q);
    if (!q) return fb_fail(FB_ERR_OOM, "q8: out of memory");
    q->w = calloc((size_t)L * W_PER_LAYER + 1, sizeof(void *));
    if (!q->w) { free(q); return fb_fail(FB_ERR_OOM, "q8: out of memory"); }
    e->q8 = q;
    for (int l = 0; l <= L; l++) {
        for (int k = 0; k < (l < L ? W_PER_LAYER : 1); k++) {
            const float *W;
            int64_t rows, cols;
            if (l == L) { W = m->params + m->off_lm; rows = m->cfg.vocab_size; cols = C; }
            else {
                const float *p = fb_model_block_params(m, l);
                switch (k) {
                case W_QKV: W = p + m->blk.offset[FB_P_ATTN_QKV_W]; rows = QKV; cols = C; break;
                case W_OUT: W = p + m->blk.offset[FB_P_ATTN_OUT_W]; rows = C; cols = C; break;
                case W_UP: W = p + m->blk.offset[c->mlp == FB_MLP_SWIGLU ? FB_P_FFN_GATE_W : FB_P_FFN_UP_W]; rows = hF; cols = C; break;
                default: W = p + m->blk.offset[FB_P_FFN_DOWN_W]; rows = C; cols = F; break;
                }
            }
            if (cols % 32) continue;   /* Q8_0 blocks need multiples of 32: keep fp32 */
            void *dst = fb_aligned_alloc(fb_q8_0_row_bytes(cols) * (size_t)rows);
            if (!dst) return fb_fail(FB_ERR_OOM, "q8: cannot allocate quantized weights");
            fb_status qs = fb_q8_0_quantize(dst, W, rows, cols);
            if (qs != FB_OK) { free(dst); return qs; }
            q->w[(size_t)l * W_PER_LAYER + (size_t)k] = dst;
        }
    }
    return FB_OK;
}

fb_status fb_engine_init(fb_engine *e, fb_model *m, int n_seqs, int max_T, int max_rows, int use_q8) {
    memset(e, 0, sizeof *e);
    if (!m) return fb_fail(FB_ERR_INVALID_ARG, "engine: NULL model");
    if (max_rows <= 0 || n_seqs <= 0) return fb_fail(FB_ERR_INVALID_ARG, "engine: sizes must be > 0");
    const fb_block_config *c = &m->cfg.block;
    if (c->positions == FB_POS_LEARNED && max_T > m->cfg.max_seq)
        return fb_fail(FB_ERR_SHAPE, "context %d exceeds the model's %d learned positions", max_T, m->cfg.max_seq);
    e->m = m;
    e->max_rows = max_rows;
    const size_t R = (size_t)max_rows, C = (size_t)c->d_model, D = C / (size_t)c->n_heads;
    const size_t QKV = ((size_t)c->n_heads + 2 * (size_t)c->n_kv_heads) * D, F = (size_t)c->d_ff;
    const size_t hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F, V = (size_t)m->cfg.vocab_size;
    const size_t floats = R * (4 * C + QKV + hF + F + V + (size_t)c->n_heads) + 64;
    e->ws = fb_aligned_alloc(floats * sizeof(float));
    if (!e->ws) return fb_fail(FB_ERR_OOM, "engine: cannot allocate scratch for %d rows", max_rows);
    float *p = e->ws;
    e->x = p; p += R * C;
    e->ln = p; p += R * C;
    e->qkv = p; p += R * QKV;
    e->att = p; p += R * C;
    e->tmp = p; p += R * C;
    e->h = p; p += R * hF;
    e->act = p; p += R * F;
    e->lse = p; p += R * (size_t)c->n_heads;
    e->logits = p;
    FB_TRY(fb_kv_cache_init(&e->kv, n_seqs, m->cfg.n_layers, max_T, c->n_kv_heads, (int)D));
    e->use_q8 = use_q8;
    fb_status s = use_q8 ? build_q8(e) : FB_OK;
    if (s == FB_OK) s = plan_workspace(e);
    if (s != FB_OK) fb_engine_free(e);
    return s;
}

void fb_engine_free(fb_engine *e) {
    if (!e) return;
    q8_weights *q = e->q8;
    if (q) {
        for (int i = 0; i < e->m->cfg.n_layers * W_PER_LAYER + 1; i++) free(q->w[i]);
        free(q->w);
        free(q);
    }
    free(e->ws);
    fb_workspace_free(&e->ops_ws);
    fb_kv_cache_free(&e->kv);
    memset(e, 0, sizeof *e);
}

static fb_status norm(fb_engine *e, const fb_block_config *c, float *y, const float *x, const float *w, const float *b,
                      int64_t N, float *stat) {
    if (c->norm == FB_NORM_LAYERNORM)
        return fb_layernorm_forward(&e->ops_ws, y, stat, stat + N, x, w, b, N, c->d_model, c->norm_eps);
    return fb_rmsnorm_forward(&e->ops_ws, y, stat, x, w, N, c->d_model, c->norm_eps);
}

fb_status fb_engine_step(fb_engine *e, int n, const int *seq, const int32_t *ids, const unsigned char *want) {
    fb_model *m = e->m;
    const fb_block_config *c = &m->cfg.block;
    if (n <= 0 || n > e->max_rows) return fb_fail(FB_ERR_SHAPE, "engine: %d rows (1..%d allowed)", n, e->max_rows);
    const int64_t C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = C / H, QKV = (H + 2 * Hkv) * D;
    const int64_t F = c->d_ff, V = m->cfg.vocab_size, L = m->cfg.n_layers;
    /* positions and validation */
    int pos_buf[512], *pos = n <= 512 ? pos_buf : malloc(sizeof(int) * (size_t)n);
    if (!pos) return fb_fail(FB_ERR_OOM, "engine: out of memory");
    fb_status st = FB_OK;
    for (int r = 0; r < n && st == FB_OK; r++) {
        if (seq[r] < 0 || seq[r] >= e->kv.n_seqs) st = fb_fail(FB_ERR_INVALID_ARG, "engine: sequence %d out of range", seq[r]);
        else if (ids[r] < 0 || ids[r] >= V) st = fb_fail(FB_ERR_INVALID_ARG, "engine: token id %d outside the vocabulary [0, %lld)", ids[r], (long long)V);
        else {
            const int cont = r > 0 && seq[r - 1] == seq[r];
            for (int q = 0; !cont && q < r && st == FB_OK; q++)
                if (seq[q] == seq[r]) st = fb_fail(FB_ERR_INVALID_ARG, "engine: rows of sequence %d are not consecutive", seq[r]);
            pos[r] = cont ? pos[r - 1] + 1 : e->kv.len[seq[r]];
            if (st == FB_OK && pos[r] >= e->kv.max_T)
                st = fb_fail(FB_ERR_SHAPE, "context full: sequence %d would need position %d but the context holds %d tokens", seq[r], pos[r], e->kv.max_T);
        }
    }
    if (st == FB_OK && e->ops_ws_threads != fb_get_threads()) st = plan_workspace(e);   /* fb_set_threads since */
    if (st != FB_OK) { if (pos != pos_buf) free(pos); return st; }
#define RUN(call) do { if ((st = (call)) != FB_OK) goto done; } while (0)

    /* embedding */
    const float *wte = m->params + m->off_wte, *wpe = c->positions == FB_POS_LEARNED ? m->params + m->off_wpe : NULL;
    for (int r = 0; r < n; r++) {
        float *xr = e->x + (size_t)r * C;
        memcpy(xr, wte + (size_t)ids[r] * C, sizeof(float) * (size_t)C);
        if (wpe) for (int64_t k = 0; k < C; k++) xr[k] += wpe[(size_t)pos[r] * C + k];
    }
    float *stat = e->tmp;   /* norm statistics use tmp before the projections do */
    for (int64_t l = 0; l < L; l++) {
        const float *p = fb_model_block_params(m, (int)l);
        const fb_block_layout *BL = &m->blk;
#define P(name) (BL->numel[name] ? p + BL->offset[name] : NULL)
        RUN(norm(e, c, e->ln, e->x, P(FB_P_ATTN_NORM_W), P(FB_P_ATTN_NORM_B), n, stat));
        RUN(linear(e, (int)l * W_PER_LAYER + W_QKV, e->qkv, e->ln, P(FB_P_ATTN_QKV_W), P(FB_P_ATTN_QKV_B), n, C, QKV));
        /* per sequence group: RoPE, append K/V to the cache, attention */
        for (int r0 = 0; r0 < n;) {
            int r1 = r0 + 1;
            while (r1 < n && seq[r1] == seq[r0]) r1++;
            const int s = seq[r0], T = r1 - r0, p0 = pos[r0];
            float *q = e->qkv + (size_t)r0 * QKV;
            if (c->positions == FB_POS_ROPE) {
                RUN(fb_rope_forward(&e->ops_ws, q, q, 1, T, H, D, QKV, p0, c->rope_theta));
                RUN(fb_rope_forward(&e->ops_ws, q + H * D, q + H * D, 1, T, Hkv, D, QKV, p0, c->rope_theta));
            }
            float *K = fb_kv_keys(&e->kv, s, (int)l), *Vc = fb_kv_values(&e->kv, s, (int)l);
            for (int t = 0; t < T; t++) {
                memcpy(K + (size_t)(p0 + t) * Hkv * D, q + (size_t)t * QKV + H * D, sizeof(float) * (size_t)(Hkv * D));
                memcpy(Vc + (size_t)(p0 + t) * Hkv * D, q + (size_t)t * QKV + (H + Hkv) * D, sizeof(float) * (size_t)(Hkv * D));
            }
            fb_op_args a = fb_attention_args(&e->ops_ws, e->att + (size_t)r0 * C, e->lse, q, K, Vc, 1, T, p0 + T, H, Hkv,
                                             D, 1, QKV, Hkv * D, C);
            RUN(fb_op_run(T <= 4 ? FB_OP_ATTENTION_DECODE : FB_OP_ATTENTION_FWD, &a));
            r0 = r1;
        }
        RUN(linear(e, (int)l * W_PER_LAYER + W_OUT, e->tmp, e->att, P(FB_P_ATTN_OUT_W), P(FB_P_ATTN_OUT_B), n, C, C));
        RUN(fb_residual_forward(&e->ops_ws, e->x, e->x, e->tmp, (int64_t)n * C));
        RUN(norm(e, c, e->ln, e->x, P(FB_P_FFN_NORM_W), P(FB_P_FFN_NORM_B), n, stat));
        if (c->mlp == FB_MLP_SWIGLU) {
            RUN(linear(e, (int)l * W_PER_LAYER + W_UP, e->h, e->ln, p + BL->offset[FB_P_FFN_GATE_W], P(FB_P_FFN_GATE_B), n,
                       C, 2 * F));
            RUN(fb_swiglu_forward(&e->ops_ws, e->act, e->h, n, F));
        } else {
            RUN(linear(e, (int)l * W_PER_LAYER + W_UP, e->h, e->ln, P(FB_P_FFN_UP_W), P(FB_P_FFN_UP_B), n, C, F));
            if (c->mlp == FB_MLP_GELU_TANH) RUN(fb_gelu_tanh_forward(&e->ops_ws, e->act, e->h, (int64_t)n * F));
            else RUN(fb_gelu_forward(&e->ops_ws, e->act, e->h, (int64_t)n * F));
        }
        RUN(linear(e, (int)l * W_PER_LAYER + W_DOWN, e->tmp, e->act, P(FB_P_FFN_DOWN_W), P(FB_P_FFN_DOWN_B), n, F, C));
        RUN(fb_residual_forward(&e->ops_ws, e->x, e->x, e->tmp, (int64_t)n * C));
#undef P
    }
    /* cached lengths advance */
    for (int r = 0; r < n; r++)
        if (pos[r] + 1 > e->kv.len[seq[r]]) e->kv.len[seq[r]] = pos[r] + 1;
    /* final norm + LM head on the rows that want logits (gathered) */
    int k = 0;
    for (int r = 0; r < n; r++)
        if (!want || want[r]) {
            if (k != r) memcpy(e->x + (size_t)k * C, e->x + (size_t)r * C, sizeof(float) * (size_t)C);
            k++;
        }
    if (k) {
        const float *nb = m->off_normf_b ? m->params + m->off_normf_b : NULL;
        RUN(norm(e, c, e->ln, e->x, m->params + m->off_normf_w, nb, k, stat));
        RUN(linear(e, (int)L * W_PER_LAYER, e->logits, e->ln, m->params + m->off_lm, NULL, k, C, V));
    }
#undef RUN
done:
    if (pos != pos_buf) free(pos);
    return st;
}

fb_status fb_engine_prefill(fb_engine *e, int seq, const int32_t *ids, int n, int chunk) {
    if (n <= 0) return fb_fail(FB_ERR_INVALID_ARG, "prefill: empty prompt");
    if (chunk <= 0 || chunk > e->max_rows) chunk = e->max_rows;
    int seqs[1024];
    unsigned char want[1024];
    if (chunk > 1024) chunk = 1024;
    for (int i = 0; i < chunk; i++) seqs[i] = seq;
    for (int i0 = 0; i0 < n; i0 += chunk) {
        int k = n - i0 < chunk ? n - i0 : chunk;
        memset(want, 0, (size_t)k);
        if (i0 + k == n) want[k - 1] = 1;
        FB_TRY(fb_engine_step(e, k, seqs, ids + i0, want));
    }
    return FB_OK;
}
