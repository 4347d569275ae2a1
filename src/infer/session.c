/*
 * fb_session: the generation loop of include/flashblock_infer.h.
 *
 * A session owns one engine (infer/engine.h: model + KV cache + scratch) and
 * a table of sequence slots; sequence handle k is engine cache slot k. Each
 * slot keeps its tokens, the logits of its last position, its own sampler
 * (random stream), its streamed text and its stop rules. fb_session_step:
 *   1. prefill queued input: chunks of at most max_batch tokens in all this
 *      step (a long prompt takes several steps and never stalls the others);
 *      with the prefix cache, cached blocks of the prompt are attached first;
 *   2. make sure every sequence about to decode has a KV block for its next
 *      position (else FB_ERR_KV_FULL, before anything is sampled);
 *   3. sample one token for every slot whose logits are ready and apply its
 *      stop rules (EOS/BOS, stop strings, limits, a full context);
 *   4. one engine call that decodes every sampled token together.
 * Sampling reads only the slot's own logits and random state, and each row
 * of the engine call is computed independently of the others, so a
 * sequence's output does not depend on its batch mates.
 */
#include "core/error.h"
#include "core/runtime.h"
#include "flashblock_infer.h"
#include "infer/engine.h"
#include "infer/llm.h"
#include "infer/sampler.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct seq_slot {
    int alive, finished;
    fb_gen_params p;
    char *stops[FB_MAX_STOPS];   /* owned copies of p.stops */
    fb_sampler *sampler;
    int32_t *tokens;
    int n, cap;
    int queued;                  /* tokens[queued..n) wait for prefill */
    int base;                    /* tokens[base] sits at KV position 0 (> 0 after a slide) */
    int n_generated;
    int inputs;                  /* fb_seq_add_* calls so far (BOS goes on the first text) */
    int has_logits;
    float *logits;               /* [V] raw logits after the last processed token */
    char *text;                  /* everything streamed so far, NUL-terminated */
    size_t text_len, text_cap, gen_start;   /* generated text starts at gen_start */
    fb_token_decoder *dec;
    int32_t prev;
} seq_slot;

struct fb_session {
    fb_llm *llm;
    fb_engine eng;
    int ctx, max_batch, max_seqs, V;
    seq_slot *slots;
    float *scratch;              /* [V]: the sampler works on a copy of the logits */
    int *row_seq;
    int32_t *row_tok;
    unsigned char *want;
    int prefix_cache;
    fb_session_stats stats;
};

fb_session_stats fb_session_get_stats(const fb_session *s) {
    fb_session_stats z = {0};
    return s ? s->stats : z;
}

fb_session_options fb_session_options_default(void) {
    fb_session_options o = {.max_seqs = 1, .ctx = 0, .max_batch = 512, .q8 = 0, .kv_block_size = 16, .kv_blocks = 0,
                            .kv_mem_mib = 0, .prefix_cache = 0};
    return o;
}

fb_gen_params fb_gen_params_default(void) {
    fb_gen_params p = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .repetition_penalty = 1.0f,
                       .repetition_window = 64, .presence_penalty = 0.0f, .frequency_penalty = 0.0f, .seed = 0, .max_tokens = 0, .max_positions = 0, .slide = 1,
                       .stop_at_eos = 1, .logprobs = 0, .n_stops = 0};
    return p;
}

