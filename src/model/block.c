/*
 * One pre-norm transformer block:
 *   X' = X  + W_o · Attn(RoPE?(W_qkv · Norm1(X)))
 *   Y  = X' + W_down · Act(W_up · Norm2(X'))       (Act: GELU, or SwiGLU on gate|up)
 * Q, K and V come from one GEMM on the fused [Wq; Wk; Wv] weight and are
 * used in place (attention reads them through token strides), so there is
 * no split/transpose copy anywhere.
 */
#include "model/block.h"
#include "core/error.h"
#include "core/runtime.h"
#include "ops/kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct fb_block {
    fb_block_config cfg;
    fb_block_layout layout;
    float *params;
    float *ws;              /* activation workspace for fb_block_forward */
    size_t ws_floats;
    fb_workspace ops_ws;    /* kernel scratch, grown to the largest B, T seen */
};

static const char *const param_names[FB_P_COUNT] = {
    "attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias", "attn_output.weight",
    "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias",  "ffn_up.weight",  "ffn_up.bias",
    "ffn_gate.weight",  "ffn_gate.bias",  "ffn_down.weight", "ffn_down.bias",
};

const char *fb_block_param_name(fb_block_param p) { return (p >= 0 && p < FB_P_COUNT) ? param_names[p] : NULL; }

void fb_block_layout_compute(const fb_block_config *c, fb_block_layout *L) { fb_block_layout_compute_stored(c, 0, L); }

void fb_block_layout_compute_stored(const fb_block_config *c, unsigned unstored, fb_block_layout *L) {
    const size_t C = (size_t)c->d_model, D = C / (size_t)c->n_heads, F = (size_t)c->d_ff;
    const size_t QKV = ((size_t)c->n_heads + 2 * (size_t)c->n_kv_heads) * D;
    const int bias = c->bias, ln_bias = c->bias && c->norm == FB_NORM_LAYERNORM, glu = c->mlp == FB_MLP_SWIGLU;
    size_t *n = L->numel;
    memset(L, 0, sizeof *L);
    n[FB_P_ATTN_NORM_W] = C;           n[FB_P_ATTN_NORM_B] = ln_bias ? C : 0;
    n[FB_P_ATTN_QKV_W] = QKV * C;      n[FB_P_ATTN_QKV_B] = bias ? QKV : 0;
    n[FB_P_ATTN_OUT_W] = C * C;        n[FB_P_ATTN_OUT_B] = bias ? C : 0;
    n[FB_P_FFN_NORM_W] = C;            n[FB_P_FFN_NORM_B] = ln_bias ? C : 0;
    n[FB_P_FFN_GATE_W] = glu ? F * C : 0;
    n[FB_P_FFN_UP_W] = F * C;
    n[FB_P_FFN_GATE_B] = glu && bias ? F : 0;
    n[FB_P_FFN_UP_B] = bias ? F : 0;
    n[FB_P_FFN_DOWN_W] = C * F;        n[FB_P_FFN_DOWN_B] = bias ? C : 0;
    /* Memory order; "glued" tensors follow their partner with no padding. */
    static const struct { fb_block_param p; int glued; } order[FB_P_COUNT] = {
        {FB_P_ATTN_NORM_W, 0}, {FB_P_ATTN_NORM_B, 0}, {FB_P_ATTN_QKV_W, 0}, {FB_P_ATTN_QKV_B, 0},
        {FB_P_ATTN_OUT_W, 0},  {FB_P_ATTN_OUT_B, 0},  {FB_P_FFN_NORM_W, 0}, {FB_P_FFN_NORM_B, 0},
        {FB_P_FFN_GATE_W, 0},  {FB_P_FFN_UP_W, 1},    {FB_P_FFN_GATE_B, 0}, {FB_P_FFN_UP_B, 1},
        {FB_P_FFN_DOWN_W, 0},  {FB_P_FFN_DOWN_B, 0},
    };
    size_t off = 0;
    for (int i = 0; i < FB_P_COUNT; i++) {
        if (unstored & (1u << order[i].p)) continue;   /* offset 0, no floats */
        if (!order[i].glued) off = (off + 15) & ~(size_t)15;   /* 64-byte aligned */
        L->offset[order[i].p] = off;
        off += n[order[i].p];
    }
    L->total = (off + 15) & ~(size_t)15;
}

