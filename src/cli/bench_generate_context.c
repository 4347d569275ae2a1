/*
 * flashblock bench generate --contexts 4096,32768: decode speed after C
 * tokens of context, three ways, on a random-weight RoPE model of a
 * TinyStories shape (default 15M):
 *   naive     no KV cache: every new token re-runs the forward over the
 *             whole prefix (C + i tokens, in 256-row chunks, so only the
 *             chunk's rows are live), standard attention (materialised
 *             scores); --naive-tokens K tokens are timed;
 *   kv        a KV cache (contiguous, per layer), standard attention over it
 *             for each decoded token;
 *   flash     the inference engine: paged KV cache, FlashAttention prefill,
 *             split-K FlashDecoding for each decoded token.
 * All three run the block's one step sequence (fb_block_forward_rows; naive
 * and kv with their own attention source) on the same token stream; the
 * prompt is prefilled with FlashAttention and not timed (kv, flash). Each
 * (context, mode) point runs in its own process: its peak RSS is its own.
 * kv and flash decode one untimed warm-up token, then time --tokens more;
 * every decoded token computes its logits (the LM head included).
 * The first decoded token's logits of naive and kv are compared with
 * flash's (max |diff| / max |logit| over the first 64 entries); --modes
 * picks naive and/or kv (flash always runs, as that reference).
 */
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/error.h"
#include "core/runtime.h"
#include "infer/engine.h"
#include "model/model.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MODE_NAIVE, MODE_KV, MODE_FLASH, N_MODES };
static const char *const MODE_NAMES[N_MODES] = {"naive", "kv", "flash"};
#define CHUNK 256
#define N_CHECK 64

typedef struct {
    int dim, layers, heads, hidden;
    int context, tokens, mode, threads;
} ctx_point;

/* A contiguous KV cache of one sequence as the block's attention source. */
typedef struct {
    float *k, *v;        /* [L][max_T][Hkv·D] */
    int64_t max_T, kvd;
} plain_kv;

static fb_status plain_attend(void *ctx, const fb_block_config *c, const fb_workspace *ws, int layer, float *qkv,
                              float *att, float *lse, const fb_row_span *sp, int n_spans) {
    plain_kv *kv = ctx;
    const int64_t C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = C / H, QKV = (H + 2 * Hkv) * D;
    (void)n_spans;   /* one sequence */
    const int64_t T = sp[0].n, p0 = sp[0].pos0;
    float *K = kv->k + (int64_t)layer * kv->max_T * kv->kvd, *V = kv->v + (int64_t)layer * kv->max_T * kv->kvd;
    for (int64_t t = 0; t < T; t++) {
        memcpy(K + (p0 + t) * kv->kvd, qkv + t * QKV + H * D, sizeof(float) * (size_t)kv->kvd);
        memcpy(V + (p0 + t) * kv->kvd, qkv + t * QKV + (H + Hkv) * D, sizeof(float) * (size_t)kv->kvd);
    }
    return fb_attention_forward(ws, att, lse, qkv, K, V, 1, T, p0 + T, H, Hkv, D, 1, QKV, kv->kvd, C);
}

/* n rows of one sequence at positions pos0.. through every block; the
 * logits of the last row into logits when given. */
static fb_status plain_step(fb_model *m, plain_kv *kv, fb_block_acts *acts, const fb_workspace *ws, float *x,
                            const int32_t *ids, int n, int pos0, float *logits) {
    const fb_block_config *c = &m->cfg.block;
    const int64_t C = c->d_model;
    for (int r = 0; r < n; r++) memcpy(x + (size_t)r * C, m->params + m->off_wte + (size_t)ids[r] * C, sizeof(float) * (size_t)C);
    const fb_row_span span = {0, n, 0, pos0};
    const fb_attention_source src = {plain_attend, kv};
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const fb_block_weights w = {.params = fb_model_block_params(m, l), .layout = &m->blk};
        FB_TRY(fb_block_forward_rows(c, &w, acts, ws, x, x, n, &span, 1, l, &src));
    }
    if (logits) {
        const float *last = x + (size_t)(n - 1) * C;
        FB_TRY(fb_rmsnorm_forward(ws, acts->ln1, acts->ln1_stat[1], last, m->params + m->off_normf_w, 1, C, c->norm_eps));
        FB_TRY(fb_matmul_forward(ws, logits, acts->ln1, m->params + m->off_lm, NULL, 1, C, m->cfg.vocab_size));
    }
    return FB_OK;
}

