/*
 * flashblock — inference API: load a model, run many sequences through one
 * engine, sample, read logits and log-probabilities.
 *
 *   fb_llm      a loaded model and its tokenizer (any supported file:
 *               flashblock .safetensors, GGUF, llama2.c .bin, llm.c .bin).
 *               Immutable once loaded: one fb_llm may back several sessions.
 *   fb_session  an engine over one fb_llm: a KV cache for up to max_seqs
 *               sequences of up to ctx tokens, scratch for max_batch tokens
 *               per engine call, optionally Q8_0 weights.
 *   sequence    an int handle inside a session, with its own tokens, its own
 *               sampler (its own random stream) and stop rules.
 *
 * The generation loop:
 *
 *     fb_seq_new(s, &params, &seq);           // sampler, stops, limits
 *     fb_seq_add_text(s, seq, prompt, len);   // queued; prefilled by the next step
 *     while (fb_session_active(s)) {
 *         fb_session_step(s, ev, n_ev, &n);   // one batched engine step
 *         ... ev[i].text / ev[i].token / ev[i].finish ...
 *     }
 *
 * fb_session_step advances every live sequence at once: it prefills queued
 * input (chunks of at most max_batch tokens), samples one token for every
 * sequence whose logits are ready, applies its stop rules, and runs one
 * engine call that decodes all the sampled tokens together. Each sequence's
 * output depends only on its own input and seed, never on what else is in
 * the batch.
 *
 * Thread safety: an fb_llm may be shared read-only between threads; an
 * fb_session and its sequences must be used by one thread at a time (the
 * kernels inside a step use the library's worker threads, fb_set_threads).
 * Ownership: every handle returned through an out-pointer belongs to the
 * caller and is released with its _free function; pointers returned by
 * getters are owned by the handle and valid until the next call on it.
 * Every function returning fb_status sets fb_last_error() on failure.
 */
#ifndef FLASHBLOCK_INFER_H
#define FLASHBLOCK_INFER_H

#include <stddef.h>
#include <stdint.h>
#include "flashblock.h"
#include "flashblock_tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- models -------------------------------------------------------------- */

typedef struct fb_llm fb_llm;

/* tokenizer: NULL = the model's own (checkpoint metadata, GGUF vocabulary);
 * else "byte", "gpt2:DIR", "llama2c:FILE" or a bare file (a trained
 * flashblock vocabulary, or a llama2.c tokenizer.bin read for exactly the
 * model's vocabulary size, as run.c does). llama2.c and llm.c files carry no
 * tokenizer and need one. */
fb_status fb_llm_load(fb_llm **out, const char *model_path, const char *tokenizer);

/* How the weights are held in memory. */
typedef enum fb_weights {
    /* fp32 (default): sessions run fp32, or Q8_0 copies quantized from it
     * when they ask for q8 (held beside the fp32 weights). */
    FB_WEIGHTS_F32 = 0,
    /* Q8_0 only, for sessions with q8 = 1: every matrix whose rows are whole
     * 32-value blocks — each layer's linear layers, the LM head and the
     * token embedding (one tensor when tied) — goes straight from the file
     * into Q8_0 (Q8_0 GGUF blocks copied as they are; f32, f16, bf16 and
     * llama2.c int8 weights quantized row by row, the same blocks the
     * fp32 route's quantizer gives) and is never held as fp32. Norms,
     * biases and learned positions stay fp32. The token embedding is read
     * by dequantizing the token's row. */
    FB_WEIGHTS_Q8_0 = 1,
} fb_weights;

typedef struct fb_llm_load_options {
    fb_weights weights;
} fb_llm_load_options;

/* fb_llm_load with options (NULL: the defaults, all zero). */
fb_status fb_llm_load_ex(fb_llm **out, const char *model_path, const char *tokenizer, const fb_llm_load_options *opt);
void      fb_llm_free(fb_llm *llm);
const fb_model_config *fb_llm_config(const fb_llm *llm);
const fb_tokenizer    *fb_llm_tokenizer(const fb_llm *llm);
/* "safetensors", "gguf", "llama2.c" or "llm.c". */
const char *fb_llm_format(const fb_llm *llm);
/* 1 when the file stores Q8_0 (GGUF) or int8 (llama2.c v2) weights. */
int         fb_llm_quantized_source(const fb_llm *llm);
/* How its weights are held (fb_llm_load_options.weights). */
fb_weights  fb_llm_weights(const fb_llm *llm);
/* Bytes of weights held in memory for this model (fp32 and Q8_0). */
size_t      fb_llm_weight_bytes(const fb_llm *llm);

