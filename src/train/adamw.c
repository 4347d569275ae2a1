/* The reference of FB_OP_ADAMW (slots in ops/ops.h): the scalar update,
 * one thread. */
#include "ops/ops.h"
#include <math.h>

fb_status adamw_update_ref(const fb_op_args *a) {
    const float *g = fb_in_f32(a, 0);
    float *p = fb_out_f32(a, 0), *m = fb_out_f32(a, 1), *v = fb_out_f32(a, 2);
    const float decay = a->f[0], gs = a->f[1], b1 = a->f[2], b2 = a->f[3], eps = a->f[4];
    const float inv_sqrt_bc2 = a->f[5], step_size = a->f[6];
    for (int64_t k = 0; k < a->d[0]; k++) {
        float gk = g[k] * gs;
        float pk = p[k] * decay;
        m[k] = b1 * m[k] + (1.0f - b1) * gk;
        v[k] = b2 * v[k] + (1.0f - b2) * (gk * gk);
        p[k] = pk - (step_size * m[k]) / (sqrtf(v[k]) * inv_sqrt_bc2 + eps);
    }
    return FB_OK;
}