size_t fb_block_acts_floats(const fb_block_config *c, int B, int T) {
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->d_model, D = C / (size_t)c->n_heads;
    const size_t QKV = ((size_t)c->n_heads + 2 * (size_t)c->n_kv_heads) * D, F = (size_t)c->d_ff;
    const size_t hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    return N * (6 * C + QKV + hF + F + 4) + (size_t)B * (size_t)c->n_heads * (size_t)T;
}

void fb_block_acts_carve(const fb_block_config *c, int B, int T, float *p, fb_block_acts *a) {
    const size_t N = (size_t)B * (size_t)T, C = (size_t)c->d_model, D = C / (size_t)c->n_heads;
    const size_t QKV = ((size_t)c->n_heads + 2 * (size_t)c->n_kv_heads) * D, F = (size_t)c->d_ff;
    const size_t hF = c->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    a->ln1 = p; p += N * C;
    a->ln1_stat[0] = p; p += N;
    a->ln1_stat[1] = p; p += N;
    a->qkv = p; p += N * QKV;
    a->att = p; p += N * C;
    a->lse = p; p += (size_t)B * (size_t)c->n_heads * (size_t)T;
    a->x1 = p; p += N * C;
    a->ln2 = p; p += N * C;
    a->ln2_stat[0] = p; p += N;
    a->ln2_stat[1] = p; p += N;
    a->h = p; p += N * hF;
    a->act = p; p += N * F;
    a->tmp = p;
}

static fb_status norm_forward(const fb_block_config *c, const fb_workspace *ws, float *y, float *stat[2],
                              const float *x, const float *w, const float *b, int64_t N) {
    if (c->norm == FB_NORM_LAYERNORM)
        return fb_layernorm_forward(ws, y, stat[0], stat[1], x, w, b, N, c->d_model, c->norm_eps);
    return fb_rmsnorm_forward(ws, y, stat[1], x, w, N, c->d_model, c->norm_eps);
}

/* Spans of equal length on consecutive rows at one pos0: a [B, T] batch. */
static int uniform_spans(const fb_row_span *sp, int n) {
    for (int i = 1; i < n; i++)
        if (sp[i].n != sp[0].n || sp[i].pos0 != sp[0].pos0 || sp[i].row0 != sp[0].row0 + i * sp[0].n) return 0;
    return 1;
}

static fb_status self_attend(void *ctx, const fb_block_config *c, const fb_workspace *ws, int layer, float *qkv,
                             float *att, float *lse, const fb_row_span *sp, int n_spans) {
    (void)ctx;
    (void)layer;
    const int64_t C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = C / H, QKV = (H + 2 * Hkv) * D;
    const int uniform = uniform_spans(sp, n_spans);
    for (int i = 0; i < n_spans; i += uniform ? n_spans : 1) {
        const int B = uniform ? n_spans : 1, T = sp[i].n;
        float *q = qkv + (int64_t)sp[i].row0 * QKV;
        FB_TRY(fb_attention_forward(ws, att + (int64_t)sp[i].row0 * C, lse + (int64_t)sp[i].row0 * H, q, q + H * D,
                                    q + (H + Hkv) * D, B, T, T, H, Hkv, D, 1, QKV, QKV, C));
    }
    return FB_OK;
}

const fb_attention_source fb_attention_self = {self_attend, NULL};

static fb_status linear(const fb_block_weights *w, const fb_workspace *ws, fb_block_matrix m, fb_block_param p,
                        fb_block_param bias, float *y, const float *x, int64_t N, int64_t C, int64_t OC) {
    const fb_block_layout *L = w->layout;
    const float *b = L->numel[bias] ? w->params + L->offset[bias] : NULL;
    if (w->q8[m]) return fb_matmul_q8_0_forward(ws, y, w->q8[m], x, b, N, C, OC);
    return fb_matmul_forward(ws, y, x, w->params + L->offset[p], b, N, C, OC);
}

static fb_status rope_rows(const fb_block_config *c, const fb_workspace *ws, float *qkv, const fb_row_span *sp,
                           int n_spans) {
    const int64_t H = c->n_heads, Hkv = c->n_kv_heads, D = c->d_model / H, QKV = (H + 2 * Hkv) * D;
    const int uniform = uniform_spans(sp, n_spans);
    for (int i = 0; i < n_spans; i += uniform ? n_spans : 1) {
        const int64_t B = uniform ? n_spans : 1;
        float *q = qkv + (int64_t)sp[i].row0 * QKV;
        FB_TRY(fb_rope_forward(ws, q, q, B, sp[i].n, H, D, QKV, sp[i].pos0, c->rope_theta));                 /* Q heads */
        FB_TRY(fb_rope_forward(ws, q + H * D, q + H * D, B, sp[i].n, Hkv, D, QKV, sp[i].pos0, c->rope_theta)); /* K heads */
    }
    return FB_OK;
}