static void set_attention(const char *kind) {
    char v[64];
    snprintf(v, sizeof v, "%s_%s", kind, fb_isa_name(fb_cpu_best_isa()));
    fb_op_force_variant(FB_OP_ATTENTION_FWD, v);
}

/* res: [0] tokens/s, [1] peak RSS, [2] 1 = ok, [3] prefill s, [4..4+N_CHECK) first decoded token's logits */
static void run_point(void *vctx, double *res, int n_res) {
    (void)n_res;
    const ctx_point *p = vctx;
    fb_set_threads(p->threads);
    fb_model_config mc = {0};
    mc.block = fb_block_config_llama(p->dim, p->heads, p->heads, p->hidden);
    mc.n_layers = p->layers;
    mc.vocab_size = 32000;
    mc.max_seq = p->context + p->tokens + 2;   /* >= total */
    mc.tied = 1;
    fb_model *m;
    if (fb_model_plan(&m, &mc) != FB_OK || fb_model_alloc(m, 0) != FB_OK) return;
    fb_model_init_random(m, 1);
    const int V = mc.vocab_size, total = p->context + p->tokens + 1;   /* kv, flash: one untimed warm-up token first */
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)total);
    float *logits = malloc(sizeof(float) * (size_t)V), *spare = malloc(sizeof(float) * (size_t)V);
    if (!ids || !logits || !spare) return;
    for (int i = 0; i < total; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    double t_prefill = 0, t_decode = 0;
    int ok = 1;
    if (p->mode == MODE_FLASH) {
        fb_engine e;
        if (fb_engine_init(&e, m, &(fb_engine_options){.n_seqs = 1, .max_T = total, .max_rows = CHUNK}) != FB_OK) return;
        double t0 = fb_now_sec();
        ok = fb_engine_prefill(&e, 0, ids, p->context, CHUNK) == FB_OK;
        t_prefill = fb_now_sec() - t0;
        for (int i = 0; ok && i <= p->tokens; i++) {
            int seq = 0;
            if (i == 1) t0 = fb_now_sec();
            ok = fb_engine_step(&e, 1, &seq, ids + p->context + i, NULL) == FB_OK;
            if (i == 0) memcpy(logits, e.logits, sizeof(float) * (size_t)V);
        }
        t_decode = fb_now_sec() - t0;
        fb_engine_free(&e);
        (void)spare;
    } else {
        const fb_block_config *c = &m->cfg.block;
        plain_kv kv = {.max_T = total, .kvd = (int64_t)c->n_kv_heads * (c->d_model / c->n_heads)};
        const size_t kv_floats = (size_t)mc.n_layers * (size_t)total * (size_t)kv.kvd;
        const size_t act = fb_block_acts_floats(c, 1, CHUNK);
        kv.k = fb_aligned_alloc(sizeof(float) * kv_floats);
        kv.v = fb_aligned_alloc(sizeof(float) * kv_floats);
        float *ws = fb_aligned_alloc(sizeof(float) * (act + (size_t)CHUNK * (size_t)c->d_model));
        if (!kv.k || !kv.v || !ws) return;
        fb_block_acts acts;
        fb_block_acts_carve(c, 1, CHUNK, ws, &acts);
        float *x = ws + act;
        /* the kernels' workspace: the block's calls, plus attention of CHUNK
         * rows over the whole cache with either attention kernel */
        const int64_t H = c->n_heads, Hkv = c->n_kv_heads, D = c->d_model / H, QKV = (H + 2 * Hkv) * D;
        size_t need = fb_block_workspace_bytes(c, 1, CHUNK, 0, p->threads);
        fb_ws_plan(&need, FB_OP_MATMUL_FWD, &(fb_op_args){.d = {1, c->d_model, V}}, p->threads);
        const char *kinds[2] = {"flash", "standard"};
        for (int k = 0; k < 2; k++) {
            set_attention(kinds[k]);
            fb_ws_plan(&need, FB_OP_ATTENTION_FWD, &(fb_op_args){.d = {1, CHUNK, total, H, Hkv, D, 1, QKV, kv.kvd, c->d_model}},
                       p->threads);
        }
        fb_workspace ows = {0};
        if (fb_workspace_reserve(&ows, need) != FB_OK) return;
        if (p->mode == MODE_KV) {
            set_attention("flash");   /* prefill: not timed */
            double t0 = fb_now_sec();
            for (int i0 = 0; ok && i0 < p->context; i0 += CHUNK) {
                const int n = p->context - i0 < CHUNK ? p->context - i0 : CHUNK;
                ok = plain_step(m, &kv, &acts, &ows, x, ids + i0, n, i0, NULL) == FB_OK;
            }
            t_prefill = fb_now_sec() - t0;
            set_attention("standard");
            for (int i = 0; ok && i <= p->tokens; i++) {
                if (i == 1) t0 = fb_now_sec();
                ok = plain_step(m, &kv, &acts, &ows, x, ids + p->context + i, 1, p->context + i, i == 0 ? logits : spare) == FB_OK;
            }
            t_decode = fb_now_sec() - t0;
        } else {   /* naive: the whole prefix again for every token */
            set_attention("standard");
            double t0 = fb_now_sec();
            for (int i = 0; ok && i < p->tokens; i++) {
                const int len = p->context + i + 1;
                for (int i0 = 0; ok && i0 < len; i0 += CHUNK) {
                    const int n = len - i0 < CHUNK ? len - i0 : CHUNK;
                    ok = plain_step(m, &kv, &acts, &ows, x, ids + i0, n, i0, i0 + n == len ? (i == 0 ? logits : spare) : NULL) == FB_OK;
                }
            }
            t_decode = fb_now_sec() - t0;
        }
        free(kv.k);
        free(kv.v);
        free(ws);
        fb_workspace_free(&ows);
    }
    res[0] = p->tokens / t_decode;
    res[1] = (double)fb_vm_hwm_bytes();
    res[2] = ok ? 1.0 : 0.0;
    res[3] = t_prefill;
    for (int i = 0; i < N_CHECK; i++) res[4 + i] = logits[i];
    free(ids);
    free(logits);
    free(spare);
    fb_model_free(m);
}

