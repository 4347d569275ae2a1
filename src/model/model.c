/*
 * The whole model: embedding → n_layers blocks → final norm → LM head.
 *
 * Memory: parameters, gradients and (separately) AdamW moments each use one
 * allocation laid out by the same size table (tensors[]). Training
 * activations are carved from one allocation by fb_model_alloc_training:
 *   resid[l]   [N, C] the residual stream entering layer l (l = 0..L)
 *   acts[l]    block activations (one shared set with --recompute)
 *   lnf        [N, C] final norm output (+ its statistics)
 *   losses     [N]
 *   dres, dlnf [N, C] and one block-gradient scratch reused by all layers
 *
 * A model planned with FB_MODEL_Q8_0 (inference) holds its matrices in a
 * second allocation, the Q8_0 store, one slot per matrix (model.h); those
 * tensors take no floats in params, which then holds only what stays fp32
 * (norms, biases, learned positions, matrices whose rows are not whole
 * 32-value blocks).
 */
#include "model/model.h"
#include "core/error.h"
#include "core/q8_0.h"
#include "core/runtime.h"
#include "ops/kernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

fb_status fb_model_config_validate(const fb_model_config *c) {
    if (!c) return fb_fail(FB_ERR_INVALID_ARG, "model config: NULL pointer");
    FB_TRY(fb_block_config_validate(&c->block));
    if (c->n_layers <= 0 || c->n_layers > 4096) return fb_fail(FB_ERR_CONFIG, "n_layers: must be in [1, 4096] (got %d)", c->n_layers);
    if (c->vocab_size <= 0 || c->vocab_size > (1 << 24))
        return fb_fail(FB_ERR_CONFIG, "vocab_size: must be in [1, 16777216] (got %d)", c->vocab_size);
    if (c->max_seq <= 0 || c->max_seq > (1 << 22)) return fb_fail(FB_ERR_CONFIG, "max_seq: must be in [1, 4194304] (got %d)", c->max_seq);
    if (c->tied != 0 && c->tied != 1) return fb_fail(FB_ERR_CONFIG, "tied: must be 0 or 1 (got %d)", c->tied);
    return FB_OK;
}

static void add_tensor(fb_model *m, const char *name, size_t offset, int ndim, int64_t d0, int64_t d1, int decay) {
    fb_model_tensor_info *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = offset;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 1;
    t->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    t->decay = decay;
    t->q8 = -1;
    t->q8_row0 = 0;
}