fb_status fb_session_create(fb_session **out, fb_llm *llm, const fb_session_options *opt) {
    if (!out || !llm) return fb_fail(FB_ERR_INVALID_ARG, "fb_session_create: NULL argument");
    *out = NULL;
    fb_session_options o = opt ? *opt : fb_session_options_default();
    const fb_model_config *mc = &llm->m->cfg;
    if (o.max_seqs <= 0 || o.max_seqs > 65536) return fb_fail(FB_ERR_INVALID_ARG, "session: max_seqs %d outside [1, 65536]", o.max_seqs);
    if (o.max_batch <= 0 || o.max_batch > 1024) return fb_fail(FB_ERR_INVALID_ARG, "session: max_batch %d outside [1, 1024]", o.max_batch);
    if (o.ctx < 0) return fb_fail(FB_ERR_INVALID_ARG, "session: ctx %d must be >= 0", o.ctx);
    if (o.kv_block_size < 0 || o.kv_block_size > 4096)
        return fb_fail(FB_ERR_INVALID_ARG, "session: kv_block_size %d outside [1, 4096] (0: 16)", o.kv_block_size);
    if (o.kv_blocks < 0 || o.kv_mem_mib < 0) return fb_fail(FB_ERR_INVALID_ARG, "session: kv_blocks and kv_mem_mib must be >= 0");
    if (llm->weights == FB_WEIGHTS_Q8_0 && !o.q8)
        return fb_fail(FB_ERR_UNSUPPORTED, "session: the model was loaded with Q8_0 weights only (FB_WEIGHTS_Q8_0): "
                                           "create the session with q8 = 1, or load it with FB_WEIGHTS_F32");
    if (o.ctx == 0) o.ctx = mc->max_seq;
    if (mc->block.positions == FB_POS_LEARNED && o.ctx > mc->max_seq)
        return fb_fail(FB_ERR_SHAPE, "session: ctx %d exceeds the model's %d learned positions", o.ctx, mc->max_seq);
    fb_session *s = calloc(1, sizeof *s);
    if (!s) return fb_fail(FB_ERR_OOM, "session: out of memory");
    s->llm = llm;
    s->ctx = o.ctx;
    s->max_batch = o.max_batch;
    s->max_seqs = o.max_seqs;
    s->V = mc->vocab_size;
    s->slots = calloc((size_t)o.max_seqs, sizeof *s->slots);
    s->scratch = malloc(sizeof(float) * (size_t)s->V);
    /* a decode step carries one row per sequence; a prefill chunk max_batch */
    const int rows = o.max_batch > o.max_seqs ? o.max_batch : o.max_seqs;
    s->row_seq = malloc(sizeof(int) * (size_t)rows);
    s->row_tok = malloc(sizeof(int32_t) * (size_t)rows);
    s->want = malloc((size_t)rows);
    s->prefix_cache = o.prefix_cache != 0;
    fb_status st = s->slots && s->scratch && s->row_seq && s->row_tok && s->want ? FB_OK : fb_fail(FB_ERR_OOM, "session: out of memory");
    fb_engine_options eo = {.n_seqs = o.max_seqs, .max_T = o.ctx, .max_rows = rows, .q8 = o.q8,
                            .kv_block_size = o.kv_block_size, .kv_blocks = o.kv_blocks, .prefix_cache = s->prefix_cache};
    if (o.kv_blocks == 0 && o.kv_mem_mib > 0) {   /* a budget in MiB: as many blocks as fit */
        const fb_block_config *bc = &mc->block;
        const fb_kv_cache_config kc = {.n_layers = mc->n_layers, .n_kv_heads = bc->n_kv_heads,
                                       .head_dim = bc->d_model / bc->n_heads, .block_size = o.kv_block_size};
        const size_t nb = (size_t)o.kv_mem_mib * 1048576u / fb_kv_block_bytes(&kc);
        if (nb == 0) st = fb_fail(FB_ERR_INVALID_ARG, "session: a KV budget of %d MiB holds no block of %zu bytes", o.kv_mem_mib, fb_kv_block_bytes(&kc));
        eo.kv_blocks = nb > INT32_MAX / 4 ? INT32_MAX / 4 : (int)nb;
    }
    if (st == FB_OK) st = fb_engine_init(&s->eng, llm->m, &eo);
    if (st != FB_OK) { fb_session_free(s); return st; }
    *out = s;
    return FB_OK;
}