/* The child process of one point: `bench generate --context-point DIM LAYERS
 * HEADS HIDDEN CONTEXT TOKENS MODE THREADS` prints the 4 + N_CHECK results. */
int fb_bench_generate_context_point(int argc, char **argv) {
    if (argc != 10) return 2;
    long v[8];
    for (int i = 0; i < 8; i++) v[i] = atol(argv[2 + i]);
    const ctx_point p = {(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (int)v[5], (int)v[6], (int)v[7]};
    double res[4 + N_CHECK] = {0};
    run_point((void *)&p, res, 4 + N_CHECK);
    for (int i = 0; i < 4 + N_CHECK; i++) printf("%.17g\n", res[i]);
    return 0;
}

/* One point in a fresh process (its peak RSS and OpenMP runtime its own). */
static int run_point_isolated(const ctx_point *p, double *res) {
    char a[8][24], out[8192];
    const long vals[8] = {p->dim, p->layers, p->heads, p->hidden, p->context, p->tokens, p->mode, p->threads};
    for (int i = 0; i < 8; i++) snprintf(a[i], sizeof a[i], "%ld", vals[i]);
    char *argv[] = {"flashblock", "bench", "generate", "--context-point", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], NULL};
    if (fb_run_self(argv, NULL, NULL, out, sizeof out) != 0) return -1;
    int n = 0, off = 0, used;
    while (n < 4 + N_CHECK && sscanf(out + off, "%lf%n", &res[n], &used) == 1) { off += used; n++; }
    return n == 4 + N_CHECK ? 0 : -1;
}