fb_status fb_block_forward_rows(const fb_block_config *c, const fb_block_weights *w, fb_block_acts *a,
                                const fb_workspace *ws, float *y, const float *x, int64_t N, const fb_row_span *spans,
                                int n_spans, int layer, const fb_attention_source *src) {
    const int64_t C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = C / H;
    const int64_t QKV = (H + 2 * Hkv) * D, F = c->d_ff;
    const fb_block_layout *L = w->layout;
#define P(name) (L->numel[name] ? w->params + L->offset[name] : NULL)
    /* attention half */
    FB_TRY(norm_forward(c, ws, a->ln1, a->ln1_stat, x, P(FB_P_ATTN_NORM_W), P(FB_P_ATTN_NORM_B), N));
    FB_TRY(linear(w, ws, FB_BM_QKV, FB_P_ATTN_QKV_W, FB_P_ATTN_QKV_B, a->qkv, a->ln1, N, C, QKV));
    if (c->positions == FB_POS_ROPE) FB_TRY(rope_rows(c, ws, a->qkv, spans, n_spans));
    FB_TRY(src->attend(src->ctx, c, ws, layer, a->qkv, a->att, a->lse, spans, n_spans));
    FB_TRY(linear(w, ws, FB_BM_OUT, FB_P_ATTN_OUT_W, FB_P_ATTN_OUT_B, a->tmp, a->att, N, C, C));
    FB_TRY(fb_residual_forward(ws, a->x1, x, a->tmp, N * C));   /* x is not read after this: y may be x */
    /* MLP half */
    FB_TRY(norm_forward(c, ws, a->ln2, a->ln2_stat, a->x1, P(FB_P_FFN_NORM_W), P(FB_P_FFN_NORM_B), N));
    if (c->mlp == FB_MLP_SWIGLU) {
        /* gate|up weights (and biases) are adjacent: one GEMM gives [N, 2F]. */
        FB_TRY(linear(w, ws, FB_BM_UP, FB_P_FFN_GATE_W, FB_P_FFN_GATE_B, a->h, a->ln2, N, C, 2 * F));
        FB_TRY(fb_swiglu_forward(ws, a->act, a->h, N, F));
    } else {
        FB_TRY(linear(w, ws, FB_BM_UP, FB_P_FFN_UP_W, FB_P_FFN_UP_B, a->h, a->ln2, N, C, F));
        if (c->mlp == FB_MLP_GELU_TANH) FB_TRY(fb_gelu_tanh_forward(ws, a->act, a->h, N * F));
        else FB_TRY(fb_gelu_forward(ws, a->act, a->h, N * F));
    }
    FB_TRY(linear(w, ws, FB_BM_DOWN, FB_P_FFN_DOWN_W, FB_P_FFN_DOWN_B, a->tmp, a->act, N, F, C));
    FB_TRY(fb_residual_forward(ws, y, a->x1, a->tmp, N * C));
#undef P
    return FB_OK;
}

fb_status fb_block_forward_with(const fb_block_config *c, const float *params, const fb_block_layout *L,
                                fb_block_acts *a, const fb_workspace *ws, float *y, const float *x, int B, int T,
                                int pos0) {
    fb_row_span local[64] = {{0, 0, 0, 0}}, *spans = B <= 64 ? local : malloc(sizeof *spans * (size_t)B);
    if (!spans) return fb_fail(FB_ERR_OOM, "block forward: out of memory");
    for (int b = 0; b < B; b++) spans[b] = (fb_row_span){b * T, T, b, pos0};
    const fb_block_weights w = {.params = params, .layout = L};
    fb_status st = fb_block_forward_rows(c, &w, a, ws, y, x, (int64_t)B * T, spans, B, 0, &fb_attention_self);
    if (spans != local) free(spans);
    return st;
}