/* The last tensor added is held as Q8_0 rows of slot `slot` from row row0. */
static void last_in_q8(fb_model *m, int slot, int64_t row0) {
    m->tensors[m->n_tensors - 1].q8 = slot;
    m->tensors[m->n_tensors - 1].q8_row0 = row0;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Planning builds the tensor table (names, shapes, offsets) and allocates no
 * parameter memory, so loaders can check a file's header against its tensors
 * before trusting its sizes; fb_model_alloc then allocates. */
fb_status fb_model_plan(fb_model **out, const fb_model_config *cfg) { return fb_model_plan_weights(out, cfg, FB_MODEL_F32); }

/* The block matrix (and row within it) a weight parameter belongs to. */
static int block_matrix_of(fb_block_param p, const fb_block_config *c, int64_t *row0) {
    *row0 = 0;
    switch (p) {
    case FB_P_ATTN_QKV_W: return FB_BM_QKV;
    case FB_P_ATTN_OUT_W: return FB_BM_OUT;
    case FB_P_FFN_GATE_W: return FB_BM_UP;
    case FB_P_FFN_UP_W: *row0 = c->mlp == FB_MLP_SWIGLU ? c->d_ff : 0; return FB_BM_UP;
    case FB_P_FFN_DOWN_W: return FB_BM_DOWN;
    default: return -1;
    }
}

fb_status fb_model_plan_weights(fb_model **out, const fb_model_config *cfg, fb_model_weights w) {
    if (!out) return fb_fail(FB_ERR_INVALID_ARG, "fb_model_plan: NULL output pointer");
    *out = NULL;
    if (w != FB_MODEL_F32 && w != FB_MODEL_Q8_0) return fb_fail(FB_ERR_INVALID_ARG, "fb_model_plan: unknown weight type %d", (int)w);
    FB_TRY(fb_model_config_validate(cfg));
    fb_model *m = calloc(1, sizeof *m);
    if (!m) return fb_fail(FB_ERR_OOM, "fb_model_init: out of memory");
    m->cfg = *cfg;
    m->cfg.block.head_dim = cfg->block.d_model / cfg->block.n_heads;
    const fb_block_config *bc = &m->cfg.block;
    const size_t C = (size_t)bc->d_model, V = (size_t)cfg->vocab_size, F = (size_t)bc->d_ff;
    const size_t D = C / (size_t)bc->n_heads, QKV = ((size_t)bc->n_heads + 2 * (size_t)bc->n_kv_heads) * D;
    const size_t hF = bc->mlp == FB_MLP_SWIGLU ? 2 * F : F;
    /* Q8_0 rows are whole 32-value blocks: matrices of other row lengths stay fp32 */
    const int qC = w == FB_MODEL_Q8_0 && C % FB_Q8_0_BLOCK == 0, qF = w == FB_MODEL_Q8_0 && F % FB_Q8_0_BLOCK == 0;
    unsigned unstored = 0;
    if (qC) unstored |= 1u << FB_P_ATTN_QKV_W | 1u << FB_P_ATTN_OUT_W | 1u << FB_P_FFN_UP_W | 1u << FB_P_FFN_GATE_W;
    if (qF) unstored |= 1u << FB_P_FFN_DOWN_W;
    fb_block_layout_compute_stored(bc, unstored, &m->blk);
    const int learned = bc->positions == FB_POS_LEARNED, ln_bias = bc->norm == FB_NORM_LAYERNORM && bc->bias;
    m->tensors = calloc((size_t)cfg->n_layers * FB_P_COUNT + 8, sizeof *m->tensors);
    if (w == FB_MODEL_Q8_0) {
        m->n_q8 = cfg->n_layers * FB_BM_COUNT + 2;
        m->q8_off = malloc(sizeof *m->q8_off * (size_t)m->n_q8);
        m->q8 = calloc((size_t)m->n_q8, sizeof *m->q8);
    }
    if (!m->tensors || (m->n_q8 && (!m->q8_off || !m->q8))) { fb_model_free(m); return fb_fail(FB_ERR_OOM, "fb_model_init: out of memory"); }
    /* the Q8_0 store's slots: per layer qkv, out, gate|up (or up), down; the LM head; the embedding */
    for (int i = 0; i < m->n_q8; i++) m->q8_off[i] = SIZE_MAX;
    for (int sl = 0; sl < m->n_q8 - 2; sl++) {
        const int k = sl % FB_BM_COUNT;
        const size_t rows = k == FB_BM_QKV ? QKV : k == FB_BM_UP ? hF : C, cols = k == FB_BM_DOWN ? F : C;
        if (!(k == FB_BM_DOWN ? qF : qC)) continue;
        m->q8_off[sl] = m->q8_bytes;
        m->q8_bytes = align64(m->q8_bytes + rows * fb_q8_0_row_bytes((int64_t)cols));
    }
    if (qC) {
        const int lm = fb_model_q8_slot_lm(m), emb = fb_model_q8_slot_emb(m);
        m->q8_off[lm] = m->q8_bytes;
        m->q8_bytes = align64(m->q8_bytes + V * fb_q8_0_row_bytes((int64_t)C));
        if (cfg->tied) m->q8_off[emb] = m->q8_off[lm];   /* one tensor serves both */
        else {
            m->q8_off[emb] = m->q8_bytes;
            m->q8_bytes = align64(m->q8_bytes + V * fb_q8_0_row_bytes((int64_t)C));
        }
    }
    size_t off = 0;
    m->off_wte = off;
    add_tensor(m, "token_embd.weight", off, 2, (int64_t)V, (int64_t)C, 0);
    if (qC) last_in_q8(m, fb_model_q8_slot_emb(m), 0);
    else off = align16(off + V * C);
    if (learned) {
        m->off_wpe = off;
        add_tensor(m, "position_embd.weight", off, 2, cfg->max_seq, (int64_t)C, 0);
        off = align16(off + (size_t)cfg->max_seq * C);
    }
    m->off_blocks = off;
    for (int l = 0; l < cfg->n_layers; l++) {
        size_t base = off + (size_t)l * m->blk.total;
        for (int p = 0; p < FB_P_COUNT; p++) {
            size_t n = m->blk.numel[p];
            if (!n) continue;
            char name[80];
            snprintf(name, sizeof name, "blk.%d.%s", l, fb_block_param_name((fb_block_param)p));
            int is_w = strstr(name, "norm") == NULL && strstr(name, ".weight") != NULL;
            int64_t rows = (int64_t)(n / C), cols = (int64_t)C;
            if (p == FB_P_FFN_DOWN_W) { rows = (int64_t)C; cols = bc->d_ff; }
            if (is_w) add_tensor(m, name, base + m->blk.offset[p], 2, rows, cols, 1);
            else add_tensor(m, name, base + m->blk.offset[p], 1, (int64_t)n, 1, 0);
            int64_t row0;
            const int bm = block_matrix_of((fb_block_param)p, bc, &row0);
            if (unstored & (1u << p)) last_in_q8(m, l * FB_BM_COUNT + bm, row0);
        }
    }
    off += (size_t)cfg->n_layers * m->blk.total;
    m->off_normf_w = off;
    add_tensor(m, "output_norm.weight", off, 1, (int64_t)C, 1, 0);
    off = align16(off + C);
    if (ln_bias) {
        m->off_normf_b = off;
        add_tensor(m, "output_norm.bias", off, 1, (int64_t)C, 1, 0);
        off = align16(off + C);
    }
    m->off_lm = m->off_wte;
    if (!cfg->tied) {
        m->off_lm = off;
        add_tensor(m, "output.weight", off, 2, (int64_t)V, (int64_t)C, 1);
        if (qC) last_in_q8(m, fb_model_q8_slot_lm(m), 0);
        else off = align16(off + V * C);
    }
    m->n_floats = off;
    *out = m;
    return FB_OK;
}

fb_status fb_model_alloc(fb_model *m, int with_grads) {
    if (!m || m->params) return fb_fail(FB_ERR_INVALID_ARG, "fb_model_alloc: no planned model, or already allocated");
    if (m->n_q8 && with_grads) return fb_fail(FB_ERR_INVALID_ARG, "fb_model_alloc: a model with Q8_0 weights has no gradients");
    size_t bytes;
    if (!fb_mul_size(m->n_floats, sizeof(float), &bytes) || !(m->params = fb_aligned_alloc(bytes)) ||
        (with_grads && !(m->grads = fb_aligned_alloc(bytes)))) {
        free(m->params);
        m->params = NULL;
        return fb_fail(FB_ERR_OOM, "cannot allocate %zu parameters (%.1f MiB%s)", m->n_floats,
                       (double)m->n_floats * sizeof(float) / 1048576.0, with_grads ? " for the weights and as much for gradients" : "");
    }
    if (m->n_q8) {
        if (!(m->q8_data = fb_aligned_alloc(m->q8_bytes))) {
            free(m->params);
            m->params = NULL;
            return fb_fail(FB_ERR_OOM, "cannot allocate %.1f MiB of Q8_0 weights", (double)m->q8_bytes / 1048576.0);
        }
        memset(m->q8_data, 0, m->q8_bytes);
        for (int i = 0; i < m->n_q8; i++) m->q8[i] = m->q8_off[i] == SIZE_MAX ? NULL : m->q8_data + m->q8_off[i];
    }
    memset(m->params, 0, bytes);
    if (with_grads) memset(m->grads, 0, bytes);
    return FB_OK;
}

fb_status fb_model_init(fb_model **out, const fb_model_config *cfg) {
    FB_TRY(fb_model_plan(out, cfg));
    fb_status s = fb_model_alloc(*out, 1);
    if (s != FB_OK) { fb_model_free(*out); *out = NULL; }
    return s;
}

void fb_model_free(fb_model *m) {
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->acts);
    free(m->tensors);
    free(m->blk_acts);
    free(m->q8_data);
    free(m->q8_off);
    free(m->q8);
    fb_workspace_free(&m->ws);
    free(m);
}

