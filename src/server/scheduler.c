/*
 * The engine thread of flashblock serve: continuous batching over one
 * fb_session.
 *
 * Every choice of a request (n > 1 gives several) is one sequence. The loop:
 *
 *   wait (condition variable) until some request is active
 *   reap       cancelled requests: free their sequences (a client that
 *              disconnected loses its KV within one step)
 *   make room  preempt the newest sequences while the running ones would
 *              not fit the KV budget after the next step
 *   admit      waiting choices, first come first served, while a sequence
 *              slot is free, their blocks fit, and this step's prompt
 *              tokens stay within --max-batch-tokens
 *   step       fb_session_step, unlocked: prefill of the admitted prompts and
 *              one decoded token for every running sequence, in one batch
 *   dispatch   events -> the requests' text and tokens, stop strings,
 *              finish reasons, metrics; wake the HTTP threads
 *
 * A preempted choice goes back to the front of the queue with the tokens it
 * generated; when admitted again it is recomputed (prompt + generated as
 * its input) and its sampler resumes where it was (srv_rng_advance), so
 * preemption does not change what a seeded request produces.
 *
 * KV accounting: the session's paged KV cache (blocks, prefix cache,
 * FB_ERR_KV_FULL); see "KV accounting" below.
 */
#include "server/srv.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The sampler's xorshift state after `draws` coins (infer/sampler.c: seed 0
 * is replaced by the same constant; every sampled token at temperature > 0
 * draws exactly one coin). Seeding a new sampler with it continues the
 * stream. */
uint64_t srv_rng_advance(uint64_t seed, long draws) {
    uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ull;
    for (long i = 0; i < draws; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
    }
    return s;
}

/* ---- requests -------------------------------------------------------------------- */

srv_req *srv_req_new(srv_kind kind) {
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->refs = 1;
    r->kind = kind;
    r->gp = fb_gen_params_default();
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &a);
    pthread_condattr_destroy(&a);
    return r;
}

static void req_free(srv_req *r) {
    for (int i = 0; i < FB_MAX_STOPS; i++) free(r->stops[i]);
    for (int i = 0; r->choices && i < r->n; i++) {
        free(r->choices[i].gen);
        free(r->choices[i].toks);
        srv_buf_free(&r->choices[i].text);
    }
    free(r->choices);
    free(r->prompt);
    pthread_cond_destroy(&r->cv);
    free(r);
}

void srv_req_release(srv *S, srv_req *r) {
    (void)S;
    if (r && --r->refs == 0) req_free(r);
}

/* ---- waiting queue ------------------------------------------------------------------ */

static void wait_push_back(srv *S, srv_choice *c) {
    c->next_wait = NULL;
    c->queued = 1;
    if (S->wait_tail) S->wait_tail->next_wait = c;
    else S->wait_head = c;
    S->wait_tail = c;
}

static void wait_push_front(srv *S, srv_choice *c) {
    c->queued = 1;
    c->next_wait = S->wait_head;
    S->wait_head = c;
    if (!S->wait_tail) S->wait_tail = c;
}

static void wait_remove(srv *S, srv_choice *c) {
    srv_choice **pp = &S->wait_head, *prev = NULL;
    while (*pp && *pp != c) { prev = *pp; pp = &(*pp)->next_wait; }
    if (!*pp) return;
    *pp = c->next_wait;
    if (S->wait_tail == c) S->wait_tail = prev;
    c->next_wait = NULL;
    c->queued = 0;
}

int srv_submit(srv *S, srv_req *r, char *msg, size_t cap) {
    pthread_mutex_lock(&S->mu);
    int st = 0;
    if (S->stopping || S->draining) { st = 503; snprintf(msg, cap, "the server is shutting down"); }
    else if (!S->ready) { st = 503; snprintf(msg, cap, "the model is still loading"); }
    else if (S->n_waiting_reqs >= S->opt.max_queue) {
        st = 429;
        snprintf(msg, cap, "the queue is full (%d requests waiting); retry later", S->n_waiting_reqs);
    }
    if (!st) {
        r->refs++;
        r->in_engine = 1;
        r->next_active = S->active;
        S->active = r;
        S->n_waiting_reqs++;
        for (int i = 0; i < r->n; i++) wait_push_back(S, &r->choices[i]);
        pthread_cond_signal(&S->work_cv);
    }
    pthread_mutex_unlock(&S->mu);
    return st;
}

