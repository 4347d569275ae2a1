/*
 * HTTP on libmicrohttpd, one thread per connection. A handler parses the
 * body, tokenizes, hands the request to the engine (srv_submit) and then
 * either waits for it (non-streamed: the whole JSON at the end) or returns
 * a callback response whose reader blocks on the request's condition
 * variable and writes Server-Sent Events as the engine commits text.
 *
 * Waiting is a timed wait on the condition variable (100 ms): on each
 * timeout the thread looks at its socket, and a client that went away
 * cancels the request (the engine frees its sequences within one step).
 * Nothing is polled while no request is in flight.
 *
 * Slow clients: a watchdog thread knows every connection that is reading a
 * request (from accept, or from the end of its previous reply on a kept-
 * alive connection, until the request is complete). One that takes longer
 * than --read-timeout -- a client trickling its headers or body a byte a
 * second, or an idle kept-alive connection -- gets a 408 written on its
 * socket and the socket shut down; libmicrohttpd then closes it. The
 * watchdog sleeps on a condition variable until the earliest deadline, and
 * without reading connections it sleeps until one arrives.
 */
#include "server/http.h"
#include "server/srv.h"
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifndef POLLRDHUP
#define POLLRDHUP 0x2000   /* Linux: the peer shut down its writing half (needs _GNU_SOURCE) */
#endif

typedef enum route {
    R_NONE = 0, R_PAGE, R_HEALTH, R_MODELS, R_MODEL, R_METRICS, R_COMPLETIONS, R_CHAT, R_TOKENIZE, R_DETOKENIZE
} route;

typedef struct conn {
    srv *S;
    struct MHD_Connection *con;
    int refs;                    /* the request (until completed) + a streaming reader */
    route rt;
    int post;
    char method[16], url[160];
    srv_buf body;
    int too_large;
    int awaiting_body;           /* a POST whose body is being read */
    int status;
    double t0;
    srv_req *req;
    int fd;
    /* streaming */
    srv_stream st;
    srv_buf out;
    size_t out_pos;
} conn;

