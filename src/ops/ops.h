/*
 * The op table: every kernel of the engine behind one contract.
 *
 * Each op has a plain reference implementation (obvious loops, double
 * accumulators, one thread) and any number of fast variants. All take the
 * same argument block, fb_op_args:
 *   in[]  typed input slots (read only)     out[] typed output slots
 *   d[]   integer dimensions/flags          f[]   float parameters
 *   ws    the caller's scratch memory (ops/workspace.h)
 * and return fb_status. Every slot carries its dtype (f32, f16, bf16, q8_0,
 * i32) and its shape and stride: a [rows, cols] matrix whose rows start
 * `stride` elements apart. Each op documents its slots below (dtype f32
 * unless stated, shapes in terms of d[]) and declares them in its table
 * entry (src/ops/op_table.c), so fb_op_run can check the dtypes and the
 * tests allocate and fill every slot by type. Outputs are OVERWRITTEN
 * unless the op says ACCUMULATE (backward ops add into gradient buffers,
 * as in llm.c).
 *
 * The engine calls fb_op_run(op, &args) through the typed wrappers of
 * ops/kernels.h; fb_op_run runs the variant chosen for this machine: the
 * first one, best first, whose backend is the CPU and whose CPU feature
 * needs (core/cpu.h) are all usable. tests/core/test_ops.c runs every
 * variant of every op against its reference on the shapes listed there, with
 * garbage-filled outputs and guard words behind every buffer and workspace.
 * Adding an op, a variant or a backend: docs/ARCHITECTURE.md, "Ops".
 */
#ifndef FB_OPS_H
#define FB_OPS_H
#include "flashblock.h"
#include "core/error.h"
#include "ops/workspace.h"
#include <stddef.h>
#include <stdint.h>

#define FB_OP_MAX_IN 8
#define FB_OP_MAX_OUT 4
#define FB_OP_MAX_D 16
#define FB_OP_MAX_F 8

/* ---- typed argument slots ------------------------------------------------ */

typedef enum fb_dtype {
    FB_DT_NONE = 0,
    FB_DT_F32,
    FB_DT_F16,      /* IEEE binary16 (core/half.h) */
    FB_DT_BF16,
    FB_DT_Q8_0,     /* blocks of 32 values: {fp16 scale, 32 × int8}, 34 bytes (core/q8_0.h) */
    FB_DT_I32,
    FB_DT_COUNT
} fb_dtype;

const char *fb_dtype_name(fb_dtype t);
/* Bytes of n consecutive elements (Q8_0: n % 32 == 0). */
size_t fb_dtype_bytes(fb_dtype t, int64_t n);

/* A slot: rows × cols elements, rows `stride` elements apart (Q8_0 counts
 * values: cols and stride are multiples of 32). data NULL: an absent
 * optional slot. */
typedef struct fb_src {
    const void *data;
    fb_dtype type;
    int64_t rows, cols, stride;
} fb_src;
typedef struct fb_dst {
    void *data;
    fb_dtype type;
    int64_t rows, cols, stride;
} fb_dst;

static inline fb_src fb_src_f32(const float *p, int64_t rows, int64_t cols, int64_t stride) {
    fb_src s = {p, FB_DT_F32, rows, cols, stride};
    return s;
}
static inline fb_src fb_src_i32(const int32_t *p, int64_t rows, int64_t cols, int64_t stride) {
    fb_src s = {p, FB_DT_I32, rows, cols, stride};
    return s;
}
static inline fb_src fb_src_q8_0(const void *blocks, int64_t rows, int64_t cols, int64_t stride) {
    fb_src s = {blocks, FB_DT_Q8_0, rows, cols, stride};
    return s;
}
static inline fb_src fb_src_f16(const uint16_t *p, int64_t rows, int64_t cols, int64_t stride) {
    fb_src s = {p, FB_DT_F16, rows, cols, stride};
    return s;
}
static inline fb_src fb_src_bf16(const uint16_t *p, int64_t rows, int64_t cols, int64_t stride) {
    fb_src s = {p, FB_DT_BF16, rows, cols, stride};
    return s;
}
static inline fb_dst fb_dst_f32(float *p, int64_t rows, int64_t cols, int64_t stride) {
    fb_dst s = {p, FB_DT_F32, rows, cols, stride};
    return s;
}

typedef struct fb_op_args {
    fb_src in[FB_OP_MAX_IN];
    fb_dst out[FB_OP_MAX_OUT];
    int64_t d[FB_OP_MAX_D];
    float f[FB_OP_MAX_F];
    fb_workspace ws;
} fb_op_args;