void srv_cancel(srv *S, srv_req *r) {
    pthread_mutex_lock(&S->mu);
    if (!r->done && !r->cancelled) {
        r->cancelled = 1;
        pthread_cond_signal(&S->work_cv);
    }
    pthread_mutex_unlock(&S->mu);
}

/* ---- text commits ----------------------------------------------------------------------- */

/* Bytes at the end of the text that could start a stop string: held back
 * from streaming until the next token decides. */
static size_t stop_holdback(const srv_req *r, const srv_buf *t) {
    size_t hold = 0;
    for (int i = 0; i < r->n_stops; i++) {
        const size_t L = strlen(r->stops[i]);
        for (size_t k = L - 1 < t->len ? L - 1 : t->len; k > hold; k--)
            if (!memcmp(t->p + t->len - k, r->stops[i], k)) { hold = k; break; }
    }
    return hold;
}

/* The first stop string in text, searching from `from` (minus the longest
 * stop, for matches that straddle it); -1 if none. */
static long find_stop(const srv_req *r, const srv_buf *t, size_t from) {
    long best = -1;
    for (int i = 0; i < r->n_stops; i++) {
        const size_t L = strlen(r->stops[i]);
        if (L > t->len) continue;
        size_t p = from >= L - 1 ? from - (L - 1) : 0;
        for (; p + L <= t->len; p++)
            if (!memcmp(t->p + p, r->stops[i], L)) {
                if (best < 0 || (long)p < best) best = (long)p;
                break;
            }
    }
    return best;
}

static void commit(srv_choice *c) {
    const srv_req *r = c->req;
    c->committed = c->finish ? c->text.len : c->text.len - stop_holdback(r, &c->text);
    while (c->n_toks_committed < c->n_toks) {
        const srv_token *t = &c->toks[c->n_toks_committed];
        if (c->finish ? t->text_off < c->committed || (t->text_len == 0 && t->text_off <= c->committed)
                      : t->text_off + t->text_len <= c->committed)
            c->n_toks_committed++;
        else break;
    }
}

/* ---- sequences -------------------------------------------------------------------------- */

static void drop_seq(srv *S, int *h) {
    if (*h < 0) return;
    fb_seq_free(S->sess, *h);
    S->owner[*h] = NULL;
    *h = -1;
    S->n_running--;
}

static void finish_choice(srv *S, srv_choice *c, srv_finish fin) {
    if (c->finish) return;
    srv_req *r = c->req;
    drop_seq(S, &c->seq);
    drop_seq(S, &c->probe);
    if (c->queued) wait_remove(S, c);
    c->finish = fin;
    commit(c);
    if (fin == SRV_FIN_STOP) srv_metrics_add(&S->metrics, &S->metrics.finished_stop, 1);
    else if (fin == SRV_FIN_LENGTH) srv_metrics_add(&S->metrics, &S->metrics.finished_length, 1);
    if (++r->n_done == r->n) {
        r->done = 1;
        r->t_done = srv_now();
        if (fin == SRV_FIN_STOP || fin == SRV_FIN_LENGTH)
            srv_hist_observe(&S->metrics, &S->metrics.e2e, r->t_done - r->t_arrival);
    }
    pthread_cond_broadcast(&r->cv);
}

static void fail_request(srv *S, srv_req *r, int status, const char *msg) {
    if (r->done) return;
    r->error_status = status;
    snprintf(r->error_msg, sizeof r->error_msg, "%s", msg);
    for (int i = 0; i < r->n; i++) finish_choice(S, &r->choices[i], SRV_FIN_ERROR);
}

/* Start choice c in the session: its prompt plus what it generated before a
 * preemption. probe: a throw-away greedy sequence over the same input that
 * stops before decoding, so that the distribution of the first token is
 * readable (fb_session_step samples in the step that prefills). */
