/* AdamW (decoupled weight decay, bias correction), global-norm gradient
 * clipping and the warmup + cosine learning-rate schedule. */
#ifndef FB_TRAIN_OPTIMIZER_H
#define FB_TRAIN_OPTIMIZER_H
#include "flashblock.h"

typedef struct fb_adamw_config {
    float lr, beta1, beta2, eps, weight_decay;
    int decay_all;          /* 1: also decay norms, biases and embeddings */
} fb_adamw_config;

typedef struct fb_adamw {
    fb_adamw_config cfg;
    float *m, *v;           /* one allocation, the model's parameter layout */
    size_t n;
    long step;              /* optimizer steps taken */
} fb_adamw;

fb_adamw_config fb_adamw_defaults(void);     /* lr 3e-4, (0.9, 0.95), eps 1e-8, wd 0.1 */
fb_status fb_adamw_init(fb_adamw *opt, const fb_model *m, const fb_adamw_config *cfg);
void      fb_adamw_free(fb_adamw *opt);
/* One update with learning rate lr (the schedule's value for this step). */
fb_status fb_adamw_step(fb_adamw *opt, fb_model *m, float lr);
/* The same with every gradient multiplied by grad_scale on the fly (the
 * clipping coefficient): saves a pass over the gradients. */
fb_status fb_adamw_step_scaled(fb_adamw *opt, fb_model *m, float lr, float grad_scale);

/* The update of fb_adamw_step_scaled on the parameters [begin, end) only,
 * with moments m1, m2 indexed from begin (one ZeRO-1 shard); opt->step must
 * already count this step. Element for element the same arithmetic. */
fb_status fb_adamw_update_range(const fb_adamw *opt, fb_model *m, float lr, float grad_scale, size_t begin, size_t end,
                                float *m1, float *m2);

/* L2 norm of all gradients (double accumulation, fixed order). */
double    fb_grad_norm(fb_model *m);
/* Scale gradients so their global norm is at most max_norm (as
 * torch.nn.utils.clip_grad_norm_); returns the norm before clipping. */
double    fb_clip_grad_norm(fb_model *m, double max_norm);
/* The factor clip_grad_norm_ would multiply the gradients by (1 if the norm
 * is within max_norm or max_norm <= 0). */
float     fb_clip_coef(double norm, double max_norm);

/* Linear warmup over warmup steps, then cosine decay to min_lr at total. */
float fb_lr_schedule(long step, long warmup, long total, float max_lr, float min_lr);
#endif
