/* Internal view of the model (see model.c for the memory layout). */
#ifndef FB_MODEL_MODEL_H
#define FB_MODEL_MODEL_H
#include "flashblock.h"
#include "model/block.h"

typedef struct fb_model_tensor_info {
    char name[96];
    size_t offset;          /* floats from the start of params/grads */
    int ndim;
    int64_t shape[2];
    size_t numel;
    int decay;              /* AdamW weight decay applies (matrices only) */
} fb_model_tensor_info;

struct fb_model {
    fb_model_config cfg;
    fb_block_layout blk;
    fb_model_tensor_info *tensors;
    int n_tensors;
    size_t n_floats;
    size_t off_wte, off_wpe, off_blocks, off_normf_w, off_normf_b, off_lm;
    float *params, *grads;
    /* training activations */
    int B, T, recompute;
    float *acts;
    size_t act_floats;
    float *resid;
    fb_block_acts *blk_acts;
    float *lnf, *lnf_stat[2], *losses, *dres, *dlnf, *recompute_out;
    int32_t *ids, *targets;
    fb_block_grad_scratch gscratch;
    /* called during backward as ranges of gradients become final (see below) */
    void (*grad_ready)(void *user, size_t offset, size_t count);
    void *grad_ready_user;
};

/* During fb_model_forward_backward, fn(user, offset, count) is called as soon
 * as the gradients [offset, offset+count) (floats into m->grads) are final:
 * each block's range right after its backward (last layer first), then the
 * rest (embeddings, final norm, LM head). Data parallelism posts its
 * non-blocking all-reduce of each range there, so communication overlaps the
 * rest of the backward. NULL clears it. */
void fb_model_set_grad_ready(fb_model *m, void (*fn)(void *user, size_t offset, size_t count), void *user);

/* fb_model_init in two steps, for loaders: plan the tensor table without
 * allocating, check it against the file, then allocate (zeroed). Models
 * loaded for inference have no gradient buffer (with_grads 0): the weights
 * are held once. */
fb_status fb_model_plan(fb_model **out, const fb_model_config *cfg);
fb_status fb_model_alloc(fb_model *m, int with_grads);

static inline float *fb_model_block_params(fb_model *m, int l) { return m->params + m->off_blocks + (size_t)l * m->blk.total; }
#endif