static route route_of(const char *url, int *post) {
    static const struct { const char *path; route r; int post; } t[] = {
        {"/", R_PAGE, 0}, {"/index.html", R_PAGE, 0}, {"/health", R_HEALTH, 0}, {"/v1/health", R_HEALTH, 0},
        {"/v1/models", R_MODELS, 0}, {"/models", R_MODELS, 0}, {"/metrics", R_METRICS, 0},
        {"/v1/completions", R_COMPLETIONS, 1}, {"/completions", R_COMPLETIONS, 1},
        {"/v1/chat/completions", R_CHAT, 1}, {"/chat/completions", R_CHAT, 1},
        {"/tokenize", R_TOKENIZE, 1}, {"/v1/tokenize", R_TOKENIZE, 1},
        {"/detokenize", R_DETOKENIZE, 1}, {"/v1/detokenize", R_DETOKENIZE, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(url, t[i].path)) { *post = t[i].post; return t[i].r; }
    if (!strncmp(url, "/v1/models/", 11) && url[11]) { *post = 0; return R_MODEL; }
    return R_NONE;
}

static void conn_release(srv *S, conn *c) {
    pthread_mutex_lock(&S->mu);
    const int last = --c->refs == 0;
    if (last && c->req) srv_req_release(S, c->req);
    pthread_mutex_unlock(&S->mu);
    if (!last) return;
    srv_buf_free(&c->body);
    srv_buf_free(&c->out);
    free(c);
}

/* Has the peer closed its end? (A pipelined next request is not a close.) */
static int client_gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return 1;
    char b;
    if (p.revents & POLLIN) {
        ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return 0;
}

static void deadline_in(struct timespec *ts, long ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

static enum MHD_Result respond(conn *c, int status, const char *ctype, srv_buf *body, const char *retry_after) {
    srv *S = c->S;
    struct MHD_Response *resp;
    if (body && body->len && !body->oom) {
        resp = MHD_create_response_from_buffer(body->len, body->p, MHD_RESPMEM_MUST_FREE);
        if (resp) memset(body, 0, sizeof *body);   /* MHD owns the bytes now */
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    if (retry_after) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    if (status == 405) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, c->post ? "POST, OPTIONS" : "GET, HEAD, OPTIONS");
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    const enum MHD_Result ret = MHD_queue_response(c->con, (unsigned)status, resp);
    MHD_destroy_response(resp);
    c->status = status;
    srv_metrics_status(&S->metrics, status);
    return ret;
}

static enum MHD_Result respond_json(conn *c, int status, srv_buf *body) {
    const char *retry = status == 429 ? "1" : status == 503 ? "5" : NULL;
    return respond(c, status, "application/json", body, retry);
}

static enum MHD_Result respond_error(conn *c, int status, const char *code, const char *fmt, const char *arg) {
    srv_buf b = {0};
    srv_error_json(&b, status, NULL, code, NULL, fmt, arg ? arg : "");
    const enum MHD_Result r = respond_json(c, status, &b);
    srv_buf_free(&b);
    return r;
}

static int is_ready(srv *S) {
    pthread_mutex_lock(&S->mu);
    const int r = S->ready && !S->stopping && !S->draining;
    pthread_mutex_unlock(&S->mu);
    return r;
}

/* Constant-time comparison of the bearer token with --api-key. */
static int authorized(srv *S, struct MHD_Connection *con) {
    if (!S->opt.api_key) return 1;
    const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    const char *k = S->opt.api_key;
    const size_t hl = strlen(h), kl = strlen(k);
    unsigned char diff = hl != kl;
    for (size_t i = 0; i < hl; i++) diff |= (unsigned char)(h[i] ^ k[i % (kl ? kl : 1)]);
    return diff == 0;
}


/* ---- read-timeout watchdog ------------------------------------------------------------------ */

/* A request is being read (on a new connection, or a body): 408 when late.
 * A kept-alive connection is waiting for its next request: closed when late,
 * without a reply (a 408 there would be taken as the reply to the client's
 * next request). */
enum { WATCH_NONE = 0, WATCH_REQUEST = 1, WATCH_IDLE = 2 };

typedef struct srv_watch {
    int fd;
    int reading;                 /* WATCH_*: what the connection is waiting for */
    double since;
    struct srv_watch *prev, *next;
} srv_watch;

static void watch_reading(srv *S, struct MHD_Connection *con, int reading) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    srv_watch *w = ci ? ci->socket_context : NULL;
    if (!w) return;
    pthread_mutex_lock(&S->watch_mu);
    w->reading = reading;
    w->since = srv_now();
    if (reading) pthread_cond_signal(&S->watch_cv);
    pthread_mutex_unlock(&S->watch_mu);
}

static void on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    srv *S = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        srv_watch *w = calloc(1, sizeof *w);
        if (!w) return;   /* unwatched: only the idle timeout applies */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        w->fd = ci ? ci->connect_fd : -1;
        w->reading = WATCH_REQUEST;
        w->since = srv_now();
        pthread_mutex_lock(&S->watch_mu);
        w->next = S->watch_head;
        if (w->next) w->next->prev = w;
        S->watch_head = w;
        pthread_cond_signal(&S->watch_cv);
        pthread_mutex_unlock(&S->watch_mu);
        *socket_context = w;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        /* libmicrohttpd notifies before it closes the socket, so the
         * watchdog never touches a descriptor that was reused */
        srv_watch *w = *socket_context;
        pthread_mutex_lock(&S->watch_mu);
        if (w->prev) w->prev->next = w->next;
        else S->watch_head = w->next;
        if (w->next) w->next->prev = w->prev;
        pthread_mutex_unlock(&S->watch_mu);
        free(w);
        *socket_context = NULL;
    }
}

