#include "infer/engine.h"
#include "core/error.h"
#include "core/runtime.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "ops/quant_q8_0.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Q8_0 matrices, per layer in fb_block_matrix order, then the LM head: the
 * model's own Q8_0 store when it was loaded with Q8_0 weights (borrowed),
 * else copies quantized here from its fp32 weights (owned). */
typedef struct q8_weights {
    const void **w;    /* [n_layers·FB_BM_COUNT + 1] (last: LM head); NULL = keep fp32 */
    int owned;
} q8_weights;


static fb_status build_q8(fb_engine *e) {
    fb_model *m = e->m;
    if (m->n_q8) {   /* the slots are in the same order (model.h) */
        q8_weights *q = calloc(1, sizeof *q);
        if (!q) return fb_fail(FB_ERR_OOM, "q8: out of memory");
        q->w = m->q8;
        e->q8 = q;
        return FB_OK;
    }
    const fb_block_config *c = &m->cfg.block;
    const int L = m->cfg.n_layers;
    const int64_t C = c->d_model, D = C / c->n_heads, QKV = (c->n_heads + 2 * c->n_kv_heads) * D, F = c->d_ff;
    const int64_t hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    q8_weights *q = calloc(1, sizeof *q);
    if (!q) return fb_fail(FB_ERR_OOM, "q8: out of memory");
    q->w = calloc((size_t)L * FB_BM_COUNT + 1, sizeof(void *));
    if (!q->w) { free(q); return fb_fail(FB_ERR_OOM, "q8: out of memory"); }
    q->owned = 1;
    e->q8 = q;
    for (int l = 0; l <= L; l++) {
        for (int k = 0; k < (l < L ? FB_BM_COUNT : 1); k++) {
            const float *W;
            int64_t rows, cols;
            if (l == L) { W = m->params + m->off_lm; rows = m->cfg.vocab_size; cols = C; }
            else {
                const float *p = fb_model_block_params(m, l);
                switch (k) {
                case FB_BM_QKV: W = p + m->blk.offset[FB_P_ATTN_QKV_W]; rows = QKV; cols = C; break;
                case FB_BM_OUT: W = p + m->blk.offset[FB_P_ATTN_OUT_W]; rows = C; cols = C; break;
                case FB_BM_UP: W = p + m->blk.offset[c->mlp == FB_MLP_SWIGLU ? FB_P_FFN_GATE_W : FB_P_FFN_UP_W]; rows = hF; cols = C; break;
                default: W = p + m->blk.offset[FB_P_FFN_DOWN_W]; rows = C; cols = F; break;
                }
            }
            if (cols % 32) continue;   /* Q8_0 blocks need multiples of 32: keep fp32 */
            void *dst = fb_aligned_alloc(fb_q8_0_row_bytes(cols) * (size_t)rows);
            if (!dst) return fb_fail(FB_ERR_OOM, "q8: cannot allocate quantized weights");
            fb_status qs = fb_q8_0_quantize(dst, W, rows, cols);
            if (qs != FB_OK) { free(dst); return qs; }
            q->w[(size_t)l * FB_BM_COUNT + (size_t)k] = dst;
        }
    }
    return FB_OK;
}

/* The kernel workspace of fb_engine_step for up to max_rows rows and max_T
 * cached positions: every op call below at its largest dims (the workspace
 * functions only read the dims). */
