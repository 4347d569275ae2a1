/*
 * flashblock serve: an OpenAI-compatible HTTP server over the inference API
 * (include/flashblock_infer.h). See docs/SERVER.md.
 *
 * Threads: libmicrohttpd runs one thread per connection; those threads only
 * parse requests, tokenize, enqueue and stream. One engine thread owns the
 * fb_session and runs the steps (continuous batching). They meet under one
 * mutex with condition variables; nothing spins, an idle server sleeps.
 */
#ifndef FB_SERVER_SERVER_H
#define FB_SERVER_SERVER_H
#include <stddef.h>

typedef struct fb_server_options {
    const char *model_path;
    const char *tokenizer;        /* NULL: the model's own */
    const char *host;             /* default 127.0.0.1 */
    int port;                     /* 0: any free port (printed on stderr) */
    int parallel;                 /* sequences decoded together (session max_seqs) */
    int ctx;                      /* tokens per sequence; 0: the model's */
    double kv_mem_mib;            /* KV budget in MiB; 0: parallel x ctx tokens */
    int kv_block_size;            /* tokens per KV block (accounting unit), default 16 */
    int max_batch_tokens;         /* prompt tokens admitted per engine step */
    int q8;                       /* Q8_0 weights */
    int threads;                  /* 0: all cores */
    const char *api_key;          /* NULL: no authentication */
    const char *chat_template;    /* NULL: the GGUF's when known, else chatml */
    const char *alias;            /* model id in the API; NULL: the file's base name */
    int max_queue;                /* waiting requests before 429 */
    size_t max_body;              /* request body limit in bytes (413 beyond) */
    int quiet;                    /* 1: no access log */
    double grace_s;               /* SIGTERM: seconds running requests may take to finish (default 10) */
    double read_timeout_s;        /* a request's headers and body must arrive within this (408 / closed) */
} fb_server_options;

fb_server_options fb_server_options_default(void);

/* Serve until SIGINT or SIGTERM. The first signal stops admission (new
 * requests get 503, /health 503) and lets the running requests finish for
 * up to grace_s seconds; what is left then, or at a second signal, ends
 * with 503. Returns the process exit code: 0 after a signal, 1 when the
 * socket cannot be bound or the model cannot be loaded (one line on
 * stderr). */
int fb_server_run(const fb_server_options *opt);
#endif
