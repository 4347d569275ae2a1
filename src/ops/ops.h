/*
 * The op table: every kernel of the engine behind one contract.
 *
 * Each op has a plain reference implementation (obvious loops, double
 * accumulators, one thread) and zero or more fast variants. All take the same
 * argument block, fb_op_args, whose slots each op documents below:
 *   in[]  inputs (read only)          out[] outputs
 *   d[]   integer dimensions/flags    f[]   float parameters
 * Outputs are OVERWRITTEN unless the op says ACCUMULATE (backward ops add
 * into gradient buffers, as in llm.c).
 *
 * The engine calls fb_op_run(op, &args), which runs the variant chosen for
 * this CPU (fb_ops_select). tests/test_ops.c runs every variant of every op
 * against its reference on the shapes listed there, with garbage-filled
 * outputs and guard words behind every buffer. Adding an op = one entry in
 * the table (src/ops/op_table.c) plus its shapes in that list.
 */
#ifndef FB_OPS_H
#define FB_OPS_H
#include "flashblock.h"
#include <stddef.h>
#include <stdint.h>

#define FB_OP_MAX_IN 8
#define FB_OP_MAX_OUT 4
#define FB_OP_MAX_D 16

typedef struct fb_op_args {
    const float *in[FB_OP_MAX_IN];
    float *out[FB_OP_MAX_OUT];
    int64_t d[FB_OP_MAX_D];
    float f[4];
} fb_op_args;

typedef void (*fb_kernel_fn)(const fb_op_args *a);

typedef enum fb_op_id {
    /* y[N,C] = (x - mean) * rstd * w + b;  in: x[N,C], w[C], b[C] (NULL: none)
     * out: y[N,C], mean[N], rstd[N] (saved for backward); d: N, C; f: eps */
    FB_OP_LAYERNORM_FWD,
    /* y[N,C] = x * rstd * w;  in: x, w; out: y[N,C], rstd[N]; d: N, C; f: eps */
    FB_OP_RMSNORM_FWD,
    /* y[N,OC] = x[N,C] · W[OC,C]ᵀ + b[OC];  in: x, W, b (NULL: none); out: y
     * d: N, C, OC. The fused QKV projection is this op on W = [Wq; Wk; Wv]. */
    FB_OP_MATMUL_FWD,
    /* Rotary embedding on interleaved pairs (x[2i], x[2i+1]), in place allowed.
     * in: x; out: y; d: B, T, n_heads, head_dim, row_stride (floats between
     * tokens, for x and y), pos0; f: theta. Angle = (pos0+t)·theta^(-2i/D). */
    FB_OP_ROPE_FWD,
    /* y = 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)));  in: x[N]; out: y[N]; d: N */
    FB_OP_GELU_TANH_FWD,
    /* y = 0.5·x·(1 + erf(x/√2));  in: x[N]; out: y[N]; d: N */
    FB_OP_GELU_FWD,
    /* y[N,F] = silu(h[:, :F]) * h[:, F:];  in: h[N,2F] (gate | up); out: y; d: N, F */
    FB_OP_SWIGLU_FWD,
    /* y = a + b;  in: a[N], b[N]; out: y[N]; d: N */
    FB_OP_RESIDUAL_FWD,
    /* Scaled dot-product attention, layout [B, T, H, D] with token strides.
     * in: q, k, v; out: o, lse[B,H,Tq] (natural-log logsumexp of each row of
     * scaled scores, saved for backward).
     * d: B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride, o_stride
     *   (strides = floats between consecutive tokens; head h of a token at
     *   h·D; batch stride = T·stride). Query i sits at position i + Tk - Tq
     *   (a chunk after a KV cache) and, when causal, sees keys j <= that.
     *   GQA: query head h reads KV head h / (H / Hkv).
     * Paged K/V (the KV cache): in[3] = block table (int32, B rows of
     *   d[11] entries), d[10] = block size bs (0: no table, contiguous as
     *   above), d[12] = blocks in the pool k/v point to; token j of batch b
     *   is then at k + (table[b·d[11] + j/bs]·bs + j%bs)·kv_stride (see
     *   attention/kv_rows.h). Results are bitwise those of the contiguous layout.
     * f: scale (0 means 1/sqrt(D)). */
    FB_OP_ATTENTION_FWD,

    /* ---- backward ops (issue: training) ----
     * Convention: parameter gradients and the gradient flowing back into the
     * residual stream ACCUMULATE (+=, as in llm.c); other activation
     * gradients OVERWRITE (fresh buffers). Each op states it. */
    /* in: dy[N,C], x[N,C], w[C], mean[N], rstd[N]; out: dx[N,C] ACC, dw[C] ACC, db[C] ACC (NULL: none); d: N, C */
    FB_OP_LAYERNORM_BWD,
    /* in: dy[N,C], x[N,C], w[C], rstd[N]; out: dx ACC, dw ACC; d: N, C */
    FB_OP_RMSNORM_BWD,
    /* in: dy[N,OC], x[N,C], W[OC,C]; out: dx[N,C] ACC, dW[OC,C] ACC, db[OC] ACC (NULL: none); d: N, C, OC */
    FB_OP_MATMUL_BWD,
    /* inverse rotation, same slots as FB_OP_ROPE_FWD (in: dy, out: dx OVERWRITE, in place allowed) */
    FB_OP_ROPE_BWD,
    /* in: dy[N], x[N]; out: dx[N] OVERWRITE; d: N */
    FB_OP_GELU_TANH_BWD,
    FB_OP_GELU_BWD,
    /* in: dy[N,F], h[N,2F] (gate | up); out: dh[N,2F] OVERWRITE; d: N, F */
    FB_OP_SWIGLU_BWD,
    /* in: dy[N]; out: da[N] ACC, db[N] ACC; d: N */
    FB_OP_RESIDUAL_BWD,
    /* in: ids[B·T] (int32 stored in the float slot), wte[V,C], wpe[T,C] (NULL: no learned positions);
     * out: y[B,T,C] OVERWRITE; d: B, T, C, V */
    FB_OP_EMBEDDING_FWD,
    /* in: dy[B,T,C], ids; out: dwte[V,C] ACC, dwpe[T,C] ACC (NULL: none); d: B, T, C, V.
     * Deterministic (no order-dependent races). */
    FB_OP_EMBEDDING_BWD,
    /* LM head + softmax + cross-entropy fused, in chunks of rows so the full
     * [N, V] logits never exist: in: h[N,C], W[V,C], targets[N] (int32; < 0 = ignored);
     * out: loss[N] OVERWRITE (0 for ignored rows), dh[N,C] ACC, dW[V,C] ACC;
     * d: N, C, V, forward_only (1: losses only, dh/dW untouched);
     * f: grad_scale (dlogits = (softmax - onehot)·grad_scale, e.g. 1/(number of targets)) */
    FB_OP_CROSSENTROPY_FUSED,
    /* FlashAttention-2 backward. in: q, k, v, o, lse, do (layouts/strides as in
     * FB_OP_ATTENTION_FWD; do has o's stride); out: dq (q's stride), dk, dv
     * (kv stride) OVERWRITE; d: same slots as FB_OP_ATTENTION_FWD; f: scale.
     * Deterministic for any thread count. */
    FB_OP_ATTENTION_BWD,

    /* ---- inference ops ---- */
    /* Decode attention (FlashDecoding split-K): same slots as FB_OP_ATTENTION_FWD
     * but Tq is small (1 for decode); the cached length is split across threads
     * and partial outputs are merged by their logsumexp. */
    FB_OP_ATTENTION_DECODE,
    /* y[N,OC] = x[N,C] · dequant(Wq)ᵀ with Wq in Q8_0 (per row: C/32 blocks of
     * {fp16 scale, 32 × int8}, 34 bytes each; C % 32 == 0), stored in the float slot;
     * in: x, Wq, b (NULL: none); out: y OVERWRITE; d: N, C, OC */
    FB_OP_MATMUL_Q8_0,
    FB_OP_COUNT
} fb_op_id;