#define PLAN(op, ...) fb_ws_plan(&need, op, &(fb_op_args){.d = {__VA_ARGS__}}, nt)
static fb_status plan_workspace(fb_engine *e) {
    const fb_model *m = e->m;
    const fb_block_config *c = &m->cfg.block;
    const int64_t R = e->max_rows, Tmax = e->kv.max_T, C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = C / H;
    const int64_t QKV = (H + 2 * Hkv) * D, F = c->d_ff, hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    const int64_t V = m->cfg.vocab_size, bs = e->kv.block_size, width = e->kv.table_width, pool = e->kv.n_blocks;
    const int nt = fb_get_threads();
    const int64_t lin[5][2] = {{C, QKV}, {C, C}, {C, hF}, {F, C}, {C, V}};
    size_t need = 0;
    for (int i = 0; i < 5; i++) {
        PLAN(FB_OP_MATMUL_FWD, R, lin[i][0], lin[i][1]);
        if (e->use_q8) PLAN(FB_OP_MATMUL_Q8_0, R, lin[i][0], lin[i][1]);
    }
    PLAN(c->norm == FB_NORM_LAYERNORM ? FB_OP_LAYERNORM_FWD : FB_OP_RMSNORM_FWD, R, C);
    PLAN(FB_OP_ROPE_FWD, 1, R, H, D, QKV, 0);
    PLAN(FB_OP_ATTENTION_DECODE, 1, R < 4 ? R : 4, Tmax, H, Hkv, D, 1, QKV, Hkv * D, C, bs, width, pool);
    if (R > 4) PLAN(FB_OP_ATTENTION_FWD, 1, R, Tmax, H, Hkv, D, 1, QKV, Hkv * D, C, bs, width, pool);
    PLAN(FB_OP_RESIDUAL_FWD, R * C);
    PLAN(FB_OP_SWIGLU_FWD, R, F);
    PLAN(c->mlp == FB_MLP_GELU_TANH ? FB_OP_GELU_TANH_FWD : FB_OP_GELU_FWD, R * F);
    FB_TRY(fb_workspace_reserve(&e->ops_ws, need));
    e->ops_ws_threads = nt;
    return FB_OK;
}
#undef PLAN

fb_status fb_engine_init(fb_engine *e, fb_model *m, const fb_engine_options *o) {
    memset(e, 0, sizeof *e);
    if (!m || !o) return fb_fail(FB_ERR_INVALID_ARG, "engine: NULL argument");
    if (o->max_rows <= 0 || o->n_seqs <= 0 || o->max_T <= 0) return fb_fail(FB_ERR_INVALID_ARG, "engine: sizes must be > 0");
    const fb_block_config *c = &m->cfg.block;
    if (c->positions == FB_POS_LEARNED && o->max_T > m->cfg.max_seq)
        return fb_fail(FB_ERR_SHAPE, "context %d exceeds the model's %d learned positions", o->max_T, m->cfg.max_seq);
    if (m->n_q8 && !o->q8)
        return fb_fail(FB_ERR_UNSUPPORTED, "engine: the model was loaded with Q8_0 weights only (no fp32 copy of its "
                                           "matrices): run it with Q8_0 weights (q8 = 1), or load it with fp32 weights");
    e->m = m;
    e->max_rows = o->max_rows;
    const size_t R = (size_t)o->max_rows, C = (size_t)c->d_model, V = (size_t)m->cfg.vocab_size;
    const size_t act = (fb_block_acts_floats(c, 1, o->max_rows) + 15) & ~(size_t)15;
    const size_t floats = R * C + act + R * V + 64;
    e->ws = fb_aligned_alloc(floats * sizeof(float));
    e->pos = malloc(sizeof(int) * R);
    e->spans = malloc(sizeof(fb_row_span) * R);
    if (!e->ws || !e->pos || !e->spans) {
        fb_engine_free(e);
        return fb_fail(FB_ERR_OOM, "engine: cannot allocate scratch for %d rows", o->max_rows);
    }
    float *p = e->ws;
    e->x = p; p += R * C;
    fb_block_acts_carve(c, 1, o->max_rows, p, &e->acts); p += act;
    e->logits = p;
    const fb_kv_cache_config kc = {.n_seqs = o->n_seqs, .n_layers = m->cfg.n_layers, .max_T = o->max_T,
                                   .n_kv_heads = c->n_kv_heads, .head_dim = c->d_model / c->n_heads,
                                   .block_size = o->kv_block_size, .n_blocks = o->kv_blocks,
                                   .prefix_cache = o->prefix_cache};
    fb_status s = fb_kv_cache_init(&e->kv, &kc);
    if (s == FB_OK && o->q8) {
        e->use_q8 = 1;
        s = build_q8(e);
    }
    if (s == FB_OK) s = plan_workspace(e);
    if (s != FB_OK) fb_engine_free(e);
    return s;
}

