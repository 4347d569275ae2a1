/*
 * flashblock — public API.
 *
 * Opaque handles with init/free pairs and explicit status codes. Library code
 * never exits and never prints to stdout; on failure a function returns a
 * non-zero fb_status and fb_last_error() describes the problem in one line
 * (thread-local, valid until the next failing call on the same thread).
 */
#ifndef FLASHBLOCK_H
#define FLASHBLOCK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FB_VERSION_STRING "0.1.0"

typedef enum fb_status {
    FB_OK = 0,
    FB_ERR_INVALID_ARG,   /* NULL pointer, bad flag value, out-of-range number */
    FB_ERR_CONFIG,        /* invalid model/block configuration (message names the field) */
    FB_ERR_SHAPE,         /* impossible or mismatched tensor shapes */
    FB_ERR_OOM,           /* allocation failed or would be too large */
    FB_ERR_IO,            /* open/read/write/rename failed */
    FB_ERR_FORMAT,        /* corrupt, truncated or unsupported file contents */
    FB_ERR_UNSUPPORTED,   /* valid request this build cannot serve */
    FB_ERR_NUMERIC,       /* NaN/Inf where finite values are required */
    FB_ERR_KV_FULL,       /* the KV cache has no free block: free or preempt a sequence and retry */
    FB_ERR_WORKSPACE,     /* a kernel's scratch workspace is missing, misaligned or too small */
} fb_status;

/* Short fixed name of a status ("invalid argument", ...). */
const char *fb_status_string(fb_status s);
/* One-line description of the last failure on this thread ("" if none). */
const char *fb_last_error(void);

/* ---- runtime ------------------------------------------------------------ */

/* Instruction sets the *.simd.c kernels are compiled for; fb_cpu_best_isa()
 * is the highest one whose CPU features are all usable here. Kernel variants
 * are chosen by a finer feature mask (AVX-512 VNNI, BF16, AMX, ... each one
 * bit; see docs/ARCHITECTURE.md, "Ops"). In the environment,
 * FLASHBLOCK_ISA=generic|avx2|avx512 keeps only the features of that level and
 * FLASHBLOCK_DISABLE=avx512_vnni,... drops single ones (tests, comparisons). */
typedef enum fb_isa { FB_ISA_GENERIC = 0, FB_ISA_AVX2 = 1, FB_ISA_AVX512 = 2, FB_ISA_COUNT } fb_isa;
fb_isa      fb_cpu_best_isa(void);
const char *fb_isa_name(fb_isa isa);

/* Number of worker threads used by parallel kernels (default: all cores).
 * See docs/ARCHITECTURE.md, "Threads", for the wait policy. */
void fb_set_threads(int n);
int  fb_get_threads(void);

/* ---- transformer block ---------------------------------------------------- */

typedef enum fb_norm_kind { FB_NORM_LAYERNORM = 0, FB_NORM_RMSNORM = 1 } fb_norm_kind;
typedef enum fb_mlp_kind  { FB_MLP_GELU_TANH = 0, FB_MLP_GELU = 1, FB_MLP_SWIGLU = 2 } fb_mlp_kind;
typedef enum fb_pos_kind  { FB_POS_LEARNED = 0, FB_POS_ROPE = 1 } fb_pos_kind;

typedef struct fb_block_config {
    int d_model;
    int n_heads;
    int n_kv_heads;     /* == n_heads: MHA; divides n_heads: GQA; 1: MQA */
    int head_dim;       /* must equal d_model / n_heads (0: derive it) */
    int d_ff;
    fb_norm_kind norm;
    float norm_eps;
    fb_mlp_kind mlp;
    fb_pos_kind positions;
    float rope_theta;
    int bias;           /* 1: every linear layer and LayerNorm has a bias */
} fb_block_config;

/* Presets. gpt2: LayerNorm(eps 1e-5), biases, GELU-tanh, learned positions,
 * d_ff = 4*d_model. llama: RMSNorm(eps 1e-5), no biases, SwiGLU, RoPE
 * (interleaved pairs, theta 10000), n_kv_heads as given. */
fb_block_config fb_block_config_gpt2(int d_model, int n_heads);
fb_block_config fb_block_config_llama(int d_model, int n_heads, int n_kv_heads, int d_ff);

/* Parse "layernorm"/"rmsnorm", "gelu_tanh"/"gelu"/"swiglu", "learned"/"rope". */
fb_status fb_norm_from_name(const char *name, fb_norm_kind *out);
fb_status fb_mlp_from_name(const char *name, fb_mlp_kind *out);
fb_status fb_pos_from_name(const char *name, fb_pos_kind *out);

/* Checks every field; the error message names the offending field. */
fb_status fb_block_config_validate(const fb_block_config *cfg);

typedef struct fb_block fb_block;   /* weights of one block, one allocation */