/* ---- sessions -------------------------------------------------------------- */

typedef struct fb_session_options {
    int max_seqs;     /* sequences alive at once (default 1) */
    int ctx;          /* tokens per sequence; 0 = the model's context */
    int max_batch;    /* tokens per engine call: prefill chunk size (default 512) */
    int q8;           /* 1: Q8_0 weights for every linear layer: the llm's own when it
                         was loaded with FB_WEIGHTS_Q8_0, else quantized from its fp32
                         weights for this session. Must be 1 for an FB_WEIGHTS_Q8_0
                         llm (FB_ERR_UNSUPPORTED otherwise). */
    /* Paged KV cache: blocks of kv_block_size tokens (default 16) from a pool
     * of kv_blocks blocks, or as many as kv_mem_mib MiB hold; both 0: room
     * for max_seqs full contexts (never full). A smaller pool lets many
     * sequences share memory; when it runs out, fb_session_step returns
     * FB_ERR_KV_FULL and the caller preempts a sequence (fb_seq_preempt). */
    int kv_block_size;
    int kv_blocks;
    int kv_mem_mib;
    int prefix_cache; /* 1: full KV blocks are kept and reused by prompts that start alike */
} fb_session_options;

/* max_seqs 1, ctx 0, max_batch 512, q8 0, blocks of 16 tokens, full pool,
 * no prefix cache. */
fb_session_options fb_session_options_default(void);

typedef struct fb_session fb_session;

/* The session borrows llm, which must outlive it. */
fb_status fb_session_create(fb_session **out, fb_llm *llm, const fb_session_options *opt);
void      fb_session_free(fb_session *s);
/* Context length of every sequence of the session. */
int       fb_session_ctx(const fb_session *s);
/* Sequences that are neither finished nor freed. */
int       fb_session_active(const fb_session *s);

/* Work done so far: prompt tokens prefilled and tokens decoded by the
 * batched steps, with the wall time each took. */
typedef struct fb_session_stats {
    long prefill_tokens, decode_tokens;
    double prefill_seconds, decode_seconds;
    long prefix_hit_tokens;     /* prompt tokens taken from the prefix cache, not computed */
} fb_session_stats;
fb_session_stats fb_session_get_stats(const fb_session *s);

/* The KV cache's blocks: in use by sequences, free, and held only by the
 * prefix cache (reusable, evicted least recently used when needed). */
typedef struct fb_session_kv {
    int block_size, blocks_total, blocks_used, blocks_free, blocks_cached;
    size_t block_bytes;
    long prefix_queries, prefix_hit_blocks, evictions;
} fb_session_kv;
fb_session_kv fb_session_kv_stats(const fb_session *s);

/* ---- sequences -------------------------------------------------------------- */

#define FB_MAX_STOPS 16

typedef struct fb_gen_params {
    float temperature;          /* >= 0; 0 = greedy (lowest id on ties) */
    int top_k;                  /* 0 = off */
    float top_p;                /* (0, 1]; 1 = off */
    float min_p;                /* [0, 1]; 0 = off */
    float repetition_penalty;   /* > 0; 1 = off */
    int repetition_window;      /* last N tokens penalised (-1: all) */
    float presence_penalty;     /* OpenAI's: logit -= this for every token in the window; 0 = off */
    float frequency_penalty;    /* OpenAI's: logit -= this x the token's count in the window; 0 = off */
    uint64_t seed;              /* this sequence's random stream */
    int max_tokens;             /* tokens to generate; 0 = until max_positions or the context */
    int max_positions;          /* stop when prompt + generated reach this; 0 = off (llama2.c's -n) */
    int slide;                  /* 1: when the context is full, keep its last half and go on
                                   (re-prefilled); 0: finish with FB_FINISH_CONTEXT */
    int stop_at_eos;            /* 1: the tokenizer's EOS or BOS ends the sequence (default) */
    int logprobs;               /* 1: fill each event's logprob (a pass over the vocabulary
                                   per token); 0 (default): logprob is NAN */
    int n_stops;                /* stop strings, matched on the generated text only */
    const char *stops[FB_MAX_STOPS];   /* copied by fb_seq_new */
} fb_gen_params;