/* Kernels read their slots through these (fb_op_run checked the dtypes). */
static inline const float *fb_in_f32(const fb_op_args *a, int i) { return (const float *)a->in[i].data; }
static inline const int32_t *fb_in_i32(const fb_op_args *a, int i) { return (const int32_t *)a->in[i].data; }
static inline const uint8_t *fb_in_q8_0(const fb_op_args *a, int i) { return (const uint8_t *)a->in[i].data; }
static inline const uint16_t *fb_in_f16(const fb_op_args *a, int i) { return (const uint16_t *)a->in[i].data; }
static inline const uint16_t *fb_in_bf16(const fb_op_args *a, int i) { return (const uint16_t *)a->in[i].data; }
static inline float *fb_out_f32(const fb_op_args *a, int i) { return (float *)a->out[i].data; }

/* ---- kernels, variants, backends ----------------------------------------- */

typedef fb_status (*fb_kernel_fn)(const fb_op_args *a);
/* Scratch bytes a kernel needs for these dims (d[], f[]; never the data) and
 * at most n_threads OpenMP threads. It must not decrease when a dimension
 * grows, so a plan for the largest shapes covers every smaller call. */
typedef size_t (*fb_workspace_fn)(const fb_op_args *a, int n_threads);

/* Where a kernel runs and its pointers live. A GPU backend is one more
 * value here plus its variants (docs/ARCHITECTURE.md, "Ops"). */
typedef enum fb_backend { FB_BACKEND_CPU = 0, FB_BACKEND_COUNT } fb_backend;
const char *fb_backend_name(fb_backend b);

typedef struct fb_kernel {
    const char *name;            /* "avx512", "flash_avx2", "avx512_vnni", ... */
    fb_backend backend;
    uint64_t needs;              /* CPU feature bits it executes (core/cpu.h) */
    fb_kernel_fn fn;
    fb_workspace_fn workspace;   /* NULL: needs none */
} fb_kernel;

/* A declared slot. OPTIONAL: may be NULL. ACC: an output the op reads and
 * updates (accumulates into); the others it only writes. */
enum { FB_SLOT_OPTIONAL = 1u, FB_SLOT_ACC = 2u };
typedef struct fb_slot_decl {
    const char *name;
    fb_dtype type;               /* FB_DT_NONE ends the list */
    unsigned flags;
} fb_slot_decl;
/* A slot's shape for given dims; bound: i32 values lie in [0, bound). */
typedef struct fb_shape {
    int64_t rows, cols, stride, bound;
} fb_shape;

typedef struct fb_op_def {
    const char *name;
    fb_slot_decl in[FB_OP_MAX_IN], out[FB_OP_MAX_OUT];
    void (*shapes)(const int64_t *d, fb_shape *in, fb_shape *out);
    fb_kernel reference;
    const fb_kernel *variants;   /* best first, ended by an entry with fn NULL */
    double tolerance;            /* max error relative to the output's scale */
    /* Optional, for tests: make the typed random inputs (and the starting
     * values of ACC outputs) valid for this op (statistics, forward outputs). */
    void (*prepare)(const int64_t *d, void *const *in, void *const *out, uint64_t seed);
} fb_op_def;

/* ---- the ops -------------------------------------------------------------- */