static void *watchdog_main(void *arg) {
    srv *S = arg;
#define TIMEOUT_BODY "{\"error\":{\"message\":\"the request did not arrive within --read-timeout\",\"type\":\"invalid_request_error\",\"code\":\"request_timeout\"}}"
    static const char reply[] = "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                "Content-Length: 128\r\n\r\n" TIMEOUT_BODY;
    _Static_assert(sizeof TIMEOUT_BODY - 1 == 128, "Content-Length of the 408 reply");
#undef TIMEOUT_BODY
    pthread_mutex_lock(&S->watch_mu);
    while (!S->watch_stop) {
        const double now = srv_now(), limit = S->opt.read_timeout_s;
        double next = 0;
        for (srv_watch *w = S->watch_head; w; w = w->next) {
            if (!w->reading || w->fd < 0) continue;
            const double due = w->since + limit;
            if (due <= now) {
                if (w->reading == WATCH_REQUEST && send(w->fd, reply, sizeof reply - 1, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
                    srv_metrics_status(&S->metrics, 408);
                shutdown(w->fd, SHUT_RDWR);
                w->reading = WATCH_NONE;
            } else if (!next || due < next) {
                next = due;
            }
        }
        if (!next) {
            pthread_cond_wait(&S->watch_cv, &S->watch_mu);
        } else {
            struct timespec ts;
            deadline_in(&ts, (long)((next - now) * 1000) + 1);
            pthread_cond_timedwait(&S->watch_cv, &S->watch_mu, &ts);
        }
    }
    pthread_mutex_unlock(&S->watch_mu);
    return NULL;
}

/* ---- streaming ------------------------------------------------------------------------------ */

/* Under S->mu: wait up to 100 ms for the engine to signal r. Returns 1 when
 * the client went away meanwhile: the request is cancelled and mu is
 * released; 0 with mu still held otherwise. */
static int wait_or_hangup(conn *c, srv_req *r) {
    srv *S = c->S;
    struct timespec ts;
    deadline_in(&ts, 100);
    pthread_cond_timedwait(&r->cv, &S->mu, &ts);
    if (r->done || !client_gone(c->fd)) return 0;
    pthread_mutex_unlock(&S->mu);
    srv_cancel(S, r);
    return 1;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    conn *c = cls;
    srv *S = c->S;
    srv_req *r = c->req;
    if (c->out_pos == c->out.len) {
        if (c->st.finished) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&S->mu);
        c->out.len = c->out_pos = 0;
        while (!srv_stream_events(S, r, &c->st, &c->out))
            if (wait_or_hangup(c, r)) return MHD_CONTENT_READER_END_WITH_ERROR;
        pthread_mutex_unlock(&S->mu);
        if (c->out.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
        MHD_set_connection_option(c->con, MHD_CONNECTION_OPTION_TIMEOUT, 120u);   /* restart the idle clock */
    }
    size_t n = c->out.len - c->out_pos;
    if (n > max) n = max;
    memcpy(buf, c->out.p + c->out_pos, n);
    c->out_pos += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    conn *c = cls;
    conn_release(c->S, c);
}

/* ---- handlers ------------------------------------------------------------------------------------ */

static enum MHD_Result do_completion(conn *c, srv_kind kind) {
    srv *S = c->S;
    srv_buf err = {0};
    srv_req *r = NULL;
    int st = srv_parse_completion(S, c->body.p ? c->body.p : "", c->body.len, kind, &r, &err);
    if (st) {
        enum MHD_Result ret = respond_json(c, st, &err);
        srv_buf_free(&err);
        return ret;
    }
    char msg[256];
    st = srv_submit(S, r, msg, sizeof msg);
    if (st) {
        srv_req_release(S, r);   /* not shared yet */
        return respond_error(c, st, st == 429 ? "queue_full" : "unavailable", "%s", msg);
    }
    pthread_mutex_lock(&S->mu);
    c->req = r;   /* our reference, released with the connection */
    S->open_replies++;
    pthread_mutex_unlock(&S->mu);
    if (r->stream) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, c, stream_free);
        if (!resp) { srv_cancel(S, r); return MHD_NO; }
        pthread_mutex_lock(&S->mu);
        c->refs++;
        pthread_mutex_unlock(&S->mu);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
        const enum MHD_Result ret = MHD_queue_response(c->con, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        c->status = 200;
        srv_metrics_status(&S->metrics, 200);
        return ret;
    }
    pthread_mutex_lock(&S->mu);
    while (!r->done)
        if (wait_or_hangup(c, r)) {
            c->status = 499;   /* client closed the request (logged only) */
            return MHD_NO;
        }
    pthread_mutex_unlock(&S->mu);
    MHD_set_connection_option(c->con, MHD_CONNECTION_OPTION_TIMEOUT, 120u);
    srv_buf out = {0};
    if (r->error_status) {
        srv_error_json(&out, r->error_status, NULL, NULL, NULL, "%s", r->error_msg);
        st = r->error_status;
    } else {
        srv_response_json(S, r, &out);
        st = 200;
    }
    enum MHD_Result ret = respond_json(c, st, &out);
    srv_buf_free(&out);
    return ret;
}

static enum MHD_Result do_get(conn *c) {
    srv *S = c->S;
    srv_buf b = {0};
    enum MHD_Result ret;
    switch (c->rt) {
    case R_PAGE: {
        struct MHD_Response *resp = MHD_create_response_from_buffer(srv_page_html_len, (void *)srv_page_html, MHD_RESPMEM_PERSISTENT);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
        MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
        ret = MHD_queue_response(c->con, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        c->status = 200;
        srv_metrics_status(&S->metrics, 200);
        return ret;
    }
    case R_HEALTH:
        if (!is_ready(S)) {
            pthread_mutex_lock(&S->mu);
            const int stopping = S->stopping || S->draining;
            pthread_mutex_unlock(&S->mu);
            return respond_error(c, 503, "unavailable", "%s", stopping ? "the server is shutting down" : "loading the model");
        }
        srv_buf_puts(&b, "{\"status\":\"ok\"}");
        ret = respond_json(c, 200, &b);
        break;
    case R_MODELS:
    case R_MODEL:
        if (!is_ready(S)) return respond_error(c, 503, "unavailable", "%s", "the model is still loading");
        if (c->rt == R_MODEL && strcmp(c->url + 11, S->model_id))
            return respond_error(c, 404, "model_not_found", "the model '%s' does not exist", c->url + 11);
        srv_models_json(S, &b, c->rt == R_MODEL ? S->model_id : NULL);
        ret = respond_json(c, 200, &b);
        break;
    case R_METRICS: {
        srv_gauges g = {0};
        pthread_mutex_lock(&S->mu);
        g.ready = S->ready;
        g.running_seqs = S->n_running;
        for (const srv_choice *w = S->wait_head; w; w = w->next_wait) g.waiting_seqs++;
        g.waiting_requests = S->n_waiting_reqs;
        g.parallel = S->opt.parallel;
        g.kv_total = S->kv.blocks_total;
        g.kv_used = S->kv.blocks_used;
        g.kv_free = S->kv.blocks_free;
        g.kv_cached = S->kv.blocks_cached;
        g.prefix_queries = S->kv.prefix_queries;
        g.prefix_hits = S->kv.prefix_hits;
        pthread_mutex_unlock(&S->mu);
        srv_metrics_render(&S->metrics, &g, &b);
        ret = respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", &b, NULL);
        break;
    }
    default:
        ret = respond_error(c, 404, "not_found", "no route %s", c->url);
    }
    srv_buf_free(&b);
    return ret;
}

static enum MHD_Result do_post(conn *c) {
    srv *S = c->S;
    if (c->too_large) {
        char lim[32];
        snprintf(lim, sizeof lim, "%zu", S->opt.max_body);
        return respond_error(c, 413, "request_too_large", "the request body is larger than %s bytes", lim);
    }
    if (!is_ready(S)) return respond_error(c, 503, "unavailable", "%s", "the model is still loading");
    srv_buf b = {0};
    int st;
    switch (c->rt) {
    case R_COMPLETIONS: return do_completion(c, SRV_COMPLETION);
    case R_CHAT: return do_completion(c, SRV_CHAT);
    case R_TOKENIZE: st = srv_tokenize_json(S, c->body.p ? c->body.p : "", c->body.len, &b); break;
    case R_DETOKENIZE: st = srv_detokenize_json(S, c->body.p ? c->body.p : "", c->body.len, &b); break;
    default: return respond_error(c, 404, "not_found", "no route %s", c->url);
    }
    enum MHD_Result ret = respond_json(c, st ? st : 200, &b);
    srv_buf_free(&b);
    return ret;
}

static enum MHD_Result on_headers(srv *S, struct MHD_Connection *con, const char *url, const char *method, void **req_cls);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **req_cls) {
    (void)version;
    srv *S = cls;
    conn *c = *req_cls;
    if (!c) {   /* headers are in; the body (if any) comes next */
        const enum MHD_Result ret = on_headers(S, con, url, method, req_cls);
        c = *req_cls;
        if (!c || !c->awaiting_body) watch_reading(S, con, WATCH_NONE);   /* answered: no longer reading */
        return ret;
    }
    if (*upload_size) {
        if (c->body.len + *upload_size > S->opt.max_body) c->too_large = 1;
        if (!c->too_large) srv_buf_put(&c->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->status) return MHD_YES;   /* answered already */
    watch_reading(S, con, WATCH_NONE);
    return do_post(c);
}

/* The first call for a request: route, method, authorisation; GETs are
 * answered here, POSTs wait for their body (c->awaiting_body). */
static enum MHD_Result on_headers(srv *S, struct MHD_Connection *con, const char *url, const char *method, void **req_cls) {
    conn *c;
    if (!(c = calloc(1, sizeof *c))) return MHD_NO;
    c->S = S;
    c->con = con;
    c->refs = 1;
    c->t0 = srv_now();
    c->fd = -1;
    snprintf(c->method, sizeof c->method, "%s", method);
    snprintf(c->url, sizeof c->url, "%s", url);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) c->fd = ci->connect_fd;
    *req_cls = c;
    int post = 0;
    c->rt = route_of(url, &post);
    c->post = post;
    const int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(method, "OPTIONS")) {   /* CORS preflight */
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        enum MHD_Result ret = MHD_queue_response(con, MHD_HTTP_NO_CONTENT, resp);
        MHD_destroy_response(resp);
        c->status = 204;
        srv_metrics_status(&S->metrics, 204);
        return ret;
    }
    if (c->rt == R_NONE) return respond_error(c, 404, "not_found", "no route %s", url);
    if ((post && strcmp(method, "POST")) || (!post && !is_get))
        return respond_error(c, 405, "method_not_allowed", "%s is not allowed here", method);
    if (c->rt != R_PAGE && c->rt != R_HEALTH && !authorized(S, con))
        return respond_error(c, 401, "invalid_api_key", "%s", "missing or wrong API key (Authorization: Bearer KEY)");
    if (!post) return do_get(c);
    const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    /* Too large: read and drop the body, then answer 413 (a reply sent
     * while the client still writes is often lost to its broken pipe).
     * Beyond 8x the limit the reply goes out at once and the connection
     * closes; --read-timeout bounds how long any body may take. */
    const unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
    if (len > S->opt.max_body) c->too_large = 1;
    if (len / 8 > S->opt.max_body) return do_post(c);
    c->awaiting_body = 1;
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **req_cls, enum MHD_RequestTerminationCode toe) {
    srv *S = cls;
    conn *c = *req_cls;
    watch_reading(S, con, WATCH_IDLE);   /* a kept-alive connection waits for its next request */
    if (!c) return;
    *req_cls = NULL;
    if (c->req && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) srv_cancel(S, c->req);
    if (c->req) {   /* the reply has gone out (or the connection failed) */
        pthread_mutex_lock(&S->mu);
        S->open_replies--;
        pthread_mutex_unlock(&S->mu);
    }
    if (!S->opt.quiet) {
        char extra[128] = "";
        if (c->req) {
            pthread_mutex_lock(&S->mu);
            long gen = 0;
            for (int i = 0; i < c->req->n; i++) gen += c->req->choices[i].n_gen;
            snprintf(extra, sizeof extra, " prompt=%d completion=%ld%s%s", c->req->n_prompt, gen, c->req->stream ? " stream" : "",
                     c->req->cancelled ? " cancelled" : "");
            pthread_mutex_unlock(&S->mu);
        }
        fprintf(stderr, "flashblock serve: %s %s %d %.3f s%s%s\n", c->method, c->url, c->status, srv_now() - c->t0, extra,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed)");
    }
    conn_release(S, c);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    srv *S = cls;
    if (S->opt.quiet) return;
    fputs("flashblock serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

struct MHD_Daemon *srv_http_start(srv *S, int listen_fd, int ipv6) {
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ipv6) flags |= MHD_USE_IPv6;
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_mutex_init(&S->watch_mu, NULL);
    pthread_cond_init(&S->watch_cv, &a);
    pthread_condattr_destroy(&a);
    S->watch_started = pthread_create(&S->watchdog, NULL, watchdog_main, S) == 0;
    if (!S->watch_started) fprintf(stderr, "flashblock serve: warning: no read-timeout watchdog (thread creation failed)\n");
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, S,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, S,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, S,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, S,
                            MHD_OPTION_CONNECTION_LIMIT, 256u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                            MHD_OPTION_END);
    if (!d) srv_http_stop(S, NULL);
    return d;
}

void srv_http_stop(srv *S, struct MHD_Daemon *d) {
    /* MHD_stop_daemon shuts every socket down at once: a handler woken by
     * the engine's final 503 could lose it (a stream would end with neither
     * the error event nor [DONE], a plain request with no answer). Wait, at
     * most 2 s, for the replies still being written. */
    for (int i = 0; d && i < 200; i++) {
        pthread_mutex_lock(&S->mu);
        const int n = S->open_replies;
        pthread_mutex_unlock(&S->mu);
        if (n <= 0) break;
        nanosleep(&(struct timespec){.tv_nsec = 10000000L}, NULL);
    }
    if (d) MHD_stop_daemon(d);
    if (S->watch_started) {
        pthread_mutex_lock(&S->watch_mu);
        S->watch_stop = 1;
        pthread_cond_signal(&S->watch_cv);
        pthread_mutex_unlock(&S->watch_mu);
        pthread_join(S->watchdog, NULL);
        S->watch_started = 0;
    }
    pthread_cond_destroy(&S->watch_cv);
    pthread_mutex_destroy(&S->watch_mu);
}
