/*
 * Data parallelism on MPI (OpenMPI), over the trainer's hooks.
 *
 * Every rank holds the whole model and trains on its share of each global
 * batch (the trainer's rank-aware sampler; gradients are pre-scaled by
 * 1/(accum·world), so their sum over ranks is the global mean).
 *
 *   plain (zero 0): during the last micro-batch's backward, each layer's
 *     gradient range is all-reduced with a non-blocking MPI_Iallreduce the
 *     moment it is final (one bucket per block, then the embeddings, final
 *     norm and head); the step waits for them, and every rank then runs the
 *     same norm + AdamW on the same summed gradients, so parameters stay
 *     bitwise identical across ranks.
 *   ZeRO-1 (zero 1): the flat parameter vector is cut into world contiguous
 *     shards; the AdamW moments exist only for this rank's shard. Each
 *     bucket is reduced (MPI_Ireduce) to the rank(s) owning its pieces — a
 *     reduce-scatter overlapped with backward —; the gradient norm is an
 *     all-reduce of the shards' sums of squares; each rank updates its
 *     shard; an all-gather brings everyone the new parameters.
 *
 * Sums are taken by MPI in its own fixed order for a given number of ranks
 * (OpenMPI's tuned collectives are deterministic), so the same N gives the
 * same bits run after run. Checkpoints: rank 0 writes one file, the same
 * format as a single process (ZeRO gathers the moments first), so a run can
 * resume with another number of ranks or without MPI.
 */
#ifndef FB_DIST_DP_H
#define FB_DIST_DP_H
#include "flashblock.h"
#include "train/trainer.h"
#include <mpi.h>

typedef struct fb_dp fb_dp;

typedef struct fb_dp_stats {
    double wait_seconds;        /* blocked on gradient communication after backward */
    double comm_seconds;        /* from the first bucket posted to the last one done */
    double bytes_sent;          /* gradient + parameter payload this rank sent (estimate per algorithm: see dp.c) */
    long steps;
} fb_dp_stats;

/* Installs the hooks on t (created with rank/world of comm). zero: 0 or 1. */
fb_status fb_dp_create(fb_dp **out, MPI_Comm comm, fb_trainer *t, int zero);
void      fb_dp_free(fb_dp *dp);
/* Bytes of AdamW moments this rank holds. */
size_t    fb_dp_optimizer_bytes(const fb_dp *dp);
fb_dp_stats fb_dp_get_stats(const fb_dp *dp);
/* Collective: the mean of x over ranks (loss reports). */
double    fb_dp_mean(fb_dp *dp, double x);
/* Collective: 1 if any rank passes a non-zero flag (agree on stopping). */
int       fb_dp_any(fb_dp *dp, int flag);
/* Collective: rank 0 writes the checkpoint; every rank gets its status. */
fb_status fb_dp_save(fb_dp *dp, const char *path);
#endif