void fb_engine_free(fb_engine *e) {
    if (!e) return;
    q8_weights *q = e->q8;
    if (q && q->owned) {
        for (int i = 0; i < e->m->cfg.n_layers * FB_BM_COUNT + 1; i++) free((void *)q->w[i]);
        free(q->w);
    }
    free(q);
    free(e->ws);
    free(e->pos);
    free(e->spans);
    fb_workspace_free(&e->ops_ws);
    fb_kv_cache_free(&e->kv);
    memset(e, 0, sizeof *e);
}

static fb_status norm(const fb_block_config *c, const fb_workspace *ws, float *y, const float *x, const float *w,
                      const float *b, int64_t N, float *stat) {
    if (c->norm == FB_NORM_LAYERNORM) return fb_layernorm_forward(ws, y, stat, stat + N, x, w, b, N, c->d_model, c->norm_eps);
    return fb_rmsnorm_forward(ws, y, stat, x, w, N, c->d_model, c->norm_eps);
}

/* The KV cache as the block's attention source: append each span's keys and
 * values to its sequence, then attend over everything cached. */
static fb_status cache_attend(void *ctx, const fb_block_config *c, const fb_workspace *ws, int layer, float *qkv,
                              float *att, float *lse, const fb_row_span *sp, int n_spans) {
    fb_kv_cache *kv = ctx;
    const int64_t C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = C / H, QKV = (H + 2 * Hkv) * D;
    for (int i = 0; i < n_spans; i++) {
        const int T = sp[i].n, p0 = sp[i].pos0;
        float *q = qkv + (int64_t)sp[i].row0 * QKV;
        fb_kv_write(kv, sp[i].seq, layer, p0, T, q + H * D, q + (H + Hkv) * D, QKV);
        const fb_kv_view v = fb_kv_layer_view(kv, sp[i].seq, layer);
        fb_op_args a = fb_attention_args(ws, att + (int64_t)sp[i].row0 * C, lse + (int64_t)sp[i].row0 * H, q, v.k, v.v, 1,
                                         T, p0 + T, H, Hkv, D, 1, QKV, Hkv * D, C);
        fb_attention_args_paged(&a, v.table, v.block_size, kv->table_width, v.n_pool_blocks);
        FB_TRY(fb_op_run(T <= 4 ? FB_OP_ATTENTION_DECODE : FB_OP_ATTENTION_FWD, &a));
    }
    return FB_OK;
}

