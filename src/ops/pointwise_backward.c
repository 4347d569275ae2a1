/* Reference backward of RoPE, GELU (tanh and exact), SwiGLU and the residual
 * add (double arithmetic, one thread). */
#include "ops/ops.h"
#include <math.h>

/* rope_backward_ref lives beside rope_forward_ref in pointwise.c: the
 * transpose of a rotation is the rotation by minus the angle. */

fb_status gelu_tanh_backward_ref(const fb_op_args *a) {
    const double k = sqrt(2.0 / M_PI);
    for (int64_t i = 0; i < a->d[0]; i++) {
        double x = fb_in_f32(a, 1)[i];
        double t = tanh(k * (x + 0.044715 * x * x * x));
        double dydx = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
        fb_out_f32(a, 0)[i] = (float)((double)fb_in_f32(a, 0)[i] * dydx);
    }
    return FB_OK;
}

fb_status gelu_backward_ref(const fb_op_args *a) {
    for (int64_t i = 0; i < a->d[0]; i++) {
        double x = fb_in_f32(a, 1)[i];
        double cdf = 0.5 * (1.0 + erf(x / sqrt(2.0))), pdf = exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
        fb_out_f32(a, 0)[i] = (float)((double)fb_in_f32(a, 0)[i] * (cdf + x * pdf));
    }
    return FB_OK;
}

/* y = silu(g)·u: dg = dy·u·σ(g)·(1 + g·(1 - σ(g))), du = dy·silu(g). */
fb_status swiglu_backward_ref(const fb_op_args *a) {
    int64_t N = a->d[0], F = a->d[1];
    const float *dy = fb_in_f32(a, 0), *h = fb_in_f32(a, 1);
    float *dh = fb_out_f32(a, 0);
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < F; i++) {
            double g = h[n * 2 * F + i], u = h[n * 2 * F + F + i], d = dy[n * F + i];
            double sg = 1.0 / (1.0 + exp(-g));
            dh[n * 2 * F + i] = (float)(d * u * sg * (1.0 + g * (1.0 - sg)));
            dh[n * 2 * F + F + i] = (float)(d * g * sg);
        }
    return FB_OK;
}

fb_status residual_backward_ref(const fb_op_args *a) {
    for (int64_t i = 0; i < a->d[0]; i++) {
        fb_out_f32(a, 0)[i] = (float)((double)fb_out_f32(a, 0)[i] + fb_in_f32(a, 0)[i]);
        fb_out_f32(a, 1)[i] = (float)((double)fb_out_f32(a, 1)[i] + fb_in_f32(a, 0)[i]);
    }
    return FB_OK;
}