typedef enum fb_op_id {
    /* y[N,C] = (x - mean) * rstd * w + b;  in: x[N,C], w[C], b[C] (NULL: none)
     * out: y[N,C], mean[N], rstd[N] (saved for backward); d: N, C; f: eps */
    FB_OP_LAYERNORM_FWD,
    /* y[N,C] = x * rstd * w;  in: x, w; out: y[N,C], rstd[N]; d: N, C; f: eps */
    FB_OP_RMSNORM_FWD,
    /* y[N,OC] = x[N,C] · W[OC,C]ᵀ + b[OC];  in: x, W, b (NULL: none); out: y
     * d: N, C, OC. The fused QKV projection is this op on W = [Wq; Wk; Wv].
     * Workspace: the GEMM pack buffers of fb_sgemm, one per thread. */
    FB_OP_MATMUL_FWD,
    /* Rotary embedding on interleaved pairs (x[2i], x[2i+1]), in place allowed.
     * in: x[B·T, n_heads·head_dim] (row stride row_stride); out: y, same shape;
     * d: B, T, n_heads, head_dim, row_stride (floats between tokens, for x and
     * y), pos0; f: theta. Angle = (pos0+t)·theta^(-2i/D). Workspace: a table
     * of head_dim floats per thread. */
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
     * in: q[B·Tq, H·D], k, v[B·Tk, Hkv·D] (rows q_stride / kv_stride apart);
     * out: o[B·Tq, H·D] (o_stride), lse[B·H, Tq] (natural-log logsumexp of
     * each row of scaled scores, saved for backward).
     * d: B, Tq, Tk, H, Hkv, D, causal, q_stride, kv_stride, o_stride
     *   (strides = floats between consecutive tokens; head h of a token at
     *   h·D; batch stride = T·stride). Query i sits at position i + Tk - Tq
     *   (a chunk after a KV cache) and, when causal, sees keys j <= that.
     *   GQA: query head h reads KV head h / (H / Hkv).
     * Paged K/V (the KV cache): in[3] = block table (i32, optional; B rows of
     *   d[11] entries), d[10] = block size bs (0: no table, contiguous as
     *   above), d[12] = blocks in the pool k/v point to; token j of batch b
     *   is then at k + (table[b·d[11] + j/bs]·bs + j%bs)·kv_stride (see
     *   attention/kv_rows.h). Results are bitwise those of the contiguous layout.
     * f: scale (0 means 1/sqrt(D)). Workspace: a few tiles per thread
     * (flash), or a Tq×Tk score matrix per thread (standard; paged K/V also
     * a Tk×D copy of K and V per thread). */
    FB_OP_ATTENTION_FWD,

    /* ---- backward ops (issue: training) ----
     * Convention: parameter gradients and the gradient flowing back into the
     * residual stream ACCUMULATE (+=, as in llm.c); other activation
     * gradients OVERWRITE (fresh buffers). Each op states it. */
    /* in: dy[N,C], x[N,C], w[C], mean[N], rstd[N]; out: dx[N,C] ACC, dw[C] ACC, db[C] ACC (NULL: none); d: N, C */
    FB_OP_LAYERNORM_BWD,
    /* in: dy[N,C], x[N,C], w[C], rstd[N]; out: dx ACC, dw ACC; d: N, C */
    FB_OP_RMSNORM_BWD,
    /* in: dy[N,OC], x[N,C], W[OC,C]; out: dx[N,C] ACC, dW[OC,C] ACC, db[OC] ACC (NULL: none); d: N, C, OC.
     * Workspace: fb_sgemm pack buffers, one per thread. */
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
    /* in: ids[B,T] (i32, 0 <= id < V), wte[V,C], wpe[T,C] (NULL: no learned positions);
     * out: y[B·T,C] OVERWRITE; d: B, T, C, V */
    FB_OP_EMBEDDING_FWD,
    /* in: dy[B·T,C], ids[B,T] (i32); out: dwte[V,C] ACC, dwpe[T,C] ACC (NULL: none); d: B, T, C, V.
     * Deterministic (no order-dependent races). */
    FB_OP_EMBEDDING_BWD,
    /* LM head + softmax + cross-entropy fused, in chunks of rows so the full
     * [N, V] logits never exist: in: h[N,C], W[V,C], targets[N] (i32; < 0 = ignored);
     * out: loss[N] OVERWRITE (0 for ignored rows), dh[N,C] ACC, dW[V,C] ACC;
     * d: N, C, V, forward_only (1: losses only, dh/dW untouched, may be NULL);
     * f: grad_scale (dlogits = (softmax - onehot)·grad_scale, e.g. 1/(number of targets)).
     * Workspace: one chunk of logits plus fb_sgemm pack buffers per thread. */
    FB_OP_CROSSENTROPY_FUSED,
    /* FlashAttention-2 backward. in: q, k, v, o, lse, do (layouts/strides as in
     * FB_OP_ATTENTION_FWD; do has o's stride); out: dq (q's stride), dk, dv
     * (kv stride) OVERWRITE; d: same slots as FB_OP_ATTENTION_FWD; f: scale.
     * Deterministic for any thread count. Workspace: transposed copies of q
     * and do (O(B·H·Tq·D)) plus a few tiles per thread. */
    FB_OP_ATTENTION_BWD,

    /* ---- inference ops ---- */
    /* Decode attention (FlashDecoding split-K): same slots as FB_OP_ATTENTION_FWD
     * but Tq is small (1 for decode); the cached length is split across threads
     * and partial outputs are merged by their logsumexp. Workspace: the
     * partial outputs (O(threads·H·D)) plus one query group per thread. */
    FB_OP_ATTENTION_DECODE,
    /* y[N,OC] = x[N,C] · dequant(Wq)ᵀ + b;  in: x[N,C], Wq[OC,C] (q8_0: per row
     * C/32 blocks of {fp16 scale, 32 × int8}, 34 bytes each; C % 32 == 0),
     * b[OC] (NULL: none); out: y OVERWRITE; d: N, C, OC. Workspace: x
     * quantised to int8 blocks (N·C bytes + N·C/32 scales). */
    FB_OP_MATMUL_Q8_0,

    /* ---- building blocks that are ops of their own ---- */
    /* fb_sgemm (ops/gemm.h): C[M,N] = alpha·op(A)·op(B) + beta·C, row major,
     * op(X) = X or Xᵀ; single-threaded (callers tile); beta == 0 never reads C.
     * in: A[transA ? K : M, transA ? M : K] (stride lda), B[transB ? N : K,
     * transB ? K : N] (ldb); out: C[M,N] (ldc) ACC when beta != 0;
     * d: transA, transB, M, N, K, lda, ldb, ldc; f: alpha, beta.
     * Workspace: the packed kernel's A and B blocks (M >= 8 only). */
    FB_OP_SGEMM,
    /* AdamW element update (decoupled weight decay, bias correction), as
     * torch.optim.AdamW, in fixed chunks (same bits for any thread count):
     *   g' = g·grad_scale; p = p·decay; m = b1·m + (1-b1)·g'; v = b2·v + (1-b2)·g'²
     *   p -= step_size·m / (sqrt(v)·inv_sqrt_bc2 + eps)
     * in: g[n]; out: p[n], m[n], v[n] ACC (read and updated); d: n;
     * f: decay (1 - lr·wd), grad_scale, beta1, beta2, eps, inv_sqrt_bc2
     * (1/sqrt(1 - b2^t)), step_size (lr / (1 - b1^t)). */
    FB_OP_ADAMW,
    FB_OP_COUNT
} fb_op_id;