/* temperature 1, top_k 0, top_p 1, min_p 0, penalty 1 over 64 tokens,
 * presence and frequency penalties 0, seed 0, no limits, slide 1,
 * stop_at_eos 1, logprobs 0, no stop strings. */
fb_gen_params fb_gen_params_default(void);

/* A new empty sequence. FB_ERR_UNSUPPORTED ("no free sequence slot") when
 * max_seqs are alive: free one, or create the session with more. */
fb_status fb_seq_new(fb_session *s, const fb_gen_params *params, int *seq);
/* Releases the sequence and its cache slot (at any time, finished or not). */
void      fb_seq_free(fb_session *s, int seq);
/* Releases the sequence's KV blocks but keeps everything else: the next
 * steps recompute its cache from its tokens, then it goes on where it was
 * (the answer to FB_ERR_KV_FULL). */
void      fb_seq_preempt(fb_session *s, int seq);
/* Positions of the sequence held in the KV cache now (0 after a preempt). */
int       fb_seq_kv_tokens(const fb_session *s, int seq);
/* A copy of seq (tokens, cache, text, sampler state) as a new sequence, with
 * params (NULL: seq's own). Both then go on independently; their KV blocks
 * are shared until one writes into a shared block (only the last, partial
 * one is ever written: it is copied then). */
fb_status fb_seq_fork(fb_session *s, int seq, const fb_gen_params *params, int *child);

/* Queue text (encoded now; prefilled by the next step). The first text of a
 * sequence starts with BOS where the model expects it (SentencePiece
 * vocabularies, or an empty prompt when the tokenizer has a BOS).
 * FB_ERR_SHAPE when the sequence would exceed the context and truncate is
 * 0; with truncate 1 a too-long prompt keeps its last ctx/2 tokens. */
fb_status fb_seq_add_text(fb_session *s, int seq, const char *text, size_t len, int truncate);
/* Queue token ids (each < vocab size). */
fb_status fb_seq_add_tokens(fb_session *s, int seq, const int32_t *ids, int n);

/* Tokens of the sequence so far (input, then generated). */
const int32_t *fb_seq_tokens(const fb_session *s, int seq, int *n);
/* Text of the sequence so far, input included, as streamed by the step
 * events (llama2.c vocabularies print as run.c does). NUL-terminated. */
const char *fb_seq_text(const fb_session *s, int seq, size_t *len);

/* Raw logits [vocab] of the position after the last processed token (NULL
 * before the first step). log_softmax gives their log-probabilities. */
const float *fb_seq_logits(const fb_session *s, int seq);
/* The k most probable next tokens and their log-probabilities (descending,
 * ties by lower id), k <= vocab; returns how many were written. */
int fb_seq_top_logprobs(const fb_session *s, int seq, int k, int32_t *ids, float *logprobs);

/* ---- stepping ------------------------------------------------------------------ */

typedef enum fb_finish {
    FB_FINISH_NONE = 0,     /* still running */
    FB_FINISH_EOS,          /* the model produced EOS (or BOS) */
    FB_FINISH_STOP,         /* a stop string appeared */
    FB_FINISH_LENGTH,       /* max_tokens or max_positions reached */
    FB_FINISH_CONTEXT,      /* the context is full and slide is 0 */
} fb_finish;

typedef struct fb_seq_event {
    int seq;
    int32_t token;          /* sampled token, -1 when none (finished before sampling) */
    float logprob;          /* its log-probability under the raw logits (params.logprobs; else NAN) */
    const char *text;       /* bytes this token adds to the text (valid until the next step) */
    size_t text_len;
    fb_finish finish;       /* != NONE: the sequence has finished with this event */
} fb_seq_event;

/* One step for all live sequences; at most cap events are written (one per
 * sequence that sampled or finished), *n_events receives their number.
 * cap must be >= max_seqs. Queued input is prefilled max_batch tokens per
 * step in all, so a long prompt takes several steps while the others go on.
 * A sequence that holds no KV blocks yet (new, or preempted) is admitted
 * only when its input and one more token fit the free blocks; until then
 * it waits (no event).
 * FB_ERR_KV_FULL: the KV pool has no block for some sequence's next
 * position; nothing was sampled (no events), the prefill done so far is
 * kept. Preempt or free a sequence and call again. */
fb_status fb_session_step(fb_session *s, fb_seq_event *events, int cap, int *n_events);

#ifdef __cplusplus
}
#endif
#endif /* FLASHBLOCK_INFER_H */
