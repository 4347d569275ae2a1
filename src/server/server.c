/*
 * flashblock serve: lifecycle. The socket is bound first (so /health answers
 * 503 while the model loads), then the engine thread loads the model and
 * runs the scheduler; the main thread sleeps in sigwait until SIGINT or
 * SIGTERM (or the engine's SIGUSR1 when loading failed), then stops the
 * engine (whatever is in flight ends with 503) and the HTTP daemon.
 */
#include "server/http.h"
#include "server/srv.h"
#include "io/gguf.h"
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

fb_server_options fb_server_options_default(void) {
    fb_server_options o = {0};
    o.host = "127.0.0.1";
    o.port = 8080;
    o.parallel = 4;
    o.kv_block_size = 16;
    o.max_batch_tokens = 512;
    o.max_queue = 64;
    o.max_body = 8u << 20;
    return o;
}

/* Listening socket on host:port (port 0: any free one, read back). */
static int listen_on(const char *host, int port, int *bound_port, int *ipv6) {
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc) {
        fprintf(stderr, "flashblock: error: cannot resolve --host %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) { err = errno; continue; }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 128)) {
            err = errno;
            close(fd);
            fd = -1;
            continue;
        }
        *ipv6 = a->ai_family == AF_INET6;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        fprintf(stderr, "flashblock: error: cannot listen on %s:%d: %s\n", host, port, strerror(err));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound_port = port;
    if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
        *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                               : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* The chat template: --chat-template, else the GGUF's when recognised,
 * else chatml. */
static void choose_template(srv *S) {
    srv_tmpl_kind k = SRV_TMPL_CHATML;
    const char *origin = "default";
    if (S->opt.chat_template && !srv_tmpl_from_name(S->opt.chat_template, &k)) {
        origin = "--chat-template";
    } else if (!strcmp(fb_llm_format(S->llm), "gguf")) {
        fb_gguf g;
        if (fb_gguf_open(&g, S->opt.model_path) == FB_OK) {
            const char *p = NULL;
            uint64_t n = 0;
            if (fb_gguf_find_kv(&g, "tokenizer.chat_template") &&
                fb_gguf_get_string(&g, "tokenizer.chat_template", &p, &n) == FB_OK) {
                if (!srv_tmpl_detect(p, (size_t)n, &k)) origin = "gguf";
                else fprintf(stderr, "flashblock serve: the GGUF's chat template is not one of %s; using chatml "
                                     "(--chat-template chooses)\n", srv_tmpl_list());
            }
            fb_gguf_close(&g);
        }
    }
    srv_tmpl_init(&S->tmpl, k, origin, S->tok);
}

static int load(srv *S) {
    const fb_server_options *o = &S->opt;
    fb_set_threads(o->threads);
    fb_llm *llm = NULL;
    if (fb_llm_load(&llm, o->model_path, o->tokenizer) != FB_OK) {
        fprintf(stderr, "flashblock: error: %s\n", fb_last_error());
        return -1;
    }
    const fb_model_config *mc = fb_llm_config(llm);
    const int ctx = o->ctx ? o->ctx : mc->max_seq;
    const int hd = mc->block.head_dim ? mc->block.head_dim : mc->block.d_model / mc->block.n_heads;
    const double tok_bytes = (double)mc->n_layers * 2.0 * mc->block.n_kv_heads * hd * sizeof(float);
    const long per_seq = (ctx + o->kv_block_size - 1) / o->kv_block_size;
    long total = (long)o->parallel * per_seq;
    if (o->kv_mem_mib > 0) {
        total = (long)floor(o->kv_mem_mib * 1048576.0 / (tok_bytes * o->kv_block_size));
        if (total < per_seq) {
            fprintf(stderr, "flashblock: error: --kv-mem %g MiB holds %ld blocks of %d tokens (%.0f bytes each); "
                            "one sequence of --ctx %d needs %ld (%.3f MiB)\n", o->kv_mem_mib, total, o->kv_block_size,
                    tok_bytes * o->kv_block_size, ctx, per_seq, per_seq * tok_bytes * o->kv_block_size / 1048576.0);
            fb_llm_free(llm);
            return -1;
        }
    }
    fb_session_options so = fb_session_options_default();
    so.max_seqs = o->parallel;
    so.ctx = ctx;
    so.max_batch = o->max_batch_tokens < 1024 ? o->max_batch_tokens : 1024;
    so.q8 = o->q8;
    so.kv_block_size = o->kv_block_size;
    so.kv_blocks = o->kv_mem_mib <= 0 ? 0 : total > (1L << 28) ? 1 << 28 : (int)total;   /* 0: room for parallel full contexts */
    so.prefix_cache = 1;
    fb_session *sess = NULL;
    srv_choice **owner = calloc((size_t)o->parallel, sizeof *owner);
    if (!owner || fb_session_create(&sess, llm, &so) != FB_OK) {
        fprintf(stderr, "flashblock: error: %s\n", owner ? fb_last_error() : "out of memory");
        free(owner);
        fb_llm_free(llm);
        return -1;
    }
    pthread_mutex_lock(&S->mu);
    S->llm = llm;
    S->sess = sess;
    S->tok = fb_llm_tokenizer(llm);
    S->ctx = fb_session_ctx(sess);
    S->vocab = mc->vocab_size;
    S->owner = owner;
    S->block_size = o->kv_block_size;
    total = fb_session_kv_stats(sess).blocks_total;
    S->kv_blocks_total = total;
    S->kv.blocks_total = S->kv.blocks_free = total;
    choose_template(S);
    S->ready = 1;
    pthread_mutex_unlock(&S->mu);
    fprintf(stderr, "flashblock serve: ready: %s (%s, vocab %d, ctx %d%s), parallel %d, KV budget %ld blocks of %d tokens "
                    "(%.2f MiB, %s), chat template %s (%s)\n", S->model_id, fb_llm_format(llm), S->vocab, S->ctx, o->q8 ? ", Q8_0" : "",
            o->parallel, total, o->kv_block_size, total * o->kv_block_size * tok_bytes / 1048576.0,
            "paged, prefix cache",
            srv_tmpl_name(S->tmpl.kind), S->tmpl.origin);
    return 0;
}

static void *engine_thread(void *arg) {
    srv *S = arg;
    if (load(S)) {
        pthread_mutex_lock(&S->mu);
        S->load_failed = 1;
        pthread_mutex_unlock(&S->mu);
        pthread_kill(S->main_thread, SIGUSR1);
        return NULL;
    }
    return srv_engine_main(S);
}

int fb_server_run(const fb_server_options *opt) {
    srv *S = calloc(1, sizeof *S);
    if (!S) { fprintf(stderr, "flashblock: error: out of memory\n"); return 1; }
    S->opt = *opt;
    if (S->opt.alias) snprintf(S->model_id, sizeof S->model_id, "%s", S->opt.alias);
    else {
        const char *b = strrchr(opt->model_path, '/');
        snprintf(S->model_id, sizeof S->model_id, "%s", b ? b + 1 : opt->model_path);
    }
    pthread_mutex_init(&S->mu, NULL);
    pthread_cond_init(&S->work_cv, NULL);
    srv_metrics_init(&S->metrics);

    /* signals are taken by sigwait in this thread only; every thread started
     * from here inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1, port = 0, ipv6 = 0;
    struct MHD_Daemon *d = NULL;
    const int fd = listen_on(opt->host, opt->port, &port, &ipv6);
    if (fd >= 0 && !(d = srv_http_start(S, fd, ipv6))) {
        fprintf(stderr, "flashblock: error: libmicrohttpd could not start on %s:%d\n", opt->host, port);
        close(fd);
    }
    if (d) {
        fprintf(stderr, "flashblock serve: listening on http://%s%s%s:%d/ (loading %s)\n", ipv6 ? "[" : "", opt->host,
                ipv6 ? "]" : "", port, opt->model_path);
        S->main_thread = pthread_self();
        if (pthread_create(&S->engine, NULL, engine_thread, S)) {
            fprintf(stderr, "flashblock: error: cannot start the engine thread\n");
        } else {
            int sig = 0;
            while (sigwait(&set, &sig) == 0) {
                pthread_mutex_lock(&S->mu);
                const int failed = S->load_failed;
                pthread_mutex_unlock(&S->mu);
                if (sig != SIGUSR1 || failed) break;   /* a stray SIGUSR1 is ignored */
            }
            rc = sig == SIGUSR1 ? 1 : 0;
            if (rc == 0) fprintf(stderr, "flashblock serve: %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
            pthread_mutex_lock(&S->mu);
            S->stopping = 1;
            pthread_cond_broadcast(&S->work_cv);
            pthread_mutex_unlock(&S->mu);
            pthread_join(S->engine, NULL);
        }
        srv_http_stop(S, d);
    }
    fb_session_free(S->sess);
    fb_llm_free(S->llm);
    free(S->owner);
    srv_metrics_destroy(&S->metrics);
    pthread_cond_destroy(&S->work_cv);
    pthread_mutex_destroy(&S->mu);
    free(S);
    return rc;
}
