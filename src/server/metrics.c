/* Prometheus text for /metrics (see metrics.h). */
#include "server/metrics.h"
#include "server/srv.h"
#include <string.h>

static const int srv_status_codes[SRV_N_STATUS] = {200, 204, 400, 401, 404, 405, 408, 413, 429, 500, 503, 0};

static void hist_init(srv_hist *h, const double *le, int n) {
    memset(h, 0, sizeof *h);
    h->n = n;
    memcpy(h->le, le, sizeof(double) * (size_t)n);
}

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    static const double ttft[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double itl[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    static const double e2e[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    hist_init(&m->ttft, ttft, (int)(sizeof ttft / sizeof *ttft));
    hist_init(&m->itl, itl, (int)(sizeof itl / sizeof *itl));
    hist_init(&m->e2e, e2e, (int)(sizeof e2e / sizeof *e2e));
}

void srv_metrics_destroy(srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

void srv_metrics_status(srv_metrics *m, int st) {
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < SRV_N_STATUS && srv_status_codes[i] && srv_status_codes[i] != st) i++;
    if (i < SRV_N_STATUS && srv_status_codes[i] == st) m->status_count[i]++;
    else m->status_count[SRV_N_STATUS - 1]++;   /* "other" */
    pthread_mutex_unlock(&m->mu);
}

void srv_hist_observe(srv_metrics *m, srv_hist *h, double v) {
    pthread_mutex_lock(&m->mu);
    int b = 0;
    while (b < h->n && v > h->le[b]) b++;
    h->count[b]++;
    h->total++;
    h->sum += v;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_add(srv_metrics *m, long *counter, long v) {
    pthread_mutex_lock(&m->mu);
    *counter += v;
    pthread_mutex_unlock(&m->mu);
}

static void counter(srv_buf *o, const char *name, const char *help, long v) {
    srv_buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %ld\n", name, help, name, name, v);
}
static void gauge(srv_buf *o, const char *name, const char *help, long v) {
    srv_buf_printf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %ld\n", name, help, name, name, v);
}
static void hist(srv_buf *o, const char *name, const char *help, const srv_hist *h) {
    srv_buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    long cum = 0;
    for (int b = 0; b < h->n; b++) {
        cum += h->count[b];
        srv_buf_printf(o, "%s_bucket{le=\"%g\"} %ld\n", name, h->le[b], cum);
    }
    cum += h->count[h->n];
    srv_buf_printf(o, "%s_bucket{le=\"+Inf\"} %ld\n%s_sum %.6f\n%s_count %ld\n", name, cum, name, h->sum, name, h->total);
}

void srv_metrics_render(srv_metrics *m, const srv_gauges *g, srv_buf *o) {
    pthread_mutex_lock(&m->mu);
    srv_buf_puts(o, "# HELP flashblock_requests_total HTTP responses by status code.\n"
                    "# TYPE flashblock_requests_total counter\n");
    for (int i = 0; i < SRV_N_STATUS; i++) {
        if (srv_status_codes[i]) srv_buf_printf(o, "flashblock_requests_total{status=\"%d\"} %ld\n", srv_status_codes[i], m->status_count[i]);
        else if (i == SRV_N_STATUS - 1) srv_buf_printf(o, "flashblock_requests_total{status=\"other\"} %ld\n", m->status_count[i]);
    }
    counter(o, "flashblock_prompt_tokens_total", "Prompt tokens of admitted requests.", m->prompt_tokens);
    counter(o, "flashblock_generation_tokens_total", "Tokens generated.", m->generated_tokens);
    srv_buf_puts(o, "# HELP flashblock_request_finished_total Choices finished, by reason.\n"
                    "# TYPE flashblock_request_finished_total counter\n");
    srv_buf_printf(o, "flashblock_request_finished_total{reason=\"stop\"} %ld\n", m->finished_stop);
    srv_buf_printf(o, "flashblock_request_finished_total{reason=\"length\"} %ld\n", m->finished_length);
    srv_buf_printf(o, "flashblock_request_finished_total{reason=\"cancelled\"} %ld\n", m->cancelled);
    counter(o, "flashblock_preemptions_total", "Sequences preempted (blocks freed, requeued for recompute).", m->preemptions);
    gauge(o, "flashblock_ready", "1 when the model is loaded.", g->ready);
    gauge(o, "flashblock_sequences_running", "Sequences in the engine.", g->running_seqs);
    gauge(o, "flashblock_sequences_waiting", "Sequences waiting for admission (new or preempted).", g->waiting_seqs);
    gauge(o, "flashblock_requests_waiting", "Requests not yet admitted.", g->waiting_requests);
    gauge(o, "flashblock_sequences_max", "Sequence slots (--parallel).", g->parallel);
    gauge(o, "flashblock_kv_blocks_total", "KV cache blocks in the budget.", g->kv_total);
    gauge(o, "flashblock_kv_blocks_used", "KV cache blocks held by sequences.", g->kv_used);
    gauge(o, "flashblock_kv_blocks_free", "KV cache blocks free.", g->kv_free);
    gauge(o, "flashblock_kv_blocks_cached", "Free KV blocks kept for prefix reuse.", g->kv_cached);
    counter(o, "flashblock_prefix_cache_queries_total", "Prompt lookups in the prefix cache.", g->prefix_queries);
    counter(o, "flashblock_prefix_cache_hits_total", "Prompt blocks reused from the prefix cache.", g->prefix_hits);
    hist(o, "flashblock_time_to_first_token_seconds", "Time from arrival to the first generated token.", &m->ttft);
    hist(o, "flashblock_inter_token_latency_seconds", "Time between consecutive tokens of a sequence.", &m->itl);
    hist(o, "flashblock_request_duration_seconds", "Time from arrival to the last token.", &m->e2e);
    pthread_mutex_unlock(&m->mu);
}
