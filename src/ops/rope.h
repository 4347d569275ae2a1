/* RoPE angles shared by the forward and backward kernels: for a token at
 * position pos, cs[2i] = cos(pos·theta^(-2i/D)), cs[2i+1] = sin(...), for
 * i < D/2. Computed in double: pos·freq loses ~1e-3 rad in float at pos 32k. */
#ifndef FB_OPS_ROPE_H
#define FB_OPS_ROPE_H
#include <math.h>
#include <stdint.h>

static inline void fb_rope_angles(float *cs, double pos, int64_t D, double theta) {
    for (int64_t i = 0; i < D / 2; i++) {
        double ang = pos * pow(theta, -(double)(2 * i) / (double)D);
        cs[2 * i] = (float)cos(ang);
        cs[2 * i + 1] = (float)sin(ang);
    }
}
#endif