static int start_seq(srv *S, srv_choice *c, int probe) {
    srv_req *r = c->req;
    fb_gen_params p = r->gp;
    const int temp_draws = r->gp.temperature > 0.0f;
    p.seed = srv_rng_advance(c->seed, temp_draws ? c->n_gen : 0);
    p.max_tokens = r->max_tokens ? r->max_tokens - c->n_gen : 0;
    p.max_positions = 0;
    p.slide = 0;
    p.logprobs = r->logprobs;
    p.n_stops = r->n_stops;
    for (int i = 0; i < r->n_stops; i++) p.stops[i] = r->stops[i];
    if (probe) {
        p.temperature = 0.0f;
        p.max_tokens = 1;
        p.logprobs = 0;
        p.n_stops = 0;
    }
    int h = -1;
    fb_status st = fb_seq_new(S->sess, &p, &h);
    if (st == FB_OK) st = fb_seq_add_tokens(S->sess, h, r->prompt, r->n_prompt);
    if (st == FB_OK && c->n_gen) st = fb_seq_add_tokens(S->sess, h, c->gen, c->n_gen);
    if (st != FB_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot start the sequence: %s", fb_last_error());
        if (h >= 0) fb_seq_free(S->sess, h);
        fail_request(S, r, 500, msg);
        return -1;
    }
    S->owner[h] = c;
    S->n_running++;
    if (probe) c->probe = h;
    else c->seq = h;
    c->admit_order = ++S->admit_counter;
    r->prefilled_tokens += r->n_prompt + c->n_gen;
    return 0;
}

/* ======== KV accounting ========
 *
 * The library's paged KV cache (fb_session_kv_stats, FB_ERR_KV_FULL,
 * prefix_cache): the session holds the blocks, reuses
 * cached prompt blocks, and fails a step with FB_ERR_KV_FULL when a running
 * sequence has no block for its next position. A choice is admitted when
 * its input plus one token fits the free (or evictable cached) blocks with
 * a block left for every running sequence's next token; FB_ERR_KV_FULL is
 * answered by preempting the newest sequence and stepping again. Preemption
 * is fb_seq_free + requeue for recompute (srv_rng_advance resumes the random
 * stream), not fb_seq_preempt: the session readmits a preempted sequence as
 * soon as its input fits the free blocks, which leaves nothing for the
 * others' growth, and the next step is full again (a livelock when the
 * pool is tight; the session now keeps that room too, but the server's own
 * queue also decides who is admitted first).
 */
static long blocks_for(const srv *S, long tokens) { return (tokens + S->block_size - 1) / S->block_size; }

static int kv_can_admit(const srv *S, long tokens) {
    const fb_session_kv k = fb_session_kv_stats(S->sess);
    return blocks_for(S, tokens + 1) + S->n_running <= (long)k.blocks_free + k.blocks_cached;
}

static void kv_refresh_stats(srv *S) {
    const fb_session_kv k = fb_session_kv_stats(S->sess);
    S->kv.blocks_total = k.blocks_total;
    S->kv.blocks_used = k.blocks_used;
    S->kv.blocks_free = k.blocks_free;
    S->kv.blocks_cached = k.blocks_cached;
    S->kv.prefix_queries = k.prefix_queries;
    S->kv.prefix_hits = k.prefix_hit_blocks;
}

/* Preempt the newest sequence: free it and requeue its choice at the front
 * for recompute. 0 when nothing runs. */
static int preempt_newest(srv *S) {
    srv_choice *v = NULL;
    for (int h = 0; h < S->opt.parallel; h++)
        if (S->owner[h] && (!v || S->owner[h]->admit_order > v->admit_order)) v = S->owner[h];
    if (!v) return 0;
    drop_seq(S, &v->seq);
    drop_seq(S, &v->probe);
    v->n_next_top = 0;
    wait_push_front(S, v);
    srv_metrics_add(&S->metrics, &S->metrics.preemptions, 1);
    return 1;
}

/* Before a step: preempt while the running sequences would not fit after it
 * (one sequence always fits: the budget holds a whole context, server.c).
 * With the paged cache the session says so itself (FB_ERR_KV_FULL). */
static void kv_make_room(srv *S) {
    (void)S;
}