typedef struct fb_kernel {
    const char *variant;    /* "avx512", "blas", "flash_avx2", ... */
    fb_isa isa;             /* lowest ISA it needs */
    fb_kernel_fn fn;
} fb_kernel;

#define FB_OP_MAX_VARIANTS 6

typedef struct fb_op_def {
    const char *name;
    fb_kernel_fn reference;
    fb_kernel fast[FB_OP_MAX_VARIANTS];
    int n_in, n_out;
    /* Element counts of each input/output for the dims in d (tests). */
    void (*sizes)(const int64_t *d, size_t *in_n, size_t *out_n);
    unsigned accumulate_mask;   /* bit k: out[k] is accumulated into */
    double tolerance;           /* max error relative to the output's scale */
    /* Optional: overwrite the random test inputs with valid values for this
     * op (token ids, quantized blocks, positive statistics). */
    void (*prepare_inputs)(const int64_t *d, float **in, uint64_t seed);
} fb_op_def;

const fb_op_def *fb_op_get(fb_op_id op);
/* Choose, for each op, the best variant this CPU runs (or the variant named
 * by FLASHBLOCK_KERNEL_<OP>=variant). Called implicitly by fb_op_run. */
void fb_ops_select(void);
const char *fb_op_selected_variant(fb_op_id op);
/* Force a variant by name for one op ("reference" allowed); for benchmarks. */
fb_status fb_op_force_variant(fb_op_id op, const char *variant);
void fb_op_run(fb_op_id op, const fb_op_args *a);

/* ---- kernels (defined in the op files, listed here for the table) ---- */
#define FB_DECLARE_SIMD(name) \
    void name##_generic(const fb_op_args *a); \
    void name##_avx2(const fb_op_args *a);    \
    void name##_avx512(const fb_op_args *a)

void layernorm_forward_ref(const fb_op_args *a);
void rmsnorm_forward_ref(const fb_op_args *a);
void matmul_forward_ref(const fb_op_args *a);
void matmul_forward_blas(const fb_op_args *a);
void rope_forward_ref(const fb_op_args *a);
void gelu_tanh_forward_ref(const fb_op_args *a);
void gelu_forward_ref(const fb_op_args *a);
void swiglu_forward_ref(const fb_op_args *a);
void residual_forward_ref(const fb_op_args *a);
void attention_forward_naive(const fb_op_args *a);
void attention_forward_standard(const fb_op_args *a);
FB_DECLARE_SIMD(layernorm_forward);
FB_DECLARE_SIMD(rmsnorm_forward);
FB_DECLARE_SIMD(rope_forward);
FB_DECLARE_SIMD(gelu_tanh_forward);
FB_DECLARE_SIMD(gelu_forward);
FB_DECLARE_SIMD(swiglu_forward);
FB_DECLARE_SIMD(residual_forward);
FB_DECLARE_SIMD(flash_attention_forward);

#endif