fb_status fb_engine_step(fb_engine *e, int n, const int *seq, const int32_t *ids, const unsigned char *want) {
    fb_model *m = e->m;
    const fb_block_config *c = &m->cfg.block;
    if (n <= 0 || n > e->max_rows) return fb_fail(FB_ERR_SHAPE, "engine: %d rows (1..%d allowed)", n, e->max_rows);
    const int64_t C = c->d_model, V = m->cfg.vocab_size, L = m->cfg.n_layers;
    fb_kv_cache *kv = &e->kv;
    int *pos = e->pos, n_spans = 0;
    /* positions, spans and validation */
    for (int r = 0; r < n; r++) {
        if (seq[r] < 0 || seq[r] >= kv->n_seqs) return fb_fail(FB_ERR_INVALID_ARG, "engine: sequence %d out of range", seq[r]);
        if (ids[r] < 0 || ids[r] >= V)
            return fb_fail(FB_ERR_INVALID_ARG, "engine: token id %d outside the vocabulary [0, %lld)", ids[r], (long long)V);
        const int cont = r > 0 && seq[r - 1] == seq[r];
        if (!cont) {
            for (int k = 0; k < n_spans; k++)
                if (e->spans[k].seq == seq[r])
                    return fb_fail(FB_ERR_INVALID_ARG, "engine: rows of sequence %d are not consecutive", seq[r]);
            e->spans[n_spans++] = (fb_row_span){r, 0, seq[r], fb_kv_len(kv, seq[r])};
        }
        pos[r] = cont ? pos[r - 1] + 1 : fb_kv_len(kv, seq[r]);
        e->spans[n_spans - 1].n++;
        if (pos[r] >= kv->max_T)
            return fb_fail(FB_ERR_SHAPE, "context full: sequence %d would need position %d but the context holds %d tokens",
                           seq[r], pos[r], kv->max_T);
    }
    if (e->ops_ws_threads != fb_get_threads()) FB_TRY(plan_workspace(e));   /* fb_set_threads since the plan */
    /* KV blocks for the new positions, before any work: running out is a status */
    for (int k = 0; k < n_spans; k++) FB_TRY(fb_kv_reserve(kv, e->spans[k].seq, e->spans[k].pos0 + e->spans[k].n));

    /* embedding: the token's row, dequantized when the model holds it as Q8_0 */
    const float *wte = m->params + m->off_wte, *wpe = c->positions == FB_POS_LEARNED ? m->params + m->off_wpe : NULL;
    const uint8_t *wte_q8 = fb_model_q8(m, fb_model_q8_slot_emb(m));
    for (int r = 0; r < n; r++) {
        float *xr = e->x + (size_t)r * C;
        if (wte_q8) fb_q8_0_dequantize_row(xr, wte_q8 + (size_t)ids[r] * fb_q8_0_row_bytes(C), C);
        else memcpy(xr, wte + (size_t)ids[r] * C, sizeof(float) * (size_t)C);
        if (wpe) for (int64_t k = 0; k < C; k++) xr[k] += wpe[(size_t)pos[r] * C + k];
    }
    /* the blocks: the same step sequence as training, attention over the cache */
    const fb_attention_source src = {cache_attend, kv};
    q8_weights *q = e->q8;
    for (int64_t l = 0; l < L; l++) {
        fb_block_weights w = {.params = fb_model_block_params(m, (int)l), .layout = &m->blk};
        for (int k = 0; q && k < FB_BM_COUNT; k++) w.q8[k] = q->w[(size_t)l * FB_BM_COUNT + (size_t)k];
        FB_TRY(fb_block_forward_rows(c, &w, &e->acts, &e->ops_ws, e->x, e->x, n, e->spans, n_spans, (int)l, &src));
    }
    for (int k = 0; k < n_spans; k++) fb_kv_set_len(kv, e->spans[k].seq, e->spans[k].pos0 + e->spans[k].n);
    /* final norm + LM head on the rows that want logits (gathered) */
    int k = 0;
    for (int r = 0; r < n; r++)
        if (!want || want[r]) {
            if (k != r) memcpy(e->x + (size_t)k * C, e->x + (size_t)r * C, sizeof(float) * (size_t)C);
            k++;
        }
    if (k) {
        const float *nb = m->off_normf_b ? m->params + m->off_normf_b : NULL;
        float *ln = e->acts.ln1, *stat = e->acts.ln1_stat[0];   /* free after the last block */
        FB_TRY(norm(c, &e->ops_ws, ln, e->x, m->params + m->off_normf_w, nb, k, stat));
        const void *lm_q8 = q ? q->w[(size_t)L * FB_BM_COUNT] : NULL;
        if (lm_q8) FB_TRY(fb_matmul_q8_0_forward(&e->ops_ws, e->logits, lm_q8, ln, NULL, k, C, V));
        else FB_TRY(fb_matmul_forward(&e->ops_ws, e->logits, ln, m->params + m->off_lm, NULL, k, C, V));
    }
    return FB_OK;
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