int fb_bench_generate_contexts(const long *contexts, int n_ctx, const char *shapes, const char *modes, long threads, long tokens,
                               long naive_tokens, int json) {
    static const struct { const char *name; int dim, layers, heads, hidden; } SH[] = {
        {"15M", 288, 6, 6, 768}, {"42M", 512, 8, 8, 1376}, {"110M", 768, 12, 12, 2048}};
    if (!json)
        printf("%-5s %8s %-6s %7s %12s %12s %12s %16s\n", "shape", "context", "mode", "tokens", "tokens/s", "peak_MiB",
               "prefill_s", "logits_vs_flash");
    for (size_t si = 0; si < sizeof SH / sizeof SH[0]; si++) {
        if (!strstr(shapes, SH[si].name)) continue;
        for (int ci = 0; ci < n_ctx; ci++) {
            double ref[N_CHECK] = {0};
            int have_ref = 0;
            for (int mode = N_MODES - 1; mode >= 0; mode--) {   /* flash first: the reference logits */
                if (mode != MODE_FLASH && !strstr(modes, MODE_NAMES[mode])) continue;   /* flash always runs: the reference */
                ctx_point p = {SH[si].dim, SH[si].layers, SH[si].heads, SH[si].hidden, (int)contexts[ci],
                               (int)(mode == MODE_NAIVE ? naive_tokens : tokens), mode, (int)threads};
                double res[4 + N_CHECK] = {0};
                if (run_point_isolated(&p, res) != 0 || res[2] != 1.0) {
                    fprintf(stderr, "%s: context %ld, %s: failed to run (out of memory?)\n", SH[si].name, contexts[ci], MODE_NAMES[mode]);
                    continue;
                }
                double diff = 0, scale = 0;
                if (mode == MODE_FLASH) { memcpy(ref, res + 4, sizeof ref); have_ref = 1; }
                for (int i = 0; i < N_CHECK; i++) {
                    const double d = res[4 + i] - ref[i];
                    diff = (d < 0 ? -d : d) > diff ? (d < 0 ? -d : d) : diff;
                    scale = (ref[i] < 0 ? -ref[i] : ref[i]) > scale ? (ref[i] < 0 ? -ref[i] : ref[i]) : scale;
                }
                const double rel = have_ref && scale > 0 ? diff / scale : -1;
                if (json)
                    printf("{\"bench\":\"generate_context\",\"shape\":\"%s\",\"context\":%ld,\"mode\":\"%s\",\"threads\":%ld,"
                           "\"tokens\":%d,\"tokens_per_s\":%.4f,\"s_per_token\":%.6f,\"peak_rss\":%.0f,\"prefill_s\":%.3f,"
                           "\"logits_rel_diff_vs_flash\":%.3g}\n",
                           SH[si].name, contexts[ci], MODE_NAMES[mode], threads, p.tokens, res[0], 1.0 / res[0], res[1], res[3], rel);
                else
                    printf("%-5s %8ld %-6s %7d %12.2f %12.1f %12.2f %16.2g\n", SH[si].name, contexts[ci], MODE_NAMES[mode], p.tokens,
                           res[0], res[1] / 1048576.0, res[3], rel);
                fflush(stdout);
            }
        }
    }
    return 0;
}