static void slot_release(seq_slot *q) {
    for (int i = 0; i < FB_MAX_STOPS; i++) free(q->stops[i]);
    fb_sampler_free(q->sampler);
    free(q->tokens);
    free(q->logits);
    free(q->text);
    fb_token_decoder_free(q->dec);
    memset(q, 0, sizeof *q);
}

void fb_session_free(fb_session *s) {
    if (!s) return;
    for (int k = 0; s->slots && k < s->max_seqs; k++) slot_release(&s->slots[k]);
    fb_engine_free(&s->eng);
    free(s->slots);
    free(s->scratch);
    free(s->row_seq);
    free(s->row_tok);
    free(s->want);
    free(s);
}

int fb_session_ctx(const fb_session *s) { return s ? s->ctx : 0; }

int fb_session_active(const fb_session *s) {
    int n = 0;
    for (int k = 0; s && k < s->max_seqs; k++) n += s->slots[k].alive && !s->slots[k].finished;
    return n;
}

static seq_slot *slot_of(const fb_session *s, int seq) {
    if (!s || seq < 0 || seq >= s->max_seqs || !s->slots[seq].alive) {
        fb_fail(FB_ERR_INVALID_ARG, "session: %d is not a live sequence", seq);
        return NULL;
    }
    return &s->slots[seq];
}

static fb_status slot_configure(fb_session *s, seq_slot *q, const fb_gen_params *gp) {
    fb_gen_params p = gp ? *gp : fb_gen_params_default();
    if (p.n_stops < 0 || p.n_stops > FB_MAX_STOPS) return fb_fail(FB_ERR_INVALID_ARG, "sequence: n_stops %d outside [0, %d]", p.n_stops, FB_MAX_STOPS);
    if (p.max_tokens < 0 || p.max_positions < 0) return fb_fail(FB_ERR_INVALID_ARG, "sequence: max_tokens and max_positions must be >= 0");
    fb_sampler_config sc = {.temperature = p.temperature, .top_k = p.top_k, .top_p = p.top_p, .min_p = p.min_p,
                            .repetition_penalty = p.repetition_penalty, .repetition_window = p.repetition_window,
                            .seed = p.seed, .presence_penalty = p.presence_penalty, .frequency_penalty = p.frequency_penalty};
    fb_sampler *smp = NULL;
    FB_TRY(fb_sampler_init(&smp, &sc, s->V));
    char *stops[FB_MAX_STOPS] = {0};
    for (int i = 0; i < p.n_stops; i++) {
        if (!p.stops[i] || !*p.stops[i]) { for (int j = 0; j < i; j++) free(stops[j]); fb_sampler_free(smp); return fb_fail(FB_ERR_INVALID_ARG, "sequence: stop string %d is empty", i); }
        size_t n = strlen(p.stops[i]);
        if (!(stops[i] = malloc(n + 1))) { for (int j = 0; j < i; j++) free(stops[j]); fb_sampler_free(smp); return fb_fail(FB_ERR_OOM, "sequence: out of memory"); }
        memcpy(stops[i], p.stops[i], n + 1);
    }
    for (int i = 0; i < FB_MAX_STOPS; i++) { free(q->stops[i]); q->stops[i] = stops[i]; p.stops[i] = stops[i]; }
    fb_sampler_free(q->sampler);
    q->sampler = smp;
    q->p = p;
    return FB_OK;
}

fb_status fb_seq_new(fb_session *s, const fb_gen_params *params, int *seq) {
    if (!s || !seq) return fb_fail(FB_ERR_INVALID_ARG, "fb_seq_new: NULL argument");
    int k = 0;
    while (k < s->max_seqs && s->slots[k].alive) k++;
    if (k == s->max_seqs) return fb_fail(FB_ERR_UNSUPPORTED, "no free sequence slot (all %d in use)", s->max_seqs);
    seq_slot *q = &s->slots[k];
    memset(q, 0, sizeof *q);
    fb_status st = slot_configure(s, q, params);
    if (st == FB_OK && !(q->logits = malloc(sizeof(float) * (size_t)s->V))) st = fb_fail(FB_ERR_OOM, "sequence: out of memory");
    if (st == FB_OK) st = fb_token_decoder_init(&q->dec, s->llm->tok);
    if (st != FB_OK) { slot_release(q); return st; }
    q->prev = -1;
    q->alive = 1;
    fb_kv_reset(&s->eng.kv, k);
    *seq = k;
    return FB_OK;
}