const fb_op_def *fb_op_get(fb_op_id op);
int fb_op_n_in(const fb_op_def *def);    /* declared slots */
int fb_op_n_out(const fb_op_def *def);

/* 1 when k may run here: its backend is the CPU (the one callers pass
 * pointers for) and its CPU feature needs are all usable (after
 * FLASHBLOCK_ISA / FLASHBLOCK_DISABLE). */
int fb_kernel_runnable(const fb_kernel *k);
/* Choose, for each op, the first runnable variant (or the one named by
 * FLASHBLOCK_KERNEL_<OP>=variant). Done once, implicitly, by the first
 * fb_op_run (thread-safe); calling it again, or fb_op_force_variant, while
 * other threads run ops is not. */
void fb_ops_select(void);
const fb_kernel *fb_op_selected(fb_op_id op);
const char *fb_op_selected_variant(fb_op_id op);
/* Force a variant by name for one op ("reference" allowed); for benchmarks
 * and tests. Plan workspaces after forcing: the need is the selected one's. */
fb_status fb_op_force_variant(fb_op_id op, const char *variant);

/* Runs the selected variant. Checks each declared slot's dtype (and that
 * required slots are not NULL): FB_ERR_INVALID_ARG on a mismatch. With
 * FLASHBLOCK_OP_CHECK=1 in the environment it runs fb_op_validate first. */
fb_status fb_op_run(fb_op_id op, const fb_op_args *a);
/* Every slot against the declaration: dtype, NULL, and rows/cols/stride
 * against the op's shapes for a->d (tests, FLASHBLOCK_OP_CHECK). */
fb_status fb_op_validate(fb_op_id op, const fb_op_args *a);

/* Workspace bytes kernel k (or the op's selected variant) needs for dims
 * a->d, a->f and n_threads (plan with fb_get_threads()). */
size_t fb_kernel_workspace(const fb_kernel *k, const fb_op_args *a, int n_threads);
size_t fb_op_workspace(fb_op_id op, const fb_op_args *a, int n_threads);
/* *need = max(*need, fb_op_workspace(op, a, n_threads)): one line per call
 * a caller plans for. */
void fb_ws_plan(size_t *need, fb_op_id op, const fb_op_args *a, int n_threads);
/* For kernels: FB_OK when a->ws holds need bytes, 64-byte aligned; else
 * FB_ERR_WORKSPACE naming the kernel. Call before any parallel region. */
fb_status fb_ws_check(const fb_op_args *a, size_t need, const char *kernel);

/* ---- kernels (defined in the op files, listed here for the table) ---- */
#define FB_DECLARE_SIMD(name)                          \
    fb_status name##_generic(const fb_op_args *a);     \
    fb_status name##_avx2(const fb_op_args *a);        \
    fb_status name##_avx512(const fb_op_args *a)
#define FB_DECLARE_WS(name) size_t name(const fb_op_args *a, int n_threads)

