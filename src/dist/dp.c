/* Data parallelism and ZeRO-1 over MPI; see dp.h. */
#include "dist/dp.h"
#include "core/error.h"
#include "core/runtime.h"
#include "model/model.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHUNK (1 << 28)   /* floats per MPI call: counts are int */

struct fb_dp {
    MPI_Comm comm;
    int rank, world, zero;
    fb_trainer *t;
    fb_model *m;
    size_t n;                   /* floats in params / grads */
    size_t shard;               /* floats per ZeRO shard (the last one may be shorter) */
    float *m1, *m2;             /* ZeRO: this rank's moments */
    int *counts, *displs;       /* ZeRO: shard sizes for the all-gather */
    MPI_Request *req;
    int n_req, cap_req;
    double t_first;
    fb_dp_stats stats;
};

static size_t shard_lo(const fb_dp *d, int r) { size_t x = (size_t)r * d->shard; return x < d->n ? x : d->n; }
static size_t shard_hi(const fb_dp *d, int r) { return shard_lo(d, r + 1); }

static MPI_Request *new_request(fb_dp *d) {
    if (d->n_req == d->cap_req) {
        int nc = d->cap_req ? 2 * d->cap_req : 64;
        MPI_Request *r = realloc(d->req, sizeof *r * (size_t)nc);
        if (!r) return NULL;
        d->req = r;
        d->cap_req = nc;
    }
    return &d->req[d->n_req++];
}

/* A range of gradients is final: post its reduction now. Ring all-reduce
 * sends about 2·(world-1)/world of the payload per rank, a reduce to one root
 * (world-1)/world at most; the byte counts below use those factors. */
static void grads_ready(void *user, size_t off, size_t count) {
    fb_dp *d = user;
    float *g = fb_model_grads(d->m);
    const double f = (double)(d->world - 1) / (double)d->world;
    if (d->n_req == 0) d->t_first = fb_now_sec();
    for (size_t c0 = 0; c0 < count; c0 += MAX_CHUNK) {
        const size_t lo = off + c0, hi = lo + (count - c0 < MAX_CHUNK ? count - c0 : MAX_CHUNK);
        if (!d->zero) {
            MPI_Request *r = new_request(d);
            if (!r) { MPI_Allreduce(MPI_IN_PLACE, g + lo, (int)(hi - lo), MPI_FLOAT, MPI_SUM, d->comm); continue; }
            MPI_Iallreduce(MPI_IN_PLACE, g + lo, (int)(hi - lo), MPI_FLOAT, MPI_SUM, d->comm, r);
            d->stats.bytes_sent += 2.0 * f * (double)(hi - lo) * 4.0;
            continue;
        }
        for (int root = 0; root < d->world; root++) {   /* the pieces of each shard this range covers */
            const size_t a = lo > shard_lo(d, root) ? lo : shard_lo(d, root), b = hi < shard_hi(d, root) ? hi : shard_hi(d, root);
            if (a >= b) continue;
            MPI_Request *r = new_request(d);
            const void *send = d->rank == root ? MPI_IN_PLACE : (const void *)(g + a);
            if (!r) { MPI_Reduce(send, g + a, (int)(b - a), MPI_FLOAT, MPI_SUM, root, d->comm); continue; }
            MPI_Ireduce(send, g + a, (int)(b - a), MPI_FLOAT, MPI_SUM, root, d->comm, r);
            d->stats.bytes_sent += f * (double)(b - a) * 4.0;
        }
    }
    int done;   /* let MPI progress what is in flight while backward goes on */
    MPI_Testall(d->n_req, d->req, &done, MPI_STATUSES_IGNORE);
}

static fb_status after_backward(void *user, fb_model *m, long step) {
    (void)m;
    (void)step;
    fb_dp *d = user;
    const double t0 = fb_now_sec();
    MPI_Waitall(d->n_req, d->req, MPI_STATUSES_IGNORE);
    const double t1 = fb_now_sec();
    d->stats.wait_seconds += t1 - t0;
    if (d->n_req) d->stats.comm_seconds += t1 - d->t_first;
    d->n_req = 0;
    d->stats.steps++;
    return FB_OK;
}

/* ZeRO-1: global norm from the shards, AdamW on this rank's shard, then
 * everyone's shards to everyone. */
static fb_status zero_step(void *user, fb_model *m, fb_adamw *opt, long step, float lr, float clip, double *grad_norm) {
    (void)step;
    fb_dp *d = user;
    const size_t lo = shard_lo(d, d->rank), hi = shard_hi(d, d->rank);
    const float *g = fb_model_grads(m);
    double ss = 0;
    for (size_t k = lo; k < hi; k++) ss += (double)g[k] * g[k];
    MPI_Allreduce(MPI_IN_PLACE, &ss, 1, MPI_DOUBLE, MPI_SUM, d->comm);
    *grad_norm = sqrt(ss);
    if (!isfinite(*grad_norm)) return fb_fail(FB_ERR_NUMERIC, "gradient norm is not finite");
    opt->step++;
    FB_TRY(fb_adamw_update_range(opt, m, lr, fb_clip_coef(*grad_norm, clip), lo, hi, d->m1, d->m2));
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, fb_model_params(m), d->counts, d->displs, MPI_FLOAT, d->comm);
    d->stats.bytes_sent += (double)(d->world - 1) / (double)d->world * (double)d->n * 4.0;
    return FB_OK;
}

