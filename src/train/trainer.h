/*
 * The training loop as a library object: a model, its AdamW state, the run
 * state (step, best validation loss, data RNG) and a data sampler, driven
 * one optimizer step at a time by a CLI, a test, an MPI launcher or any
 * embedding program.
 *
 * One step (fb_trainer_step):
 *   zero gradients; for each of accum micro-batches: draw its windows,
 *   forward + backward (gradients accumulate, scaled 1/(accum·world), so a
 *   sum over ranks is the global mean; hooks.grads_ready sees each range of
 *   the last micro-batch's gradients as soon as it is final);
 *   hooks.after_backward   (the gradients of the step are complete: a
 *                           data-parallel all-reduce goes here);
 *   global gradient norm (NaN/inf stops the run); learning-rate schedule;
 *   AdamW update with the clipping factor fused in;
 *   hooks.after_update     (parameters changed: ZeRO all-gather, logging).
 *
 * Data: each step draws `batch` windows (the global batch) from one seeded
 * RNG, in a fixed order; with rank r of world ranks, this process trains on
 * windows [r·batch/world, (r+1)·batch/world) of them. Every rank draws the
 * same sequence, so the global batch and its order do not depend on the
 * number of ranks, and a single process (rank 0 of 1) trains on exactly
 * the windows it always did: resume stays bitwise identical.
 */
#ifndef FB_TRAIN_TRAINER_H
#define FB_TRAIN_TRAINER_H
#include "flashblock.h"
#include "model/checkpoint.h"
#include "train/data.h"
#include "train/optimizer.h"

typedef struct fb_trainer_config {
    int batch;            /* windows per optimizer step, over all ranks */
    int accum;            /* micro-batches per rank and step */
    int T;                /* window length (<= the model's max_seq) */
    int recompute;        /* activation checkpointing */
    long steps, warmup;   /* schedule: linear warmup, cosine to min_lr at steps */
    float lr, min_lr, clip;
    int eval_windows;     /* validation windows per evaluation */
    int rank, world;      /* this process's share of every global batch */
} fb_trainer_config;

typedef struct fb_trainer_hooks {
    /* During the last micro-batch's backward: gradients [offset, offset+count)
     * of m->grads are final (fb_model_set_grad_ready). */
    void (*grads_ready)(void *user, size_t offset, size_t count);
    fb_status (*after_backward)(void *user, fb_model *m, long step);
    /* Replaces the built-in gradient norm + AdamW update (ZeRO shards the
     * optimizer); must set *grad_norm and advance the fb_adamw step count. */
    fb_status (*optimizer_step)(void *user, fb_model *m, fb_adamw *opt, long step, float lr, float clip, double *grad_norm);
    fb_status (*after_update)(void *user, fb_model *m, long step);
    void *user;
} fb_trainer_hooks;

typedef struct fb_step_info {
    long step;            /* steps done after this one */
    double loss;          /* mean training loss of this rank's micro-batches */
    double grad_norm;     /* before clipping */
    float lr;
    double seconds;
    long tokens;          /* tokens this rank processed */
} fb_step_info;

typedef struct fb_trainer fb_trainer;

/* A fresh run: the trainer takes m (owned from here on), creates AdamW with
 * adamw and seeds the data RNG. */
fb_status fb_trainer_create(fb_trainer **out, const fb_trainer_config *cfg, fb_model *m, const fb_adamw_config *adamw,
                            uint64_t seed, const char *tokenizer_spec);
/* Resume from a training checkpoint (model, AdamW moments, step, RNG);
 * weight_decay >= 0 overrides the saved one. */
fb_status fb_trainer_load(fb_trainer **out, const fb_trainer_config *cfg, const char *checkpoint, float weight_decay);
void      fb_trainer_free(fb_trainer *t);

/* The splits the trainer draws from (borrowed: they must outlive it). */
fb_status fb_trainer_set_data(fb_trainer *t, const fb_data_split *data);
void      fb_trainer_set_hooks(fb_trainer *t, const fb_trainer_hooks *hooks);

fb_status fb_trainer_step(fb_trainer *t, fb_step_info *info);
/* Mean loss over eval_windows evenly spaced validation windows; updates
 * the best validation loss. */
fb_status fb_trainer_evaluate(fb_trainer *t, float *val_loss);
/* Model, AdamW state and run state (atomically: temp file, fsync, rename). */
fb_status fb_trainer_save(fb_trainer *t, const char *path);
/* The same with AdamW moments given by the caller (a sharded optimizer
 * gathers them), in the model's parameter layout. */
fb_status fb_trainer_save_moments(fb_trainer *t, const char *path, float *m1, float *m2);
/* The AdamW state (configuration, step count and, unless released, the
 * moments). A sharded optimizer takes its shard and releases the rest. */
fb_adamw *fb_trainer_adamw(fb_trainer *t);

fb_model *fb_trainer_model(fb_trainer *t);
const fb_train_state *fb_trainer_state(const fb_trainer *t);
const fb_trainer_config *fb_trainer_get_config(const fb_trainer *t);
#endif
