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
    fb_workspace ws;        /* kernel scratch for B×T, planned by fb_model_alloc_training */
    int ws_threads;         /* ... for this many threads */
};

/* fb_model_init in two steps, for loaders: plan the tensor table without
 * allocating, check it against the file, then allocate (zeroed). Models
 * loaded for inference have no gradient buffer (with_grads 0): the weights
 * are held once. */
fb_status fb_model_plan(fb_model **out, const fb_model_config *cfg);
fb_status fb_model_alloc(fb_model *m, int with_grads);

static inline float *fb_model_block_params(fb_model *m, int l) { return m->params + m->off_blocks + (size_t)l * m->blk.total; }
#endif
