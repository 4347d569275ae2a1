/*
 * Internals of flashblock serve shared by its files:
 *
 *   server.c     lifecycle: listening socket, signals, the engine thread
 *   scheduler.c  the engine thread: admission, steps, events, preemption
 *   http.c       libmicrohttpd handlers: routes, auth, bodies, streaming
 *   api.c        OpenAI JSON: request validation and response shapes
 *   chat_template.c, metrics.c, page.c, buf.c
 *
 * Locking: one mutex (srv.mu) guards the queue, every request and choice
 * and the engine gauges. The engine thread calls the fb_session only while
 * holding nothing but its own state: fb_session_step runs unlocked, the
 * cheap fb_seq_* calls (new, add, free, top_logprobs) under mu. HTTP threads
 * never call the session. Requests are reference-counted (HTTP side, engine
 * side); the last release frees them.
 */
#ifndef FB_SERVER_SRV_H
#define FB_SERVER_SRV_H
#include "flashblock_infer.h"
#include "server/chat_template.h"
#include "server/metrics.h"
#include "server/server.h"
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable byte buffer (buf.c) ------------------------------------------ */
typedef struct srv_buf {
    char *p;
    size_t len, cap;
    int oom;                      /* an append failed; the content is incomplete */
} srv_buf;
void srv_buf_put(srv_buf *b, const void *data, size_t n);
void srv_buf_puts(srv_buf *b, const char *s);
void srv_buf_printf(srv_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void srv_buf_free(srv_buf *b);

/* Bytes of s[0..n) that end on a whole UTF-8 character: an incomplete
 * multi-byte sequence at the end is held back (invalid bytes are not). */
size_t srv_utf8_complete(const char *s, size_t n);
/* Offset of the first byte of s[0..n) that is not valid UTF-8 (overlong
 * forms, surrogates and code points above U+10FFFF included), or -1. */
long srv_utf8_invalid_at(const char *s, size_t n);
/* s[0..n) as valid UTF-8 into out: each invalid byte becomes U+FFFD. */
void srv_utf8_sanitize(srv_buf *out, const char *s, size_t n);

/* ---- requests ------------------------------------------------------------------ */

#define SRV_MAX_TOP 20            /* top_logprobs / logprobs limit */
#define SRV_MAX_N 16              /* choices per request */

typedef enum srv_kind { SRV_COMPLETION, SRV_CHAT } srv_kind;
typedef enum srv_finish { SRV_FIN_NONE = 0, SRV_FIN_STOP, SRV_FIN_LENGTH, SRV_FIN_CANCELLED, SRV_FIN_ERROR } srv_finish;

typedef struct srv_token {        /* one generated token, when logprobs were asked */
    int32_t id;
    float logprob;
    size_t text_off, text_len;    /* its bytes in the choice's text */
    int n_top;
    int32_t top_ids[SRV_MAX_TOP];
    float top_lps[SRV_MAX_TOP];
} srv_token;

typedef struct srv_req srv_req;

typedef struct srv_choice {
    srv_req *req;
    int index;
    uint64_t seed;                /* this choice's seed (request seed + index) */
    /* engine side */
    int seq;                      /* session handle while running, else -1 */
    int probe;                    /* handle of the top-logprobs probe, else -1 */
    int queued;                   /* 1 while in the waiting queue */
    long admit_order;             /* larger = admitted later (preempted first) */
    int32_t *gen;                 /* generated ids: the input of a recompute */
    int n_gen, cap_gen;
    int n_next_top;               /* top logprobs of the next token, read after the last step */
    int32_t next_top_ids[SRV_MAX_TOP];
    float next_top_lps[SRV_MAX_TOP];
    double t_last;                /* time of the last token (inter-token latency) */
    /* shared with the HTTP side (under mu) */
    srv_buf text;                 /* generated text, trimmed at a stop string */
    size_t committed;             /* text[0..committed) is final: no stop string can start in it */
    srv_token *toks;              /* [n_gen] when logprobs */
    int n_toks, cap_toks, n_toks_committed;
    srv_finish finish;
    struct srv_choice *next_wait; /* waiting queue link */
} srv_choice;

struct srv_req {
    int refs;
    srv_kind kind;
    int stream, include_usage;
    char id[48];
    long created;
    fb_gen_params gp;             /* base parameters; seed per choice */
    char *stops[FB_MAX_STOPS];    /* owned */
    int n_stops;
    int logprobs;                 /* 1: a logprob for every token */
    int top_logprobs;             /* alternatives per token (0..SRV_MAX_TOP) */
    int max_tokens;               /* 0: until the context is full */
    int32_t *prompt;              /* tokens, BOS included where the model wants it */
    int n_prompt;
    int n;                        /* choices */
    srv_choice *choices;
    int n_done;                   /* choices finished */
    int done;                     /* every choice finished (or the request failed) */
    int cancelled;                /* the client went away */
    int in_engine;                /* the engine holds a reference */
    int error_status;             /* != 0: failed with this HTTP status */
    char error_msg[256];
    double t_arrival, t_first, t_done;
    long prefilled_tokens;        /* prompt tokens prefilled (recomputes included) */
    pthread_cond_t cv;            /* signalled when text is committed or the request ends */
    srv_req *next_active;         /* engine's list of requests it holds */
};

/* ---- the server ------------------------------------------------------------------ */

typedef struct srv_kv_stats {     /* /metrics; see scheduler.c "KV accounting" */
    long blocks_total, blocks_used, blocks_free, blocks_cached;
    long prefix_queries, prefix_hits;
} srv_kv_stats;

typedef struct srv {
    fb_server_options opt;
    char model_id[256];
    pthread_mutex_t mu;
    pthread_cond_t work_cv;       /* engine waits here for work */
    int ready;                    /* model loaded */
    int stopping;                 /* the engine ends what is left (503) and exits */
    int draining;                 /* SIGTERM seen: no new requests, the running ones finish */
    int open_replies;             /* completion requests submitted whose reply is not sent yet (http.c) */
    int load_failed;
    /* set once when ready, read-only afterwards */
    fb_llm *llm;
    fb_session *sess;
    const fb_tokenizer *tok;
    int ctx, vocab;
    srv_chat_template tmpl;
    long kv_blocks_total;         /* KV budget in blocks */
    int block_size;
    /* engine state (under mu) */
    srv_choice *wait_head, *wait_tail;
    int n_waiting_reqs;           /* requests with a choice in the queue, not yet admitted */
    srv_req *active;              /* requests the engine holds */
    srv_choice **owner;           /* [parallel]: session handle -> choice (probe or real) */
    long admit_counter;
    int n_running;                /* sequences in the session (probes included) */
    srv_kv_stats kv;              /* refreshed after every step */
    srv_metrics metrics;
    uint64_t id_counter;
    pthread_t engine;
    pthread_t main_thread;
    /* read-timeout watchdog (http.c): connections still reading a request */
    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;
    struct srv_watch *watch_head;
    int watch_stop, watch_started;
    pthread_t watchdog;
} srv;

/* scheduler.c */
void *srv_engine_main(void *arg);
/* Hand a validated request to the engine (takes a reference). Returns 0, or
 * the HTTP status to answer with (429 queue full, 503 not ready / stopping)
 * and a message in msg. */
int  srv_submit(srv *S, srv_req *r, char *msg, size_t msg_cap);
/* The client went away: the engine frees its sequences within one step. */
void srv_cancel(srv *S, srv_req *r);
void srv_req_release(srv *S, srv_req *r);   /* under mu */
srv_req *srv_req_new(srv_kind kind);
uint64_t srv_rng_advance(uint64_t seed, long draws);

/* api.c: request bodies -> srv_req; srv_req -> JSON. Parsers return 0 or an
 * HTTP status with an OpenAI error body in err. */
int  srv_parse_completion(srv *S, const char *body, size_t len, srv_kind kind, srv_req **out, srv_buf *err);
void srv_error_json(srv_buf *out, int status, const char *type, const char *code, const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
const char *srv_error_type(int status);
void srv_response_json(srv *S, srv_req *r, srv_buf *out);   /* non-streamed, after done */
int  srv_tokenize_json(srv *S, const char *body, size_t len, srv_buf *out);
int  srv_detokenize_json(srv *S, const char *body, size_t len, srv_buf *out);
void srv_models_json(srv *S, srv_buf *out, const char *one);  /* one: NULL = the list */

/* Streaming: per-choice cursors of what has been sent. */
typedef struct srv_stream {
    size_t sent_text[SRV_MAX_N];
    int sent_toks[SRV_MAX_N];
    int role_sent[SRV_MAX_N];
    int finish_sent[SRV_MAX_N];
    int finished;                 /* [DONE] written */
} srv_stream;
/* Append the SSE events for what the engine committed since the last call
 * (under mu). Returns 1 when something was written. */
int  srv_stream_events(srv *S, srv_req *r, srv_stream *st, srv_buf *out);

/* page.c */
extern const char srv_page_html[];
extern const size_t srv_page_html_len;

double srv_now(void);
#endif