size_t fb_model_weight_bytes(const fb_model *m) { return m ? m->n_floats * sizeof(float) + (m->q8_data ? m->q8_bytes : 0) : 0; }

/* The table holds token_embd, position_embd (learned), then each layer's
 * parameters in fb_block_param order (those the config has), then the rest. */
int fb_model_block_tensor(const fb_model *m, int l, fb_block_param p) {
    if (!m || l < 0 || l >= m->cfg.n_layers || p < 0 || p >= FB_P_COUNT || !m->blk.numel[p]) return -1;
    int per_layer = 0, before = 0;
    for (int q = 0; q < FB_P_COUNT; q++) {
        per_layer += m->blk.numel[q] != 0;
        before += q < (int)p && m->blk.numel[q] != 0;
    }
    return 1 + (m->cfg.block.positions == FB_POS_LEARNED) + l * per_layer + before;
}

uint8_t *fb_model_tensor_q8_row(fb_model *m, int i, int64_t r) {
    if (!m || !m->q8_data || i < 0 || i >= m->n_tensors || m->tensors[i].q8 < 0) return NULL;
    const fb_model_tensor_info *t = &m->tensors[i];
    return m->q8_data + m->q8_off[t->q8] + (size_t)(t->q8_row0 + r) * fb_q8_0_row_bytes(t->shape[1]);
}