fb_status fb_block_init(fb_block **out, const fb_block_config *cfg) {
    if (!out) return fb_fail(FB_ERR_INVALID_ARG, "fb_block_init: NULL output pointer");
    *out = NULL;
    FB_TRY(fb_block_config_validate(cfg));
    fb_block *blk = calloc(1, sizeof *blk);
    if (!blk) return fb_fail(FB_ERR_OOM, "fb_block_init: out of memory");
    blk->cfg = *cfg;
    blk->cfg.head_dim = cfg->d_model / cfg->n_heads;
    fb_block_layout_compute(&blk->cfg, &blk->layout);
    size_t bytes;
    if (!fb_mul_size(blk->layout.total, sizeof(float), &bytes) || !(blk->params = fb_aligned_alloc(bytes))) {
        size_t total = blk->layout.total;
        free(blk);
        return fb_fail(FB_ERR_OOM, "fb_block_init: cannot allocate %zu parameters", total);
    }
    memset(blk->params, 0, bytes);
    *out = blk;
    return FB_OK;
}

void fb_block_free(fb_block *blk) {
    if (!blk) return;
    free(blk->params);
    free(blk->ws);
    fb_workspace_free(&blk->ops_ws);
    free(blk);
}

const fb_block_config *fb_block_get_config(const fb_block *blk) { return blk ? &blk->cfg : NULL; }

float *fb_block_param_ptr(fb_block *blk, fb_block_param p, size_t *numel) {
    if (!blk || p < 0 || p >= FB_P_COUNT) return NULL;
    if (numel) *numel = blk->layout.numel[p];
    return blk->layout.numel[p] ? blk->params + blk->layout.offset[p] : NULL;
}

/* splitmix64 → Box-Muller: a small self-contained generator for init. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void fb_block_init_random(fb_block *blk, uint64_t seed) {
    if (!blk) return;
    uint64_t s = seed;
    for (int p = 0; p < FB_P_COUNT; p++) {
        size_t n;
        float *t = fb_block_param_ptr(blk, (fb_block_param)p, &n);
        if (!t) continue;
        int is_norm_w = p == FB_P_ATTN_NORM_W || p == FB_P_FFN_NORM_W;
        int is_bias = p == FB_P_ATTN_NORM_B || p == FB_P_FFN_NORM_B || p == FB_P_ATTN_QKV_B ||
                      p == FB_P_ATTN_OUT_B || p == FB_P_FFN_UP_B || p == FB_P_FFN_GATE_B || p == FB_P_FFN_DOWN_B;
        for (size_t i = 0; i < n; i++) {
            if (is_norm_w) { t[i] = 1.0f; continue; }
            if (is_bias) { t[i] = 0.0f; continue; }
            double u1 = ((double)(splitmix64(&s) >> 11) + 0.5) / 9007199254740992.0;
            double u2 = (double)(splitmix64(&s) >> 11) / 9007199254740992.0;
            t[i] = (float)(0.02 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        }
    }
}

fb_status fb_block_forward(fb_block *blk, float *y, const float *x, int B, int T, int pos0) {
    if (!blk || !y || !x) return fb_fail(FB_ERR_INVALID_ARG, "fb_block_forward: NULL argument");
    if (B <= 0 || T <= 0) return fb_fail(FB_ERR_SHAPE, "fb_block_forward: B and T must be > 0 (got B=%d T=%d)", B, T);
    if (pos0 < 0) return fb_fail(FB_ERR_SHAPE, "fb_block_forward: pos0 must be >= 0 (got %d)", pos0);
    if (y == x) return fb_fail(FB_ERR_INVALID_ARG, "fb_block_forward: x and y must not alias");
    size_t need = fb_block_acts_floats(&blk->cfg, B, T);
    if (need > blk->ws_floats) {
        size_t bytes;
        float *ws = fb_mul_size(need, sizeof(float), &bytes) ? fb_aligned_alloc(bytes) : NULL;
        if (!ws) return fb_fail(FB_ERR_OOM, "fb_block_forward: cannot allocate %zu activation floats", need);
        free(blk->ws);
        blk->ws = ws;
        blk->ws_floats = need;
    }
    FB_TRY(fb_workspace_reserve(&blk->ops_ws, fb_block_workspace_bytes(&blk->cfg, B, T, 0, fb_get_threads())));
    fb_block_acts acts;
    fb_block_acts_carve(&blk->cfg, B, T, blk->ws, &acts);
    return fb_block_forward_with(&blk->cfg, blk->params, &blk->layout, &acts, &blk->ops_ws, y, x, B, T, pos0);
}
