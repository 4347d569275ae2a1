/*
 * Training checkpoints: a model checkpoint (model/checkpoint.h: config,
 * weights, run state) plus the optimizer, for --resume (docs/FORMATS.md,
 * "Resume state"):
 *   - "optim.m.<name>" and "optim.v.<name>": AdamW's moments, F32, the shape
 *     of model tensor <name>;
 *   - __metadata__ "adamw.step", "adamw.beta1", "adamw.beta2", "adamw.eps",
 *     "adamw.weight_decay", "adamw.decay_all".
 * Inference loads the same files with fb_checkpoint_load and ignores these.
 */
#ifndef FB_TRAIN_CHECKPOINT_H
#define FB_TRAIN_CHECKPOINT_H
#include "flashblock.h"
#include "model/checkpoint.h"
#include "train/optimizer.h"

/* opt and st are optional (opt NULL: a weights-only checkpoint). */
fb_status fb_train_checkpoint_save(const char *path, const fb_model *m, const fb_adamw *opt, const fb_train_state *st);
/* Creates the model from the file's config, with gradients, for training
 * (fb_checkpoint_load_for_training). opt (optional) is initialised and
 * filled with the saved moments (FB_ERR_FORMAT if the file has none); st
 * (optional) receives the saved state. On failure *m is NULL and opt holds
 * nothing to free. */
fb_status fb_train_checkpoint_load(const char *path, fb_model **m, fb_adamw *opt, fb_train_state *st);
#endif