fb_status fb_model_fill_q8(fb_model *m, int i, int64_t row0, int64_t rows, fb_row_get get, const void *q8src,
                           fb_rows_done done, const void *ctx, int64_t *bad_row) {
    if (bad_row) *bad_row = -1;
    uint8_t *dst = fb_model_tensor_q8_row(m, i, row0 > 0 ? row0 : 0);
    if (!dst || (!get && !q8src)) return fb_fail(FB_ERR_INVALID_ARG, "fb_model_fill_q8: no Q8_0 tensor %d, or no source", i);
    const fb_model_tensor_info *t = &m->tensors[i];
    if (row0 < 0 || rows < 0 || rows > t->shape[0] - row0)
        return fb_fail(FB_ERR_SHAPE, "%s: rows [%lld, +%lld) outside its %lld rows", t->name, (long long)row0, (long long)rows,
                       (long long)t->shape[0]);
    const int64_t C = t->shape[1];
    const size_t rb = fb_q8_0_row_bytes(C);
    /* chunks of about 8 MiB as fp32: the loader drops each chunk's source
     * pages before the next, so reading a tensor never holds all of it */
    const int64_t chunk = C >= (1 << 21) ? 1 : ((int64_t)1 << 21) / C;
    int64_t bad = INT64_MAX;
    for (int64_t r0 = 0; r0 < rows && bad == INT64_MAX; r0 += chunk) {
        const int64_t r1 = rows - r0 < chunk ? rows : r0 + chunk;
        if (!get) {
            #pragma omp parallel for schedule(static) if ((r1 - r0) * C > (1 << 16))
            for (int64_t r = r0; r < r1; r++) memcpy(dst + (size_t)r * rb, (const uint8_t *)q8src + (size_t)r * rb, rb);
        } else {
            #pragma omp parallel if ((r1 - r0) * C > (1 << 16)) reduction(min : bad)
            {
                float *buf = malloc(sizeof(float) * (size_t)C);   /* one row per thread */
                #pragma omp for schedule(static)
                for (int64_t r = r0; r < r1; r++) {
                    if (!buf || get(ctx, (uint64_t)r, buf) != FB_OK) { bad = r < bad ? r : bad; continue; }
                    fb_q8_0_quantize_row(dst + (size_t)r * rb, buf, C);
                }
                free(buf);
            }
        }
        if (done) done(ctx, (uint64_t)r0, (uint64_t)r1);
    }
    if (bad == INT64_MAX) return FB_OK;
    if (bad_row) *bad_row = bad;
    /* the failing row again on this thread, for its message (errors are per thread) */
    float *buf = malloc(sizeof(float) * (size_t)C);
    fb_status s = buf ? get(ctx, (uint64_t)bad, buf) : fb_fail(FB_ERR_OOM, "%s: out of memory for a row buffer", t->name);
    free(buf);
    return s != FB_OK ? s : fb_fail(FB_ERR_OOM, "%s: out of memory for a row buffer", t->name);
}