void fb_seq_free(fb_session *s, int seq) {
    if (!s || seq < 0 || seq >= s->max_seqs || !s->slots[seq].alive) return;
    slot_release(&s->slots[seq]);
    fb_kv_reset(&s->eng.kv, seq);
}

static int push_token(seq_slot *q, int32_t t) {
    if (q->n == q->cap) {
        int nc = q->cap ? 2 * q->cap : 64;
        int32_t *p = realloc(q->tokens, sizeof(int32_t) * (size_t)nc);
        if (!p) return 0;
        q->tokens = p;
        q->cap = nc;
    }
    q->tokens[q->n++] = t;
    return 1;
}

static int append_text(seq_slot *q, const char *b, size_t len) {
    if (q->text_len + len + 1 > q->text_cap) {
        size_t nc = (q->text_len + len + 1) * 2;
        char *p = realloc(q->text, nc);
        if (!p) return 0;
        q->text = p;
        q->text_cap = nc;
    }
    if (len) memcpy(q->text + q->text_len, b, len);
    q->text_len += len;
    q->text[q->text_len] = '\0';
    return 1;
}

/* The bytes token id adds to the text after prev. llama2.c vocabularies
 * print exactly as run.c's decode + safe_printf (leading space dropped
 * after BOS, raw bytes of <0xHH> pieces, unprintable single bytes skipped);
 * others go through the UTF-8-aware streaming decoder. */
static int emit(const fb_tokenizer *tok, seq_slot *q, int32_t id) {
    const char *b = NULL;
    size_t len = 0;
    if (fb_tokenizer_get_kind(tok) == FB_TOKENIZER_LLAMA2C) {
        b = fb_tokenizer_token_bytes(tok, id, &len);
        if (id == fb_tokenizer_bos_id(tok)) len = 0;
        if (b && len && q->prev == fb_tokenizer_bos_id(tok) && b[0] == ' ') { b++; len--; }
        if (b && len == 1 && !(isprint((unsigned char)b[0]) || isspace((unsigned char)b[0]))) len = 0;
    } else if (id == fb_tokenizer_bos_id(tok) || fb_token_decoder_push(q->dec, id, &b, &len) != FB_OK) {   /* BOS prints nothing */
        len = 0;
    }
    q->prev = id;
    return append_text(q, b, b ? len : 0);
}

static int flush_text(const fb_tokenizer *tok, seq_slot *q) {
    const char *b;
    size_t len;
    if (fb_tokenizer_get_kind(tok) != FB_TOKENIZER_LLAMA2C && fb_token_decoder_flush(q->dec, &b, &len) == FB_OK && len)
        return append_text(q, b, len);
    return 1;
}

/* Queue ids[0..n): room is checked against what is cached plus queued. */
static fb_status queue_tokens(fb_session *s, seq_slot *q, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->V) return fb_fail(FB_ERR_INVALID_ARG, "token id %d outside the vocabulary [0, %d)", ids[i], s->V);
    for (int i = 0; i < n; i++) {
        if (!push_token(q, ids[i]) || !emit(s->llm->tok, q, ids[i])) return fb_fail(FB_ERR_OOM, "sequence: out of memory");
    }
    q->gen_start = q->text_len;
    q->inputs++;
    return FB_OK;
}

static fb_status check_room(const fb_session *s, const seq_slot *q, int seq, long add) {
    const long cached = fb_kv_len(&s->eng.kv, seq), queued = q->n - q->queued;
    if (cached + queued + add >= s->ctx)
        return fb_fail(FB_ERR_SHAPE, "the input has %ld tokens but the context holds %d (use a larger context or truncate)",
                       cached + queued + add, s->ctx);
    return FB_OK;
}