fb_status fb_dp_create(fb_dp **out, MPI_Comm comm, fb_trainer *t, int zero) {
    if (!out || !t) return fb_fail(FB_ERR_INVALID_ARG, "fb_dp_create: NULL argument");
    *out = NULL;
    if (zero != 0 && zero != 1) return fb_fail(FB_ERR_INVALID_ARG, "--zero %d: expected 0 or 1", zero);
    fb_dp *d = calloc(1, sizeof *d);
    if (!d) return fb_fail(FB_ERR_OOM, "dp: out of memory");
    d->comm = comm;
    MPI_Comm_rank(comm, &d->rank);
    MPI_Comm_size(comm, &d->world);
    const fb_trainer_config *tc = fb_trainer_get_config(t);
    if (tc->rank != d->rank || tc->world != d->world) {
        const int r = d->rank, w = d->world;
        free(d);
        return fb_fail(FB_ERR_INVALID_ARG, "dp: the trainer is rank %d of %d, MPI says %d of %d", tc->rank, tc->world, r, w);
    }
    d->zero = zero && d->world > 1;
    d->t = t;
    d->m = fb_trainer_model(t);
    d->n = d->m->n_floats;
    if (d->zero) {
        d->shard = ((d->n + (size_t)d->world - 1) / (size_t)d->world + 15) & ~(size_t)15;
        if (d->shard > (size_t)INT_MAX) {
            const size_t sh = d->shard;
            free(d);
            return fb_fail(FB_ERR_UNSUPPORTED, "dp: a ZeRO shard of %zu floats is too large for MPI counts", sh);
        }
        const size_t lo = shard_lo(d, d->rank), len = shard_hi(d, d->rank) - lo;
        fb_adamw *opt = fb_trainer_adamw(t);
        d->m1 = fb_aligned_alloc(sizeof(float) * (len ? len : 1));
        d->m2 = fb_aligned_alloc(sizeof(float) * (len ? len : 1));
        d->counts = malloc(sizeof(int) * (size_t)d->world);
        d->displs = malloc(sizeof(int) * (size_t)d->world);
        if (!d->m1 || !d->m2 || !d->counts || !d->displs || !opt->m) {
            fb_dp_free(d);
            return fb_fail(FB_ERR_OOM, "dp: cannot allocate the ZeRO shard");
        }
        memcpy(d->m1, opt->m + lo, sizeof(float) * len);   /* fresh (zeros) or resumed moments: this rank's share */
        memcpy(d->m2, opt->v + lo, sizeof(float) * len);
        fb_adamw_free(opt);                                  /* the rest is not held by this rank */
        for (int r = 0; r < d->world; r++) {
            d->displs[r] = (int)shard_lo(d, r);
            d->counts[r] = (int)(shard_hi(d, r) - shard_lo(d, r));
        }
    }
    fb_trainer_hooks h = {.grads_ready = d->world > 1 ? grads_ready : NULL,
                          .after_backward = d->world > 1 ? after_backward : NULL,
                          .optimizer_step = d->zero ? zero_step : NULL,
                          .user = d};
    fb_trainer_set_hooks(t, &h);
    *out = d;
    return FB_OK;
}

void fb_dp_free(fb_dp *d) {
    if (!d) return;
    free(d->m1);
    free(d->m2);
    free(d->counts);
    free(d->displs);
    free(d->req);
    free(d);
}

size_t fb_dp_optimizer_bytes(const fb_dp *d) {
    if (!d) return 0;
    if (d->zero) return 2 * (shard_hi(d, d->rank) - shard_lo(d, d->rank)) * sizeof(float);
    return 2 * d->n * sizeof(float);
}

fb_dp_stats fb_dp_get_stats(const fb_dp *d) {
    fb_dp_stats z = {0};
    return d ? d->stats : z;
}

double fb_dp_mean(fb_dp *d, double x) {
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_SUM, d->comm);
    return x / d->world;
}

int fb_dp_any(fb_dp *d, int flag) {
    MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX, d->comm);
    return flag;
}

fb_status fb_dp_save(fb_dp *d, const char *path) {
    int st = FB_OK;
    char msg[512] = "";
    if (!d->zero) {
        if (d->rank == 0) st = fb_trainer_save(d->t, path);
    } else {
        float *m1 = NULL, *m2 = NULL;
        int ok = 1;
        if (d->rank == 0) {
            m1 = fb_aligned_alloc(sizeof(float) * d->n);
            m2 = fb_aligned_alloc(sizeof(float) * d->n);
            ok = m1 && m2;
        }
        MPI_Bcast(&ok, 1, MPI_INT, 0, d->comm);
        if (!ok) { free(m1); free(m2); return fb_fail(FB_ERR_OOM, "dp: rank 0 cannot gather the optimizer state to save it"); }
        const size_t len = shard_hi(d, d->rank) - shard_lo(d, d->rank);
        MPI_Gatherv(d->m1, (int)len, MPI_FLOAT, m1, d->counts, d->displs, MPI_FLOAT, 0, d->comm);
        MPI_Gatherv(d->m2, (int)len, MPI_FLOAT, m2, d->counts, d->displs, MPI_FLOAT, 0, d->comm);
        if (d->rank == 0) st = fb_trainer_save_moments(d->t, path, m1, m2);
        free(m1);
        free(m2);
    }
    if (d->rank == 0 && st != FB_OK) snprintf(msg, sizeof msg, "%s", fb_last_error());
    MPI_Bcast(&st, 1, MPI_INT, 0, d->comm);
    MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, d->comm);
    return st == FB_OK ? FB_OK : fb_fail((fb_status)st, "rank 0: %s", msg);
}
