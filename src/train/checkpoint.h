/*
 * Checkpoints in safetensors (docs/FORMATS.md, "Checkpoints"):
 *   - every model tensor, F32, GGUF names, [out, in] row-major;
 *   - with an optimizer: "optim.m.<name>" and "optim.v.<name>" (AdamW moments);
 *   - __metadata__: the model config, the tokenizer spec and the training
 *     state (step, RNG, optimizer hyper-parameters), all as strings.
 * Written atomically (temp file, fsync, rename): an interrupted save never
 * damages the previous checkpoint.
 */
#ifndef FB_TRAIN_CHECKPOINT_H
#define FB_TRAIN_CHECKPOINT_H
#include "flashblock.h"
#include "train/optimizer.h"

typedef struct fb_train_state {
    long step;              /* optimizer steps completed */
    uint64_t rng;           /* data sampler state after those steps */
    char tokenizer[1024];   /* tokenizer spec ("byte", "gpt2:DIR", ...) */
    float best_val;         /* lowest validation loss so far (or NAN) */
} fb_train_state;

fb_status fb_checkpoint_save(const char *path, fb_model *m, const fb_adamw *opt, const fb_train_state *st);
/* Creates the model from the file's config. opt (optional) is initialised
 * and filled with the saved moments (FB_ERR_FORMAT if the file has none);
 * st (optional) receives the saved state. */
fb_status fb_checkpoint_load(const char *path, fb_model **m, fb_adamw *opt, fb_train_state *st);
/* Reads only the config and state (cheap; no tensors copied). */
fb_status fb_checkpoint_peek(const char *path, fb_model_config *cfg, fb_train_state *st);
#endif