fb_status layernorm_forward_ref(const fb_op_args *a);
fb_status rmsnorm_forward_ref(const fb_op_args *a);
fb_status matmul_forward_ref(const fb_op_args *a);
fb_status matmul_forward_blas(const fb_op_args *a);
fb_status rope_forward_ref(const fb_op_args *a);
fb_status gelu_tanh_forward_ref(const fb_op_args *a);
fb_status gelu_forward_ref(const fb_op_args *a);
fb_status swiglu_forward_ref(const fb_op_args *a);
fb_status residual_forward_ref(const fb_op_args *a);
fb_status attention_forward_naive(const fb_op_args *a);
FB_DECLARE_SIMD(layernorm_forward);
FB_DECLARE_SIMD(rmsnorm_forward);
FB_DECLARE_SIMD(matmul_forward_gemv);
FB_DECLARE_SIMD(rope_forward);
FB_DECLARE_SIMD(gelu_tanh_forward);
FB_DECLARE_SIMD(gelu_forward);
FB_DECLARE_SIMD(swiglu_forward);
FB_DECLARE_SIMD(residual_forward);
FB_DECLARE_SIMD(flash_attention_forward);
FB_DECLARE_SIMD(attention_forward_standard);
FB_DECLARE_WS(matmul_forward_blas_ws);
FB_DECLARE_WS(matmul_forward_gemv_ws);
FB_DECLARE_WS(rope_ws);
FB_DECLARE_WS(attention_forward_naive_ws);
FB_DECLARE_WS(flash_attention_forward_ws);
FB_DECLARE_WS(attention_forward_standard_ws);

fb_status layernorm_backward_ref(const fb_op_args *a);
fb_status rmsnorm_backward_ref(const fb_op_args *a);
fb_status matmul_backward_ref(const fb_op_args *a);
fb_status matmul_backward_blas(const fb_op_args *a);
fb_status rope_backward_ref(const fb_op_args *a);
fb_status gelu_tanh_backward_ref(const fb_op_args *a);
fb_status gelu_backward_ref(const fb_op_args *a);
fb_status swiglu_backward_ref(const fb_op_args *a);
fb_status residual_backward_ref(const fb_op_args *a);
fb_status embedding_forward_ref(const fb_op_args *a);
fb_status embedding_backward_ref(const fb_op_args *a);
fb_status crossentropy_fused_ref(const fb_op_args *a);
fb_status attention_backward_naive(const fb_op_args *a);
FB_DECLARE_SIMD(layernorm_backward);
FB_DECLARE_SIMD(rmsnorm_backward);
FB_DECLARE_SIMD(rope_backward);
FB_DECLARE_SIMD(gelu_tanh_backward);
FB_DECLARE_SIMD(gelu_backward);
FB_DECLARE_SIMD(swiglu_backward);
FB_DECLARE_SIMD(residual_backward);
FB_DECLARE_SIMD(embedding_forward);
FB_DECLARE_SIMD(embedding_backward);
FB_DECLARE_SIMD(crossentropy_fused);
FB_DECLARE_SIMD(flash_attention_backward);
FB_DECLARE_SIMD(attention_backward_standard);
FB_DECLARE_WS(norm_backward_ref_ws);
FB_DECLARE_WS(matmul_backward_ref_ws);
FB_DECLARE_WS(matmul_backward_blas_ws);
FB_DECLARE_WS(embedding_backward_ref_ws);
FB_DECLARE_WS(crossentropy_fused_ref_ws);
FB_DECLARE_WS(crossentropy_fused_ws);
FB_DECLARE_WS(attention_backward_naive_ws);
FB_DECLARE_WS(flash_attention_backward_ws);
FB_DECLARE_WS(attention_backward_standard_ws);

FB_DECLARE_SIMD(attention_decode);
fb_status matmul_q8_0_forward_ref(const fb_op_args *a);
FB_DECLARE_SIMD(matmul_q8_0_forward);
fb_status matmul_q8_0_forward_vnni_avx512(const fb_op_args *a);   /* AVX-512 VNNI (vpdpbusd) */
FB_DECLARE_WS(attention_decode_ws);
FB_DECLARE_WS(matmul_q8_0_ref_ws);
FB_DECLARE_WS(matmul_q8_0_ws);

fb_status sgemm_ref(const fb_op_args *a);
fb_status sgemm_blas(const fb_op_args *a);
fb_status sgemm_packed_avx512(const fb_op_args *a);   /* gemm.simd.c, AVX-512 build */
FB_DECLARE_WS(sgemm_packed_ws);
fb_status adamw_update_ref(const fb_op_args *a);
FB_DECLARE_SIMD(adamw_update);

#endif