const fb_model_config *fb_model_get_config(const fb_model *m) { return m ? &m->cfg : NULL; }
int fb_model_num_tensors(const fb_model *m) { return m ? m->n_tensors : 0; }
const char *fb_model_tensor_name(const fb_model *m, int i) { return m && i >= 0 && i < m->n_tensors ? m->tensors[i].name : NULL; }
float *fb_model_params(fb_model *m) { return m ? m->params : NULL; }
float *fb_model_grads(fb_model *m) { return m ? m->grads : NULL; }

size_t fb_model_num_params(const fb_model *m) {
    size_t n = 0;
    for (int i = 0; m && i < m->n_tensors; i++) n += m->tensors[i].numel;
    return n;
}

float *fb_model_tensor(fb_model *m, int i, int *ndim, int64_t shape[2]) {
    if (!m || i < 0 || i >= m->n_tensors) return NULL;
    if (ndim) *ndim = m->tensors[i].ndim;
    if (shape) { shape[0] = m->tensors[i].shape[0]; shape[1] = m->tensors[i].shape[1]; }
    if (m->tensors[i].q8 >= 0) return NULL;   /* held as Q8_0 only */
    return m->params + m->tensors[i].offset;
}

float *fb_model_tensor_grad(fb_model *m, int i) {
    return m && m->grads && i >= 0 && i < m->n_tensors ? m->grads + m->tensors[i].offset : NULL;
}

