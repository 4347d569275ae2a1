/*
 * flashblock checkpoints in safetensors (docs/FORMATS.md, "flashblock
 * checkpoints"), the model part that every layer above may use:
 *   - every model tensor, F32, GGUF names, [out, in] row-major;
 *   - __metadata__: the model config, the tokenizer spec and the run state
 *     (step, RNG, best validation loss), all as strings.
 * Loading plans the model from the metadata (fb_model_plan), checks every
 * tensor's shape against the plan and only then allocates (fb_model_alloc),
 * so a lying header is an error naming the field, never a huge allocation.
 * Written atomically (temp file, fsync, rename): an interrupted save never
 * damages the previous checkpoint.
 *
 * More state kept in the same file (train's AdamW moments and
 * hyper-parameters: train/checkpoint.h) is saved through fb_checkpoint_extra
 * and read back from the open file (fb_checkpoint_load's `file`); this layer
 * does not interpret it.
 */
#ifndef FB_MODEL_CHECKPOINT_H
#define FB_MODEL_CHECKPOINT_H
#include "flashblock.h"
#include "io/safetensors.h"
#include "model/model.h"

/* The run state recorded in the metadata (keys step, rng, best_val,
 * tokenizer): written by train, read by every loader (the tokenizer spec). */
typedef struct fb_train_state {
    long step;              /* optimizer steps completed */
    uint64_t rng;           /* data sampler state after those steps */
    char tokenizer[1024];   /* tokenizer spec ("byte", "gpt2:DIR", ...) */
    float best_val;         /* lowest validation loss so far (or NAN) */
} fb_train_state;

/* More arrays in the model's parameter layout (m->n_floats floats each) and
 * metadata, stored beside the weights. Array a's tensor for model tensor
 * NAME is named prefix[a] + NAME, with NAME's shape; the metadata follows
 * the run state's keys. */
typedef struct fb_checkpoint_extra {
    int n_arrays;
    const char *const *prefix;
    const float *const *data;
    int n_meta;
    const fb_st_kv *meta;
} fb_checkpoint_extra;

/* st and extra are optional (NULL: no run state / nothing extra). */
fb_status fb_checkpoint_save(const char *path, const fb_model *m, const fb_checkpoint_extra *extra,
                             const fb_train_state *st);

/* An open checkpoint file. */
typedef struct fb_checkpoint fb_checkpoint;

/* Creates the model from the file's config and fills its parameters, for
 * inference: no gradient buffer (fb_model_alloc(m, 0)). st (optional)
 * receives the saved state. file (optional) receives the still-open file,
 * to read more of it with the functions below; close it with
 * fb_checkpoint_close. On failure *m is NULL and nothing stays open. */
fb_status fb_checkpoint_load(const char *path, fb_model **m, fb_checkpoint **file, fb_train_state *st);
/* The same with the weights held as w: FB_MODEL_Q8_0 quantizes each matrix
 * row by row from the file into the model's Q8_0 store (model.h), with no
 * fp32 copy of it at any time. */
fb_status fb_checkpoint_load_weights(const char *path, fb_model_weights w, fb_model **m, fb_checkpoint **file,
                                     fb_train_state *st);
/* The same with zeroed gradients, for training (train/checkpoint.h). */
fb_status fb_checkpoint_load_for_training(const char *path, fb_model **m, fb_checkpoint **file, fb_train_state *st);
/* Reads only the config and state (cheap; no tensors copied). */
fb_status fb_checkpoint_peek(const char *path, fb_model_config *cfg, fb_train_state *st);

/* __metadata__ value, NULL when absent. */
const char *fb_checkpoint_meta(const fb_checkpoint *f, const char *key);
/* A metadata integer in [lo, hi] / a number; FB_ERR_FORMAT naming the key
 * when missing or malformed. */
fb_status fb_checkpoint_meta_long(const fb_checkpoint *f, const char *key, long lo, long hi, long *out);
fb_status fb_checkpoint_meta_float(const fb_checkpoint *f, const char *key, float *out);
/* Tensor `name`, which must have model tensor t's shape, as t->numel F32
 * values at dst, all finite. Errors name the metadata the shape comes from. */
fb_status fb_checkpoint_read_tensor(const fb_checkpoint *f, const char *name, const fb_model_tensor_info *t, float *dst);
/* Safe on NULL. */
void fb_checkpoint_close(fb_checkpoint *f);
#endif
