/* RoPE angles shared by the forward and backward kernels: for a token at
 * position pos, cs[2i] = cos(pos·theta^(-2i/D)), cs[2i+1] = sin(...), for
 * i < D/2. Computed in double: pos·freq loses ~1e-3 rad in float at pos 32k. */
#ifndef FB_OPS_ROPE_H
#define FB_OPS_ROPE_H
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include "ops/ops.h"

static inline void fb_rope_angles(float *cs, double pos, int64_t D, double theta) {
    for (int64_t i = 0; i < D / 2; i++) {
        double ang = pos * pow(theta, -(double)(2 * i) / (double)D);
        cs[2 * i] = (float)cos(ang);
        cs[2 * i + 1] = (float)sin(ang);
    }
}
/* Per thread: the cos/sin table of one token, D floats. */
static inline size_t fb_rope_ws(const fb_op_args *a, int n_threads) {
    return (size_t)n_threads * fb_ws_round(sizeof(float) * (size_t)(a->d[3] > 1 ? a->d[3] : 2));
}
/* y = rotation of every interleaved pair (x[2i], x[2i+1]) of every head by
 * sign·angle: sign +1 is the forward pass, -1 its backward (the transpose of
 * a rotation is the rotation by minus the angle). Slots as FB_OP_ROPE_FWD;
 * in place allowed. The cos/sin of a token are shared by all its heads. */
static inline fb_status fb_rope_rotate(const fb_op_args *a, float sign) {
    const float *x = fb_in_f32(a, 0);
    float *y = fb_out_f32(a, 0);
    const int64_t B = a->d[0], T = a->d[1], H = a->d[2], D = a->d[3], stride = a->d[4], pos0 = a->d[5];
    const double theta = a->f[0];
    const int64_t half = D / 2;
    const size_t per_thread = fb_rope_ws(a, 1);
    FB_TRY(fb_ws_check(a, fb_rope_ws(a, omp_get_max_threads()), sign > 0 ? "rope_forward" : "rope_backward"));
    #pragma omp parallel if (B * T * H * D > 65536)
    {
        float *cs = (float *)((char *)a->ws.data + (size_t)omp_get_thread_num() * per_thread);
        #pragma omp for schedule(static)
        for (int64_t bt = 0; bt < B * T; bt++) {
            fb_rope_angles(cs, (double)(pos0 + bt % T), D, theta);
            for (int64_t h = 0; h < H; h++) {
                const float *xp = x + bt * stride + h * D;
                float *yp = y + bt * stride + h * D;
                for (int64_t i = 0; i < half; i++) {
                    const float x0 = xp[2 * i], x1 = xp[2 * i + 1], c = cs[2 * i], s = sign * cs[2 * i + 1];
                    yp[2 * i] = x0 * c - x1 * s;
                    yp[2 * i + 1] = x0 * s + x1 * c;
                }
            }
        }
    }
    return FB_OK;
}
#endif