fb_status fb_seq_add_tokens(fb_session *s, int seq, const int32_t *ids, int n) {
    seq_slot *q = slot_of(s, seq);
    if (!q) return FB_ERR_INVALID_ARG;
    if (n < 0 || (n > 0 && !ids)) return fb_fail(FB_ERR_INVALID_ARG, "fb_seq_add_tokens: bad ids (n %d)", n);
    if (q->finished) return fb_fail(FB_ERR_INVALID_ARG, "sequence %d has finished", seq);
    FB_TRY(check_room(s, q, seq, n));
    return queue_tokens(s, q, ids, n);
}

fb_status fb_seq_add_text(fb_session *s, int seq, const char *text, size_t len, int truncate) {
    seq_slot *q = slot_of(s, seq);
    if (!q) return FB_ERR_INVALID_ARG;
    if (!text && len) return fb_fail(FB_ERR_INVALID_ARG, "fb_seq_add_text: NULL text");
    if (q->finished) return fb_fail(FB_ERR_INVALID_ARG, "sequence %d has finished", seq);
    const fb_tokenizer *tok = s->llm->tok;
    const int bos = fb_tokenizer_bos_id(tok);
    /* SentencePiece-style models are trained with BOS first (llama2.c adds
     * it); GPT-2-style byte-level vocabularies start from <|endoftext|> only
     * when there is no prompt text at all. */
    const int sp = fb_tokenizer_get_kind(tok) == FB_TOKENIZER_LLAMA2C;
    const unsigned flags = q->inputs == 0 && q->n == 0 && bos >= 0 && (sp || len == 0) ? FB_TOK_ADD_BOS : 0;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    FB_TRY(fb_tokenizer_encode(tok, text ? text : "", len, flags, &ids, &n, &cap));
    if (n == 0 && q->n == 0) { free(ids); return fb_fail(FB_ERR_INVALID_ARG, "the prompt is empty and the tokenizer has no BOS token to start from"); }
    fb_status st = check_room(s, q, seq, (long)n);
    if (st != FB_OK && truncate && q->n == 0) {
        size_t keep = (size_t)s->ctx / 2, drop = n - keep;   /* keep the end, room to generate */
        memmove(ids, ids + drop, keep * sizeof(int32_t));
        n = keep;
        st = FB_OK;
    }
    if (st == FB_OK) st = queue_tokens(s, q, ids, (int)n);
    free(ids);
    return st;
}

const int32_t *fb_seq_tokens(const fb_session *s, int seq, int *n) {
    const seq_slot *q = slot_of(s, seq);
    if (n) *n = q ? q->n : 0;
    return q ? q->tokens : NULL;
}

const char *fb_seq_text(const fb_session *s, int seq, size_t *len) {
    const seq_slot *q = slot_of(s, seq);
    if (len) *len = q ? q->text_len : 0;
    return q ? (q->text ? q->text : "") : NULL;
}

const float *fb_seq_logits(const fb_session *s, int seq) {
    const seq_slot *q = slot_of(s, seq);
    return q && q->has_logits ? q->logits : NULL;
}

static double log_sum_exp(const float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)x[i] - (double)mx);
    return (double)mx + log(sum);
}

int fb_seq_top_logprobs(const fb_session *s, int seq, int k, int32_t *ids, float *logprobs) {
    const float *l = fb_seq_logits(s, seq);
    if (!l || k <= 0 || !ids || !logprobs) return 0;
    if (k > s->V) k = s->V;
    const double lse = log_sum_exp(l, s->V);
    int n = 0;
    /* insertion into a sorted top-k: O(V·k) for the small k asked of it */
    for (int32_t t = 0; t < s->V; t++) {
        if (n == k && !(l[t] > l[ids[n - 1]])) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && l[t] > l[ids[j - 1]]) { ids[j] = ids[j - 1]; j--; }
        ids[j] = t;
    }
    for (int i = 0; i < n; i++) logprobs[i] = (float)((double)l[ids[i]] - lse);
    return n;
}

