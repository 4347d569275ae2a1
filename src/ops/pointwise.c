/* Reference RoPE, GELU (tanh and exact), SwiGLU and residual add. */
#include "ops/ops.h"
#include "ops/rope.h"
#include <math.h>

/* The fast RoPE kernels' workspace (the reference needs none). */
size_t rope_ws(const fb_op_args *a, int n_threads) { return fb_rope_ws(a, n_threads); }

/* Rotate each interleaved pair by sign·angle: +1 forward, -1 backward. */
static void rope_rotate_ref(const fb_op_args *a, double sign) {
    const float *x = fb_in_f32(a, 0);
    float *y = fb_out_f32(a, 0);
    int64_t B = a->d[0], T = a->d[1], H = a->d[2], D = a->d[3], stride = a->d[4], pos0 = a->d[5];
    double theta = a->f[0];
    for (int64_t bt = 0; bt < B * T; bt++) {
        int64_t pos = pos0 + bt % T;
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < D; i += 2) {
                double freq = pow(theta, -(double)i / (double)D);
                double ang = (double)pos * freq, c = cos(ang), s = sign * sin(ang);
                const float *xp = x + bt * stride + h * D + i;
                float *yp = y + bt * stride + h * D + i;
                double x0 = xp[0], x1 = xp[1];
                yp[0] = (float)(x0 * c - x1 * s);
                yp[1] = (float)(x0 * s + x1 * c);
            }
    }
}

fb_status rope_forward_ref(const fb_op_args *a) { rope_rotate_ref(a, 1.0); return FB_OK; }
fb_status rope_backward_ref(const fb_op_args *a) { rope_rotate_ref(a, -1.0); return FB_OK; }

fb_status gelu_tanh_forward_ref(const fb_op_args *a) {
    const double k = sqrt(2.0 / M_PI);
    for (int64_t i = 0; i < a->d[0]; i++) {
        double x = fb_in_f32(a, 0)[i];
        fb_out_f32(a, 0)[i] = (float)(0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x))));
    }
    return FB_OK;
}

fb_status gelu_forward_ref(const fb_op_args *a) {
    for (int64_t i = 0; i < a->d[0]; i++) {
        double x = fb_in_f32(a, 0)[i];
        fb_out_f32(a, 0)[i] = (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
    }
    return FB_OK;
}

fb_status swiglu_forward_ref(const fb_op_args *a) {
    int64_t N = a->d[0], F = a->d[1];
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < F; i++) {
            double g = fb_in_f32(a, 0)[n * 2 * F + i], u = fb_in_f32(a, 0)[n * 2 * F + F + i];
            fb_out_f32(a, 0)[n * F + i] = (float)(g / (1.0 + exp(-g)) * u);
        }
    return FB_OK;
}

fb_status residual_forward_ref(const fb_op_args *a) {
    const float *p = fb_in_f32(a, 0), *q = fb_in_f32(a, 1);
    float *y = fb_out_f32(a, 0);
    for (int64_t i = 0; i < a->d[0]; i++) y[i] = (float)((double)p[i] + q[i]);
    return FB_OK;
}