int fb_model_find_tensor(const fb_model *m, const char *name) {
    for (int i = 0; m && name && i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* GPT-2 style: N(0, 0.02) for matrices and embeddings, residual output
 * projections scaled by 1/sqrt(2·n_layers), norm weights 1, biases 0. */
void fb_model_init_random(fb_model *m, uint64_t seed) {
    if (!m) return;
    memset(m->params, 0, m->n_floats * sizeof(float));
    const double resid_scale = 1.0 / sqrt(2.0 * m->cfg.n_layers);
    for (int i = 0; i < m->n_tensors; i++) {
        fb_model_tensor_info *t = &m->tensors[i];
        if (t->q8 >= 0) continue;   /* no fp32 storage */
        float *p = m->params + t->offset;
        uint64_t s = seed * 1000003ull + (uint64_t)i;
        if (strstr(t->name, "norm.weight")) { for (size_t k = 0; k < t->numel; k++) p[k] = 1.0f; continue; }
        if (t->ndim < 2) continue;   /* biases */
        double std = 0.02;
        if (strstr(t->name, "attn_output.weight") || strstr(t->name, "ffn_down.weight")) std *= resid_scale;
        for (size_t k = 0; k < t->numel; k += 2) {
            double u1 = ((double)(splitmix64(&s) >> 11) + 0.5) / 9007199254740992.0;
            double u2 = (double)(splitmix64(&s) >> 11) / 9007199254740992.0;
            double r = std * sqrt(-2.0 * log(u1));
            p[k] = (float)(r * cos(6.283185307179586 * u2));
            if (k + 1 < t->numel) p[k + 1] = (float)(r * sin(6.283185307179586 * u2));
        }
    }
}

void fb_model_zero_grad(fb_model *m) {
    if (m && m->grads) memset(m->grads, 0, m->n_floats * sizeof(float));
}

/* The kernel workspace of a training forward + backward at B×T: the blocks'
 * and the model's own ops (embedding, final norm, LM head + loss). */
#define PLAN(op, ...) fb_ws_plan(&need, op, &(fb_op_args){.d = {__VA_ARGS__}}, nt)
static fb_status plan_workspace(fb_model *m) {
    const fb_block_config *bc = &m->cfg.block;
    const int64_t N = (int64_t)m->B * m->T, C = bc->d_model, V = m->cfg.vocab_size;
    const int nt = fb_get_threads();
    size_t need = fb_block_workspace_bytes(bc, m->B, m->T, 1, nt);
    PLAN(FB_OP_EMBEDDING_FWD, m->B, m->T, C, V);
    PLAN(FB_OP_EMBEDDING_BWD, m->B, m->T, C, V);
    PLAN(bc->norm == FB_NORM_LAYERNORM ? FB_OP_LAYERNORM_FWD : FB_OP_RMSNORM_FWD, N, C);
    PLAN(bc->norm == FB_NORM_LAYERNORM ? FB_OP_LAYERNORM_BWD : FB_OP_RMSNORM_BWD, N, C);
    PLAN(FB_OP_CROSSENTROPY_FUSED, N, C, V, 0);
    PLAN(FB_OP_CROSSENTROPY_FUSED, N, C, V, 1);
    FB_TRY(fb_workspace_reserve(&m->ws, need));
    m->ws_threads = nt;
    return FB_OK;
}
#undef PLAN

fb_status fb_model_alloc_training(fb_model *m, int B, int T, int recompute) {
    if (!m) return fb_fail(FB_ERR_INVALID_ARG, "fb_model_alloc_training: NULL model");
    if (m->n_q8) return fb_fail(FB_ERR_UNSUPPORTED, "the model holds Q8_0 weights only (loaded for quantized inference): it cannot be trained or run by fb_model_forward");
    if (B <= 0 || T <= 0) return fb_fail(FB_ERR_SHAPE, "batch and context must be > 0 (got B=%d T=%d)", B, T);
    if (T > m->cfg.max_seq) return fb_fail(FB_ERR_SHAPE, "context %d exceeds the model's max_seq %d", T, m->cfg.max_seq);
    const fb_block_config *bc = &m->cfg.block;
    const size_t N = (size_t)B * (size_t)T, C = (size_t)bc->d_model, L = (size_t)m->cfg.n_layers;
    const size_t n_sets = recompute ? 1 : L;
    const size_t per_block = align16(fb_block_acts_floats(bc, B, T));
    const size_t total = align16((L + 1) * N * C) + n_sets * per_block + align16(N * C) + align16(2 * N) + align16(N) +
                         2 * align16(N * C) + align16(fb_block_grad_scratch_floats(bc, B, T)) + align16(N * C) +
                         2 * align16(N);
    free(m->acts);
    free(m->blk_acts);
    m->acts = NULL;
    m->blk_acts = calloc(n_sets, sizeof *m->blk_acts);
    size_t bytes;
    if (!m->blk_acts || !fb_mul_size(total, sizeof(float), &bytes) || !(m->acts = fb_aligned_alloc(bytes)))
        return fb_fail(FB_ERR_OOM, "cannot allocate %.1f MiB of activations for B=%d T=%d",
                       (double)total * 4.0 / 1048576.0, B, T);
    memset(m->acts, 0, bytes);
    float *p = m->acts;
    m->resid = p; p += align16((L + 1) * N * C);
    for (size_t s = 0; s < n_sets; s++) { fb_block_acts_carve(bc, B, T, p, &m->blk_acts[s]); p += per_block; }
    m->lnf = p; p += align16(N * C);
    m->lnf_stat[0] = p; m->lnf_stat[1] = p + N; p += align16(2 * N);
    m->losses = p; p += align16(N);
    m->dres = p; p += align16(N * C);
    m->dlnf = p; p += align16(N * C);
    fb_block_grad_scratch_carve(bc, B, T, p, &m->gscratch); p += align16(fb_block_grad_scratch_floats(bc, B, T));
    m->recompute_out = p; p += align16(N * C);
    m->ids = (int32_t *)p; p += align16(N);
    m->targets = (int32_t *)p;
    m->act_floats = total;
    m->B = B;
    m->T = T;
    m->recompute = recompute;
    return plan_workspace(m);
}

size_t fb_model_activation_bytes(const fb_model *m) { return m ? m->act_floats * sizeof(float) : 0; }

static fb_status check_batch(fb_model *m, const int32_t *ids, const int32_t *targets, int B, int T) {
    if (!m || !ids) return fb_fail(FB_ERR_INVALID_ARG, "model forward: NULL argument");
    if (m->n_q8) return fb_fail(FB_ERR_UNSUPPORTED, "model forward: the model holds Q8_0 weights only (loaded for quantized inference); use the inference engine");
    if (!m->acts) return fb_fail(FB_ERR_INVALID_ARG, "model forward: call fb_model_alloc_training first");
    if (B <= 0 || T <= 0 || B > m->B || T > m->T)
        return fb_fail(FB_ERR_SHAPE, "model forward: B=%d T=%d exceeds the allocated B=%d T=%d", B, T, m->B, m->T);
    const int V = m->cfg.vocab_size;
    for (size_t i = 0; i < (size_t)B * (size_t)T; i++) {
        if (ids[i] < 0 || ids[i] >= V) return fb_fail(FB_ERR_INVALID_ARG, "token id %d at %zu is outside the vocabulary [0, %d)", ids[i], i, V);
        if (targets && targets[i] >= V) return fb_fail(FB_ERR_INVALID_ARG, "target id %d at %zu is outside the vocabulary [0, %d)", targets[i], i, V);
    }
    return FB_OK;
}

static float *block_params(fb_model *m, int l) { return m->params + m->off_blocks + (size_t)l * m->blk.total; }
static float *block_grads(fb_model *m, int l) { return m->grads + m->off_blocks + (size_t)l * m->blk.total; }

/* Embedding → blocks → final norm; the LM head is left to the caller. */
static fb_status forward_trunk(fb_model *m, int B, int T) {
    const fb_block_config *bc = &m->cfg.block;
    const size_t N = (size_t)B * (size_t)T, C = (size_t)bc->d_model;
    const int learned = bc->positions == FB_POS_LEARNED;
    const fb_workspace *ws = &m->ws;
    FB_TRY(fb_embedding_forward(ws, m->resid, m->ids, m->params + m->off_wte, learned ? m->params + m->off_wpe : NULL,
                                B, T, (int64_t)C, m->cfg.vocab_size));
    for (int l = 0; l < m->cfg.n_layers; l++) {
        fb_block_acts *a = &m->blk_acts[m->recompute ? 0 : l];
        FB_TRY(fb_block_forward_with(bc, block_params(m, l), &m->blk, a, ws, m->resid + (size_t)(l + 1) * N * C,
                                     m->resid + (size_t)l * N * C, B, T, 0));
    }
    const float *xf = m->resid + (size_t)m->cfg.n_layers * N * C;
    const float *nw = m->params + m->off_normf_w, *nb = m->off_normf_b ? m->params + m->off_normf_b : NULL;
    if (bc->norm == FB_NORM_LAYERNORM)
        return fb_layernorm_forward(ws, m->lnf, m->lnf_stat[0], m->lnf_stat[1], xf, nw, nb, (int64_t)N, (int64_t)C,
                                    bc->norm_eps);
    return fb_rmsnorm_forward(ws, m->lnf, m->lnf_stat[1], xf, nw, (int64_t)N, (int64_t)C, bc->norm_eps);
}

static fb_status run(fb_model *m, const int32_t *ids, const int32_t *targets, int B, int T, int backward,
                     float grad_scale, float *loss) {
    FB_TRY(check_batch(m, ids, targets, B, T));
    if (!targets) return fb_fail(FB_ERR_INVALID_ARG, "model forward: targets are required for the loss");
    if (!isfinite(grad_scale)) return fb_fail(FB_ERR_INVALID_ARG, "model backward: grad_scale is not finite");
    const fb_block_config *bc = &m->cfg.block;
    const size_t N = (size_t)B * (size_t)T, C = (size_t)bc->d_model;
    memcpy(m->ids, ids, N * sizeof(int32_t));
    memcpy(m->targets, targets, N * sizeof(int32_t));
    size_t count = 0;
    for (size_t i = 0; i < N; i++) count += targets[i] >= 0;
    if (count == 0) return fb_fail(FB_ERR_INVALID_ARG, "model forward: no target to predict");

    if (m->ws_threads != fb_get_threads()) FB_TRY(plan_workspace(m));   /* fb_set_threads since the plan */
    FB_TRY(forward_trunk(m, B, T));
    if (backward) memset(m->dlnf, 0, N * C * sizeof(float));
    FB_TRY(fb_crossentropy_fused(&m->ws, m->losses, backward ? m->dlnf : NULL,
                                 backward ? m->grads + m->off_lm : NULL,   /* eval: no gradients */
                                 m->lnf, m->params + m->off_lm, m->targets, (int64_t)N, (int64_t)C, m->cfg.vocab_size,
                                 backward ? 0 : 1, grad_scale / (float)count));
    double sum = 0;
    for (size_t i = 0; i < N; i++) sum += m->losses[i];
    *loss = (float)(sum / (double)count);
    if (!isfinite(*loss)) return fb_fail(FB_ERR_NUMERIC, "loss is not finite (%g)", (double)*loss);
    if (!backward) return FB_OK;

    /* final norm backward into the residual-stream gradient */
    memset(m->dres, 0, N * C * sizeof(float));
    const float *xf = m->resid + (size_t)m->cfg.n_layers * N * C;
    const fb_workspace *ws = &m->ws;
    if (bc->norm == FB_NORM_LAYERNORM)
        FB_TRY(fb_layernorm_backward(ws, m->dres, m->grads + m->off_normf_w,
                                     m->off_normf_b ? m->grads + m->off_normf_b : NULL, m->dlnf, xf,
                                     m->params + m->off_normf_w, m->lnf_stat[0], m->lnf_stat[1], (int64_t)N,
                                     (int64_t)C));
    else
        FB_TRY(fb_rmsnorm_backward(ws, m->dres, m->grads + m->off_normf_w, m->dlnf, xf, m->params + m->off_normf_w,
                                   m->lnf_stat[1], (int64_t)N, (int64_t)C));
    for (int l = m->cfg.n_layers - 1; l >= 0; l--) {
        fb_block_acts *a = &m->blk_acts[m->recompute ? 0 : l];
        const float *x = m->resid + (size_t)l * N * C;
        if (m->recompute)   /* activation checkpointing: rebuild this block's activations */
            FB_TRY(fb_block_forward_with(bc, block_params(m, l), &m->blk, a, ws, m->recompute_out, x, B, T, 0));
        FB_TRY(fb_block_backward_with(bc, block_params(m, l), block_grads(m, l), &m->blk, a, &m->gscratch, ws, x,
                                      m->dres, B, T, 0));
        if (m->grad_ready) m->grad_ready(m->grad_ready_user, m->off_blocks + (size_t)l * m->blk.total, m->blk.total);
    }
    const int learned = bc->positions == FB_POS_LEARNED;
    FB_TRY(fb_embedding_backward(ws, m->grads + m->off_wte, learned ? m->grads + m->off_wpe : NULL, m->dres, m->ids, B,
                                 T, (int64_t)C, m->cfg.vocab_size));
    if (m->grad_ready) {   /* embeddings before the blocks, final norm and head after them */
        const size_t end = m->off_blocks + (size_t)m->cfg.n_layers * m->blk.total;
        m->grad_ready(m->grad_ready_user, 0, m->off_blocks);
        m->grad_ready(m->grad_ready_user, end, m->n_floats - end);
    }
    return FB_OK;
}

void fb_model_set_grad_ready(fb_model *m, void (*fn)(void *user, size_t offset, size_t count), void *user) {
    if (!m) return;
    m->grad_ready = fn;
    m->grad_ready_user = user;
}

fb_status fb_model_forward(fb_model *m, const int32_t *ids, const int32_t *targets, int B, int T, float *loss) {
    if (!loss) return fb_fail(FB_ERR_INVALID_ARG, "model forward: NULL loss pointer");
    return run(m, ids, targets, B, T, 0, 1.0f, loss);
}

fb_status fb_model_forward_backward(fb_model *m, const int32_t *ids, const int32_t *targets, int B, int T,
                                    float grad_scale, float *loss) {
    if (!loss) return fb_fail(FB_ERR_INVALID_ARG, "model forward: NULL loss pointer");
    if (!m || !m->grads) return fb_fail(FB_ERR_INVALID_ARG, "model backward: the model was loaded for inference (no gradients)");
    return run(m, ids, targets, B, T, 1, grad_scale, loss);
}
