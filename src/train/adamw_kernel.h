/* Per-step constants of the AdamW element update and its kernels. */
#ifndef FB_TRAIN_ADAMW_KERNEL_H
#define FB_TRAIN_ADAMW_KERNEL_H
#include <stdint.h>

typedef struct fb_adamw_coefs {
    float decay;          /* 1 - lr·weight_decay */
    float grad_scale;     /* clipping coefficient */
    float beta1, beta2, eps;
    float inv_sqrt_bc2;   /* 1 / sqrt(1 - beta2^t) */
    float step_size;      /* lr / (1 - beta1^t) */
} fb_adamw_coefs;

typedef void (*fb_adamw_update_fn)(float *p, const float *g, float *m, float *v, int64_t n, const fb_adamw_coefs *c);
void fb_adamw_update_ref(float *p, const float *g, float *m, float *v, int64_t n, const fb_adamw_coefs *c);
void fb_adamw_update_generic(float *p, const float *g, float *m, float *v, int64_t n, const fb_adamw_coefs *c);
void fb_adamw_update_avx2(float *p, const float *g, float *m, float *v, int64_t n, const fb_adamw_coefs *c);
void fb_adamw_update_avx512(float *p, const float *g, float *m, float *v, int64_t n, const fb_adamw_coefs *c);
fb_adamw_update_fn fb_adamw_update_best(void);
#endif