fb_status fb_seq_fork(fb_session *s, int seq, const fb_gen_params *params, int *child) {
    seq_slot *src = slot_of(s, seq);
    if (!src || !child) return fb_fail(FB_ERR_INVALID_ARG, "fb_seq_fork: bad argument");
    int c;
    FB_TRY(fb_seq_new(s, params ? params : &src->p, &c));
    seq_slot *q = &s->slots[c];
    src = &s->slots[seq];
    fb_status st = FB_OK;
    if (!params) {   /* the same random stream from here on */
        fb_sampler_free(q->sampler);
        q->sampler = NULL;
        st = fb_sampler_clone(&q->sampler, src->sampler);
    }
    for (int i = 0; st == FB_OK && i < src->n; i++) {
        if (!push_token(q, src->tokens[i])) st = fb_fail(FB_ERR_OOM, "fork: out of memory");
        const char *b;
        size_t len;   /* replay into the decoder so that held-back UTF-8 bytes match */
        if (st == FB_OK && fb_tokenizer_get_kind(s->llm->tok) != FB_TOKENIZER_LLAMA2C)
            (void)fb_token_decoder_push(q->dec, src->tokens[i], &b, &len);
    }
    if (st == FB_OK && !append_text(q, src->text ? src->text : "", src->text_len)) st = fb_fail(FB_ERR_OOM, "fork: out of memory");
    if (st != FB_OK) { fb_seq_free(s, c); return st; }
    q->queued = src->queued;
    q->base = src->base;
    q->n_generated = src->n_generated;
    q->inputs = src->inputs;
    q->gen_start = src->gen_start;
    q->prev = src->prev;
    q->finished = src->finished;
    q->has_logits = src->has_logits;
    memcpy(q->logits, src->logits, sizeof(float) * (size_t)s->V);
    st = fb_kv_fork(&s->eng.kv, seq, c);   /* shares the blocks; the first write copies the last one */
    if (st != FB_OK) { fb_seq_free(s, c); return st; }
    *child = c;
    return FB_OK;
}

/* Does a stop string end in the bytes streamed since offset `from`? Only
 * the new bytes and the len-1 before them are searched (each token costs
 * O(new bytes · stops), not O(text)), with memcmp: the text may hold NULs. */
static int stop_string_hit(const seq_slot *q, size_t from) {
    for (int i = 0; i < q->p.n_stops; i++) {
        const size_t len = strlen(q->stops[i]);
        if (len > q->text_len - q->gen_start) continue;
        size_t start = from >= len - 1 ? from - (len - 1) : 0;
        if (start < q->gen_start) start = q->gen_start;
        for (size_t p = start; p + len <= q->text_len; p++)
            if (!memcmp(q->text + p, q->stops[i], len)) return 1;
    }
    return 0;
}

static int reached_length(const seq_slot *q) {
    return (q->p.max_positions > 0 && q->n > q->p.max_positions) || (q->p.max_tokens > 0 && q->n_generated >= q->p.max_tokens);
}

void fb_seq_preempt(fb_session *s, int seq) {
    seq_slot *q = slot_of(s, seq);
    if (!q) return;
    fb_kv_reset(&s->eng.kv, seq);
    q->queued = q->base;   /* recomputed from its window's start by the next steps */
    q->has_logits = 0;
}

int fb_seq_kv_tokens(const fb_session *s, int seq) {
    const seq_slot *q = slot_of(s, seq);
    return q ? fb_kv_len(&s->eng.kv, seq) : 0;
}