/* ---- the loop --------------------------------------------------------------------------- */

static void reap(srv *S) {
    for (srv_req **pp = &S->active; *pp;) {
        srv_req *r = *pp;
        if (r->cancelled && !r->done) {
            srv_metrics_add(&S->metrics, &S->metrics.cancelled, 1);
            for (int i = 0; i < r->n; i++) finish_choice(S, &r->choices[i], SRV_FIN_CANCELLED);
        }
        if (r->done) {
            int waiting = 1;   /* was any choice ever admitted? */
            for (int i = 0; i < r->n; i++) waiting &= r->choices[i].admit_order == 0;
            if (waiting) S->n_waiting_reqs--;
            *pp = r->next_active;
            r->in_engine = 0;
            srv_req_release(S, r);
        } else {
            pp = &r->next_active;
        }
    }
}

static void admit(srv *S) {
    while (S->wait_head && S->n_running < S->opt.parallel) {
        srv_choice *c = S->wait_head;
        srv_req *r = c->req;
        const long need = r->n_prompt + c->n_gen;
        if (!kv_can_admit(S, need)) break;
        /* the prompt tokens joining one step; a paged session itself takes
         * at most max_batch queued tokens per step (chunked prefill) */
        wait_remove(S, c);
        int first = 1;   /* the request's first admission */
        for (int i = 0; i < r->n; i++) first &= r->choices[i].admit_order == 0;
        if (start_seq(S, c, r->top_logprobs > 0) != 0) continue;
        if (first) {
            S->n_waiting_reqs--;
            srv_metrics_add(&S->metrics, &S->metrics.prompt_tokens, r->n_prompt);
        }
    }
}

/* A probe finished: keep the distribution of the first token, free it and
 * start the real sequence in its place. */
static void probe_done(srv *S, srv_choice *c) {
    srv_req *r = c->req;
    c->n_next_top = fb_seq_top_logprobs(S->sess, c->probe, r->top_logprobs, c->next_top_ids, c->next_top_lps);
    drop_seq(S, &c->probe);
    (void)start_seq(S, c, 0);
}

static void push_gen(srv_choice *c, int32_t id) {
    if (c->n_gen == c->cap_gen) {
        int nc = c->cap_gen ? 2 * c->cap_gen : 64;
        int32_t *p = realloc(c->gen, sizeof(int32_t) * (size_t)nc);
        if (!p) return;   /* checked by the caller through n_gen */
        c->gen = p;
        c->cap_gen = nc;
    }
    c->gen[c->n_gen++] = id;
}

static int push_tok(srv_choice *c, const srv_token *t) {
    if (c->n_toks == c->cap_toks) {
        int nc = c->cap_toks ? 2 * c->cap_toks : 32;
        srv_token *p = realloc(c->toks, sizeof(srv_token) * (size_t)nc);
        if (!p) return 0;
        c->toks = p;
        c->cap_toks = nc;
    }
    c->toks[c->n_toks++] = *t;
    return 1;
}