/* Parameter tensors of a block, in the order of fb_block_param_name(). Linear
 * weights are [out, in] row-major (PyTorch nn.Linear layout); attn_qkv rows
 * are all of Q, then K, then V. Tensors a config does not use have size 0. */
typedef enum fb_block_param {
    FB_P_ATTN_NORM_W = 0, FB_P_ATTN_NORM_B,
    FB_P_ATTN_QKV_W, FB_P_ATTN_QKV_B,
    FB_P_ATTN_OUT_W, FB_P_ATTN_OUT_B,
    FB_P_FFN_NORM_W, FB_P_FFN_NORM_B,
    FB_P_FFN_UP_W, FB_P_FFN_UP_B,
    FB_P_FFN_GATE_W, FB_P_FFN_GATE_B,
    FB_P_FFN_DOWN_W, FB_P_FFN_DOWN_B,
    FB_P_COUNT
} fb_block_param;

fb_status   fb_block_init(fb_block **out, const fb_block_config *cfg);
void        fb_block_free(fb_block *blk);
const fb_block_config *fb_block_get_config(const fb_block *blk);
/* GGUF-style name without the "blk.N." prefix, e.g. "attn_qkv.weight". */
const char *fb_block_param_name(fb_block_param p);
/* Pointer to a parameter tensor and its element count (0 if unused). */
float      *fb_block_param_ptr(fb_block *blk, fb_block_param p, size_t *numel);
/* Fill weights like GPT-2's init (normal(0, 0.02), norms at 1, biases 0). */
void        fb_block_init_random(fb_block *blk, uint64_t seed);

/* y = block(x) for x, y of shape [B, T, d_model] (may not alias).
 * pos0: position of the first token (learned positions are added by the
 * model, not the block; RoPE uses pos0 + t). Causal attention. */
fb_status fb_block_forward(fb_block *blk, float *y, const float *x, int B, int T, int pos0);

/* ---- model ------------------------------------------------------------------
 * Token embedding, learned positions (gpt2) or RoPE (llama), n_layers blocks,
 * final norm, LM head (tied to the embedding or not). Parameters, gradients,
 * AdamW moments and activations each live in one allocation carved by a size
 * table. Tensor names follow GGUF (token_embd.weight, blk.N.attn_qkv.weight,
 * output_norm.weight, output.weight, ...). */

typedef struct fb_model_config {
    fb_block_config block;
    int n_layers;
    int vocab_size;
    int max_seq;        /* context length; size of the learned position table */
    int tied;           /* 1: LM head shares token_embd.weight */
} fb_model_config;

typedef struct fb_model fb_model;

fb_status fb_model_config_validate(const fb_model_config *cfg);
fb_status fb_model_init(fb_model **out, const fb_model_config *cfg);
void      fb_model_free(fb_model *m);
const fb_model_config *fb_model_get_config(const fb_model *m);
void      fb_model_init_random(fb_model *m, uint64_t seed);
size_t    fb_model_num_params(const fb_model *m);

/* Parameter tensors: index 0..fb_model_num_tensors()-1, each with its GGUF
 * name, shape ([out, in] for linear weights) and data (fb_model_tensor: NULL
 * for a tensor held only as Q8_0, in a model loaded for quantized
 * inference). */
int         fb_model_num_tensors(const fb_model *m);
const char *fb_model_tensor_name(const fb_model *m, int i);
float      *fb_model_tensor(fb_model *m, int i, int *ndim, int64_t shape[2]);
float      *fb_model_tensor_grad(fb_model *m, int i);
int         fb_model_find_tensor(const fb_model *m, const char *name);   /* -1 if absent */

/* Training activations for batches of B sequences of T tokens (explicit,
 * never lazy). recompute=1: keep only block inputs and recompute each block
 * during the backward pass (activation checkpointing). */
fb_status fb_model_alloc_training(fb_model *m, int B, int T, int recompute);
size_t    fb_model_activation_bytes(const fb_model *m);
/* Forward on ids [B,T] with next-token targets [B,T] (< 0: ignored): mean
 * loss over the counted targets into *loss; no gradients. */
fb_status fb_model_forward(fb_model *m, const int32_t *ids, const int32_t *targets, int B, int T, float *loss);
/* Forward and backward in one pass (the LM head, softmax and cross-entropy
 * are fused, so logits are never stored). Gradients of the mean loss times
 * grad_scale ACCUMULATE into the gradient buffer (1/k for k micro-batches);
 * zero them once per optimizer step. */
fb_status fb_model_forward_backward(fb_model *m, const int32_t *ids, const int32_t *targets, int B, int T,
                                    float grad_scale, float *loss);
void      fb_model_zero_grad(fb_model *m);
float    *fb_model_params(fb_model *m);          /* all parameters, contiguous */
float    *fb_model_grads(fb_model *m);           /* all gradients, same layout */

#ifdef __cplusplus
}
#endif
#endif /* FLASHBLOCK_H */
