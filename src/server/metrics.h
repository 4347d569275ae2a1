/* Prometheus metrics of flashblock serve: counters, gauges and histograms,
 * rendered in the text exposition format (version 0.0.4). */
#ifndef FB_SERVER_METRICS_H
#define FB_SERVER_METRICS_H
#include <pthread.h>

#define SRV_HIST_MAX 16
typedef struct srv_hist {
    int n;                         /* buckets (upper bounds), +Inf implied */
    double le[SRV_HIST_MAX];
    long count[SRV_HIST_MAX + 1];  /* per bucket, not cumulative */
    long total;
    double sum;
} srv_hist;

#define SRV_N_STATUS 12
typedef struct srv_metrics {
    pthread_mutex_t mu;
    long status_count[SRV_N_STATUS];   /* by srv_status_codes[] */
    long prompt_tokens, generated_tokens, preemptions, cancelled;
    long finished_stop, finished_length;
    srv_hist ttft, itl, e2e;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
void srv_metrics_status(srv_metrics *m, int http_status);
void srv_hist_observe(srv_metrics *m, srv_hist *h, double v);
void srv_metrics_add(srv_metrics *m, long *counter, long v);

/* Gauges owned by the scheduler, passed in when rendering. */
typedef struct srv_gauges {
    int running_seqs, waiting_seqs, waiting_requests, parallel;
    long kv_total, kv_used, kv_free, kv_cached, prefix_queries, prefix_hits;
    int ready;
} srv_gauges;
struct srv_buf;
void srv_metrics_render(srv_metrics *m, const srv_gauges *g, struct srv_buf *out);
#endif