static void dispatch(srv *S, const fb_seq_event *ev, int n_ev) {
    const double now = srv_now();
    const int eos = fb_tokenizer_eos_id(S->tok), bos = fb_tokenizer_bos_id(S->tok);
    for (int i = 0; i < n_ev; i++) {
        const fb_seq_event *e = &ev[i];
        srv_choice *c = e->seq >= 0 && e->seq < S->opt.parallel ? S->owner[e->seq] : NULL;
        if (!c) continue;
        if (c->probe == e->seq) {
            if (e->finish != FB_FINISH_NONE) probe_done(S, c);
            continue;
        }
        srv_req *r = c->req;
        const size_t from = c->text.len;
        const int is_eos = e->finish == FB_FINISH_EOS && (e->token == eos || e->token == bos);
        if (e->token >= 0 && !is_eos) {
            const int before = c->n_gen;
            push_gen(c, e->token);
            if (c->n_gen == before) { fail_request(S, r, 500, "out of memory"); continue; }
            if (r->logprobs) {
                srv_token t = {.id = e->token, .logprob = e->logprob, .text_off = from, .text_len = e->text_len,
                               .n_top = c->n_next_top};
                memcpy(t.top_ids, c->next_top_ids, sizeof(int32_t) * (size_t)c->n_next_top);
                memcpy(t.top_lps, c->next_top_lps, sizeof(float) * (size_t)c->n_next_top);
                if (!push_tok(c, &t)) { fail_request(S, r, 500, "out of memory"); continue; }
            }
            c->n_next_top = 0;
            srv_metrics_add(&S->metrics, &S->metrics.generated_tokens, 1);
            if (r->t_first == 0.0) {
                r->t_first = now;
                srv_hist_observe(&S->metrics, &S->metrics.ttft, now - r->t_arrival);
            }
            if (c->t_last > 0.0) srv_hist_observe(&S->metrics, &S->metrics.itl, now - c->t_last);
            c->t_last = now;
        }
        srv_buf_put(&c->text, e->text, e->text_len);
        if (c->text.oom) { fail_request(S, r, 500, "out of memory"); continue; }
        srv_finish fin = SRV_FIN_NONE;
        switch (e->finish) {
        case FB_FINISH_NONE: break;
        case FB_FINISH_EOS: case FB_FINISH_STOP: fin = SRV_FIN_STOP; break;
        case FB_FINISH_LENGTH: case FB_FINISH_CONTEXT: fin = SRV_FIN_LENGTH; break;
        }
        /* stop strings over the whole generated text (the session sees only
         * what it generated since the last recompute) */
        const long cut = find_stop(r, &c->text, from);
        if (cut >= 0) {
            c->text.len = (size_t)cut;
            c->text.p[cut] = '\0';
            fin = SRV_FIN_STOP;
        }
        if (fin) finish_choice(S, c, fin);   /* wakes the HTTP thread */
        else {
            commit(c);
            if (r->stream) pthread_cond_broadcast(&r->cv);   /* a non-streamed reply waits for the end */
        }
    }
}

/* Top logprobs of every running sequence's next token: the session samples
 * it in the next step, from the logits it holds now. */
static void read_next_top(srv *S) {
    for (int h = 0; h < S->opt.parallel; h++) {
        srv_choice *c = S->owner[h];
        if (!c || c->seq != h || c->req->top_logprobs <= 0 || !fb_seq_logits(S->sess, h)) continue;
        c->n_next_top = fb_seq_top_logprobs(S->sess, h, c->req->top_logprobs, c->next_top_ids, c->next_top_lps);
    }
}

static void fail_all(srv *S, int status, const char *msg) {
    for (srv_req *r = S->active; r; r = r->next_active) fail_request(S, r, status, msg);
}

void *srv_engine_main(void *arg) {
    srv *S = arg;
    fb_seq_event *ev = malloc(sizeof *ev * (size_t)S->opt.parallel);
    pthread_mutex_lock(&S->mu);
    if (!ev) fail_all(S, 500, "out of memory");
    while (ev) {
        while (!S->stopping && !S->active) pthread_cond_wait(&S->work_cv, &S->mu);
        if (S->stopping) break;
        reap(S);
        kv_make_room(S);
        admit(S);
        kv_refresh_stats(S);
        if (S->n_running == 0) continue;
        pthread_mutex_unlock(&S->mu);
        int n_ev = 0;
        const fb_status st = fb_session_step(S->sess, ev, S->opt.parallel, &n_ev);
        char msg[256];
        if (st != FB_OK) snprintf(msg, sizeof msg, "engine step failed: %s", fb_last_error());
        pthread_mutex_lock(&S->mu);
        /* nothing was sampled: free the newest sequence and step again */
        if (st == FB_ERR_KV_FULL && S->n_running > 1 && preempt_newest(S)) continue;
        if (st != FB_OK) {
            fprintf(stderr, "flashblock serve: %s\n", msg);
            fail_all(S, 500, msg);
            continue;
        }
        dispatch(S, ev, n_ev);
        read_next_top(S);
        kv_refresh_stats(S);
    }
    /* shutting down: whatever is left ends with 503 */
    fail_all(S, 503, "the server is shutting down");
    reap(S);
    pthread_mutex_unlock(&S->mu);
    free(ev);
    return NULL;
}