fb_session_kv fb_session_kv_stats(const fb_session *s) {
    fb_session_kv z = {0};
    if (!s) return z;
    const fb_kv_stats k = fb_kv_get_stats(&s->eng.kv);
    return (fb_session_kv){.block_size = s->eng.kv.block_size, .blocks_total = k.blocks_total, .blocks_used = k.blocks_used,
                           .blocks_free = k.blocks_free, .blocks_cached = k.blocks_cached,
                           .block_bytes = fb_kv_cache_bytes(&s->eng.kv) / (size_t)k.blocks_total,
                           .prefix_queries = k.prefix_queries, .prefix_hit_blocks = k.prefix_hit_blocks,
                           .evictions = k.evictions};
}

/* Step 1 for one sequence: attach cached prefix blocks, then run chunks of
 * its queued input while the step's token budget lasts. */
static fb_status prefill(fb_session *s, int k, seq_slot *q, int *budget) {
    fb_engine *e = &s->eng;
    if (fb_kv_len(&e->kv, k) == 0) {
        /* Admission by free blocks: a sequence not yet holding the cache (new,
         * or preempted) starts only when its whole input and one more token
         * fit with a block to spare for every sequence already running, so a
         * preempted sequence waits instead of thrashing. */
        const fb_kv_stats ks = fb_kv_get_stats(&e->kv);
        int running = 0;   /* room for the next block of every sequence holding the cache: else the
                              next step is full again and the newest is preempted (a livelock) */
        for (int j = 0; j < s->max_seqs; j++) running += j != k && fb_kv_len(&e->kv, j) > 0;
        const int need = (q->n - q->base + 1 + e->kv.block_size - 1) / e->kv.block_size;
        if (need + running > ks.blocks_free + ks.blocks_cached) {
            if (ks.blocks_used == 0)
                return fb_fail(FB_ERR_KV_FULL, "sequence %d needs %d KV blocks of %d tokens, the whole pool holds %d", k, need,
                               e->kv.block_size, ks.blocks_total);
            return FB_OK;   /* waits for blocks */
        }
    }
    if (s->prefix_cache && fb_kv_len(&e->kv, k) == 0 && q->queued == q->base) {
        const int hit = fb_kv_prefix_attach(&e->kv, k, q->tokens + q->base, q->n - q->base);
        q->queued += hit;
        s->stats.prefix_hit_tokens += hit;
    }
    while (q->queued < q->n && *budget > 0) {
        const int left = q->n - q->queued, n = left < *budget ? left : *budget;
        for (int i = 0; i < n; i++) { s->row_seq[i] = k; s->want[i] = 0; }
        s->want[n - 1] = n == left;   /* logits only after the last input token */
        FB_TRY(fb_engine_step(e, n, s->row_seq, q->tokens + q->queued, s->want));
        q->queued += n;
        *budget -= n;
        s->stats.prefill_tokens += n;
        fb_kv_prefix_publish(&e->kv, k, q->tokens + q->base, q->queued - q->base);
        if (n == left) {
            memcpy(q->logits, e->logits, sizeof(float) * (size_t)s->V);
            q->has_logits = 1;
        }
    }
    return FB_OK;
}

static int ready(const seq_slot *q) { return q->alive && !q->finished && q->has_logits && q->queued == q->n; }

fb_status fb_session_step(fb_session *s, fb_seq_event *events, int cap, int *n_events) {
    if (!s || !events || !n_events) return fb_fail(FB_ERR_INVALID_ARG, "fb_session_step: NULL argument");
    if (cap < s->max_seqs) return fb_fail(FB_ERR_INVALID_ARG, "fb_session_step: %d event slots, the session has %d sequences", cap, s->max_seqs);
    *n_events = 0;
    fb_engine *e = &s->eng;
    const fb_tokenizer *tok = s->llm->tok;
    const int V = s->V, bos = fb_tokenizer_bos_id(tok), eos = fb_tokenizer_eos_id(tok);
    /* 1. prefill queued input, max_batch tokens in all */
    const double t0 = fb_now_sec();
    int budget = s->max_batch;
    fb_status st = FB_OK;
    for (int k = 0; k < s->max_seqs && st == FB_OK && budget > 0; k++) {
        seq_slot *q = &s->slots[k];
        if (q->alive && !q->finished && q->queued < q->n) {
            q->has_logits = 0;
            st = prefill(s, k, q, &budget);
        }
    }
    const double t1 = fb_now_sec();
    s->stats.prefill_seconds += t1 - t0;
    if (st != FB_OK) return st;
    /* 2. a block for every next position, before anything is sampled */
    for (int k = 0; k < s->max_seqs; k++)
        if (ready(&s->slots[k]) && fb_kv_len(&e->kv, k) < s->ctx) FB_TRY(fb_kv_reserve(&e->kv, k, fb_kv_len(&e->kv, k) + 1));
    /* 3. sample and apply the stop rules */
    int rows = 0;
    for (int k = 0; k < s->max_seqs; k++) {
        seq_slot *q = &s->slots[k];
        if (!ready(q)) continue;
        fb_seq_event *ev = &events[(*n_events)++];
        const size_t text0 = q->text_len;
        *ev = (fb_seq_event){.seq = k, .token = -1, .logprob = NAN, .text = "", .text_len = 0, .finish = FB_FINISH_NONE};
        if (reached_length(q)) ev->finish = FB_FINISH_LENGTH;
        else {
            memcpy(s->scratch, q->logits, sizeof(float) * (size_t)V);
            const int next = fb_sampler_sample(q->sampler, s->scratch, q->tokens, q->n);
            if (next < 0) return fb_fail(FB_ERR_NUMERIC, "sequence %d: sampling failed: %s", k, fb_last_error());
            ev->token = next;
            if (q->p.logprobs) ev->logprob = (float)((double)q->logits[next] - log_sum_exp(q->logits, V));
            if (q->p.stop_at_eos && (next == bos || next == eos)) ev->finish = FB_FINISH_EOS;
            else {
                if (!push_token(q, next) || !emit(tok, q, next)) return fb_fail(FB_ERR_OOM, "sequence %d: out of memory", k);
                q->queued = q->n;
                q->n_generated++;
                if (stop_string_hit(q, text0)) ev->finish = FB_FINISH_STOP;
                else if (reached_length(q)) ev->finish = FB_FINISH_LENGTH;
                else if (fb_kv_len(&e->kv, k) >= s->ctx) {
                    if (!q->p.slide) ev->finish = FB_FINISH_CONTEXT;
                    else {   /* keep the last half of the window, re-read at positions 0.. */
                        const int keep = s->ctx / 2;
                        fb_kv_reset(&e->kv, k);
                        q->base = q->n - keep;
                        FB_TRY(fb_engine_prefill(e, k, q->tokens + q->base, keep - 1, s->max_batch));
                    }
                }
            }
        }
        if (ev->finish != FB_FINISH_NONE) {
            q->finished = 1;
            if (!flush_text(tok, q)) return fb_fail(FB_ERR_OOM, "sequence %d: out of memory", k);
        } else {
            s->row_seq[rows] = k;
            s->row_tok[rows] = ev->token;
            rows++;
        }
        ev->text_len = q->text_len - text0;
        ev->text = q->text ? q->text + text0 : "";
    }
    /* 4. one engine call decodes every sampled token */
    if (rows) {
        FB_TRY(fb_engine_step(e, rows, s->row_seq, s->row_tok, NULL));
        for (int r = 0; r < rows; r++) {
            const int k = s->row_seq[r];
            seq_slot *q = &s->slots[k];
            memcpy(q->logits, e->logits + (size_t)r * V, sizeof(float) * (size_t)V);
            fb_kv_prefix_publish(&e->kv, k, q->tokens + q->base, q->n - q->base);
        }
        s->stats.decode_tokens += rows;
    }
    s->stats.decode_seconds += fb_now_sec() - t1;
    return FB_OK;
}
