/*
 * Finite-difference check of every reference backward op, in double precision.
 *
 * Each op's forward is written again here in double (the forward formulas,
 * independent of the library), and first checked against the library's
 * float forward reference so that both describe the same function. Then, for
 * a small random problem, the scalar L = Σ r·y (r = the upstream gradient dy
 * handed to the backward) is differentiated numerically by central
 * differences (step 1e-5, in double: truncation and rounding errors ~1e-10)
 * with respect to every element of every differentiable input, and compared
 * with the reference backward (computed in double, stored in float: ~1e-7).
 * Accumulating outputs start from random values which are subtracted again.
 * A deliberately wrong gradient (one element off by 1e-3, and LayerNorm with
 * mean/rstd treated as constants) must fail the same comparison.
 *
 * Also, beyond tests/core/test_ops.c: every fast variant with the optional
 * outputs NULL (LayerNorm db, matmul db, embedding dwpe, cross-entropy
 * forward-only without dh/dW), RoPE backward in place, and bitwise
 * determinism of every fast backward variant for 1, 2, 3 and 5 threads.
 */
#include "op_harness.h"
#include "ops/ops.h"
#include "test_util.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_STEP 1e-5
#define FD_TOL 2e-6       /* max |analytic - numeric| / max |numeric| */

static fb_test_rng rng;
/* A slot by its data pointer; run_ref / fb_test_args_complete add dtype and shape. */
#define S(p) {.data = (p)}
/* The op's reference on hand-built arguments: slots completed from the
 * declaration (dtypes, shapes), a workspace of the declared size. */
static void run_ref(fb_op_id op, fb_op_args *a) {
    fb_test_args_complete(op, a);
    const fb_status st = fb_test_run_kernel(&fb_op_get(op)->reference, a, 1);
    FB_CHECK(st == FB_OK, "%s reference: %s", fb_op_get(op)->name, fb_last_error());
}

/* ---- double forwards: L = Σ r·y ---- */
typedef struct {
    fb_op_id op;
    int64_t d[8];
    double eps, theta, scale;
    double *x[3];        /* differentiable inputs */
    int64_t nx[3];
    int n_x;
    const double *r;     /* upstream gradient (== the float dy given to the backward) */
    const int32_t *ids;  /* embedding ids / cross-entropy targets */
    double *y;           /* optional: forward output (loss per row for CE) */
} problem;

static double loss_of(problem *p) {
    const int64_t *d = p->d;
    double L = 0;
    switch (p->op) {
    case FB_OP_LAYERNORM_BWD: {   /* x, w, b */
        int64_t N = d[0], C = d[1];
        for (int64_t n = 0; n < N; n++) {
            const double *x = p->x[0] + n * C;
            double m = 0, v = 0;
            for (int64_t c = 0; c < C; c++) m += x[c];
            m /= (double)C;
            for (int64_t c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
            double r = 1.0 / sqrt(v / (double)C + p->eps);
            for (int64_t c = 0; c < C; c++) {
                double y = (x[c] - m) * r * p->x[1][c] + p->x[2][c];
                if (p->y) p->y[n * C + c] = y;
                L += p->r[n * C + c] * y;
            }
        }
        break;
    }
    case FB_OP_RMSNORM_BWD: {     /* x, w */
        int64_t N = d[0], C = d[1];
        for (int64_t n = 0; n < N; n++) {
            const double *x = p->x[0] + n * C;
            double ss = 0;
            for (int64_t c = 0; c < C; c++) ss += x[c] * x[c];
            double r = 1.0 / sqrt(ss / (double)C + p->eps);
            for (int64_t c = 0; c < C; c++) {
                double y = x[c] * r * p->x[1][c];
                if (p->y) p->y[n * C + c] = y;
                L += p->r[n * C + c] * y;
            }
        }
        break;
    }
    case FB_OP_MATMUL_BWD: {      /* x, W, b */
        int64_t N = d[0], C = d[1], OC = d[2];
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) {
                double y = p->x[2][o];
                for (int64_t c = 0; c < C; c++) y += p->x[0][n * C + c] * p->x[1][o * C + c];
                if (p->y) p->y[n * OC + o] = y;
                L += p->r[n * OC + o] * y;
            }
        break;
    }
    case FB_OP_ROPE_BWD: {        /* x (strided rows) */
        int64_t B = d[0], T = d[1], H = d[2], D = d[3], S = d[4], pos0 = d[5];
        for (int64_t bt = 0; bt < B * T; bt++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < D; i += 2) {
                    double ang = (double)(pos0 + bt % T) * pow(p->theta, -(double)i / (double)D);
                    int64_t k = bt * S + h * D + i;
                    double x0 = p->x[0][k], x1 = p->x[0][k + 1];
                    double y0 = x0 * cos(ang) - x1 * sin(ang), y1 = x0 * sin(ang) + x1 * cos(ang);
                    if (p->y) { p->y[k] = y0; p->y[k + 1] = y1; }
                    L += p->r[k] * y0 + p->r[k + 1] * y1;
                }
        break;
    }
    case FB_OP_GELU_TANH_BWD:
    case FB_OP_GELU_BWD:
        for (int64_t i = 0; i < d[0]; i++) {
            double x = p->x[0][i], y;
            if (p->op == FB_OP_GELU_TANH_BWD)
                y = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
            else
                y = 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
            if (p->y) p->y[i] = y;
            L += p->r[i] * y;
        }
        break;
    case FB_OP_SWIGLU_BWD: {      /* h = [gate | up] */
        int64_t N = d[0], F = d[1];
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < F; i++) {
                double g = p->x[0][n * 2 * F + i], u = p->x[0][n * 2 * F + F + i];
                double y = g / (1.0 + exp(-g)) * u;
                if (p->y) p->y[n * F + i] = y;
                L += p->r[n * F + i] * y;
            }
        break;
    }
    case FB_OP_RESIDUAL_BWD:      /* a, b */
        for (int64_t i = 0; i < d[0]; i++) {
            double y = p->x[0][i] + p->x[1][i];
            if (p->y) p->y[i] = y;
            L += p->r[i] * y;
        }
        break;
    case FB_OP_EMBEDDING_BWD: {   /* wte, wpe */
        int64_t B = d[0], T = d[1], C = d[2];
        for (int64_t bt = 0; bt < B * T; bt++)
            for (int64_t c = 0; c < C; c++) {
                double y = p->x[0][(int64_t)p->ids[bt] * C + c] + p->x[1][(bt % T) * C + c];
                if (p->y) p->y[bt * C + c] = y;
                L += p->r[bt * C + c] * y;
            }
        break;
    }
    case FB_OP_CROSSENTROPY_FUSED: {   /* h, W; L = grad_scale · Σ loss over kept rows */
        int64_t N = d[0], C = d[1], V = d[2];
        double *lg = malloc(sizeof(double) * (size_t)V);
        for (int64_t n = 0; n < N; n++) {
            if (p->ids[n] < 0) { if (p->y) p->y[n] = 0; continue; }
            double mx = -INFINITY, s = 0;
            for (int64_t v = 0; v < V; v++) {
                lg[v] = 0;
                for (int64_t c = 0; c < C; c++) lg[v] += p->x[0][n * C + c] * p->x[1][v * C + c];
                if (lg[v] > mx) mx = lg[v];
            }
            for (int64_t v = 0; v < V; v++) s += exp(lg[v] - mx);
            double loss = mx + log(s) - lg[p->ids[n]];
            if (p->y) p->y[n] = loss;
            L += p->scale * loss;
        }
        free(lg);
        break;
    }
    default: break;
    }
    return L;
}

/* ---- helpers ---- */
static float *randf(size_t n, float scale) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    fb_test_fill_normal(&rng, p, n, scale);
    return p;
}
static double *to_double(const float *f, size_t n) {
    double *p = malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = f[i];
    return p;
}
static float *copyf(const float *f, size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    memcpy(p, f, sizeof(float) * n);
    return p;
}

/* max |a - num| / max |num| over the elements where mask (if given) is set */
static double grad_err(const double *a, const double *num, int64_t n, const unsigned char *mask) {
    double mx = 1e-12, diff = 0;
    for (int64_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        if (fabs(num[i]) > mx) mx = fabs(num[i]);
        double e = fabs(a[i] - num[i]);
        if (!(e <= diff)) diff = e;
    }
    return isfinite(diff) ? diff / mx : INFINITY;
}

static void numeric_grad(problem *p, int k, double *g) {
    for (int64_t i = 0; i < p->nx[k]; i++) {
        double s = p->x[k][i];
        p->x[k][i] = s + FD_STEP;
        double lp = loss_of(p);
        p->x[k][i] = s - FD_STEP;
        double lm = loss_of(p);
        p->x[k][i] = s;
        g[i] = (lp - lm) / (2 * FD_STEP);
    }
}

/* Analytic gradient out of an output buffer: (out - init) for ACCUMULATE. */
static double *analytic(const float *out, const float *init, int64_t n) {
    double *g = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) g[i] = (double)out[i] - (init ? (double)init[i] : 0.0);
    return g;
}

/* Compare the analytic gradient of input k with the numeric one; returns err. */
static double check_input(problem *p, int k, const double *an, const unsigned char *mask, const char *what) {
    double *num = malloc(sizeof(double) * (size_t)p->nx[k]);
    numeric_grad(p, k, num);
    double e = grad_err(an, num, p->nx[k], mask);
    printf("  %-22s %-6s rel err %.2e\n", fb_op_get(p->op)->name, what, e);
    FB_CHECK(e <= FD_TOL, "%s: gradient of %s off by %.3g (> %.1g)", fb_op_get(p->op)->name, what, e, FD_TOL);
    free(num);
    return e;
}

/* The library's float forward reference vs the double formula above. */
static void check_forward(const char *name, const float *got, const double *want, int64_t n,
                          const unsigned char *mask) {
    double mx = 1e-12, diff = 0;
    for (int64_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= diff)) diff = e;
    }
    FB_CHECK(diff / mx <= 1e-6, "%s: library forward differs from the formula: %.3g", name, diff / mx);
}

/* ---- the finite-difference checks, one per op ---- */
static void fd_layernorm(void) {
    const int64_t N = 3, C = 7;
    float *x = randf(N * C, 1.5f), *w = randf(C, 1.0f), *b = randf(C, 1.0f), *dy = randf(N * C, 1.0f);
    for (int64_t i = 0; i < N * C; i++) x[i] += 0.7f;
    float y[21], mean[3], rstd[3];
    fb_op_args fa = {.in = {S(x), S(w), S(b)}, .out = {S(y), S(mean), S(rstd)}, .d = {N, C}, .f = {1e-5f}};
    run_ref(FB_OP_LAYERNORM_FWD, &fa);
    float *dx0 = randf(N * C, 0.1f), *dw0 = randf(C, 0.1f), *db0 = randf(C, 0.1f);
    float *dx = copyf(dx0, N * C), *dw = copyf(dw0, C), *db = copyf(db0, C);
    fb_op_args ba = {.in = {S(dy), S(x), S(w), S(mean), S(rstd)}, .out = {S(dx), S(dw), S(db)}, .d = {N, C}};
    run_ref(FB_OP_LAYERNORM_BWD, &ba);
    double yd[21];
    problem p = {.op = FB_OP_LAYERNORM_BWD, .d = {N, C}, .eps = 1e-5, .n_x = 3,
                 .x = {to_double(x, N * C), to_double(w, C), to_double(b, C)}, .nx = {N * C, C, C},
                 .r = to_double(dy, N * C), .y = yd};
    loss_of(&p);
    p.y = NULL;
    check_forward("layernorm_forward", y, yd, N * C, NULL);
    double *gx = analytic(dx, dx0, N * C), *gw = analytic(dw, dw0, C), *gb = analytic(db, db0, C);
    check_input(&p, 0, gx, NULL, "dx");
    check_input(&p, 1, gw, NULL, "dw");
    check_input(&p, 2, gb, NULL, "db");

    /* Sanity: wrong gradients must fail the same comparison. */
    double *num = malloc(sizeof(double) * (size_t)(N * C));
    numeric_grad(&p, 0, num);
    double *bad = malloc(sizeof(double) * (size_t)(N * C));
    memcpy(bad, gx, sizeof(double) * (size_t)(N * C));
    double mx = 0;
    for (int64_t i = 0; i < N * C; i++) mx = fabs(num[i]) > mx ? fabs(num[i]) : mx;
    bad[5] += 1e-3 * mx;
    FB_CHECK(grad_err(bad, num, N * C, NULL) > FD_TOL, "sanity: a gradient off by 1e-3 passed");
    for (int64_t n = 0; n < N; n++)   /* mean and rstd treated as constants: dx = rstd·dy·w */
        for (int64_t c = 0; c < C; c++) bad[n * C + c] = (double)rstd[n] * dy[n * C + c] * w[c];
    double e = grad_err(bad, num, N * C, NULL);
    printf("  sanity: wrong LayerNorm dx rel err %.2e (must exceed %.1g)\n", e, FD_TOL);
    FB_CHECK(e > FD_TOL, "sanity: LayerNorm dx without the mean/rstd terms passed (%.3g)", e);
    free(num); free(bad);
    free(gx); free(gw); free(gb);
    for (int k = 0; k < 3; k++) free(p.x[k]);
    free((void *)p.r);
    free(x); free(w); free(b); free(dy); free(dx0); free(dw0); free(db0); free(dx); free(dw); free(db);
}

static void fd_rmsnorm(void) {
    const int64_t N = 3, C = 9;
    float *x = randf(N * C, 1.0f), *w = randf(C, 1.0f), *dy = randf(N * C, 1.0f);
    float y[27], rstd[3];
    fb_op_args fa = {.in = {S(x), S(w)}, .out = {S(y), S(rstd)}, .d = {N, C}, .f = {1e-5f}};
    run_ref(FB_OP_RMSNORM_FWD, &fa);
    float *dx0 = randf(N * C, 0.1f), *dw0 = randf(C, 0.1f);
    float *dx = copyf(dx0, N * C), *dw = copyf(dw0, C);
    fb_op_args ba = {.in = {S(dy), S(x), S(w), S(rstd)}, .out = {S(dx), S(dw)}, .d = {N, C}};
    run_ref(FB_OP_RMSNORM_BWD, &ba);
    double yd[27];
    problem p = {.op = FB_OP_RMSNORM_BWD, .d = {N, C}, .eps = 1e-5, .n_x = 2,
                 .x = {to_double(x, N * C), to_double(w, C)}, .nx = {N * C, C}, .r = to_double(dy, N * C), .y = yd};
    loss_of(&p);
    p.y = NULL;
    check_forward("rmsnorm_forward", y, yd, N * C, NULL);
    double *gx = analytic(dx, dx0, N * C), *gw = analytic(dw, dw0, C);
    check_input(&p, 0, gx, NULL, "dx");
    check_input(&p, 1, gw, NULL, "dw");
    free(gx); free(gw);
    for (int k = 0; k < 2; k++) free(p.x[k]);
    free((void *)p.r);
    free(x); free(w); free(dy); free(dx0); free(dw0); free(dx); free(dw);
}

static void fd_matmul(void) {
    const int64_t N = 3, C = 5, OC = 4;
    float *x = randf(N * C, 1.0f), *W = randf(OC * C, 1.0f), *b = randf(OC, 1.0f), *dy = randf(N * OC, 1.0f);
    float y[12];
    fb_op_args fa = {.in = {S(x), S(W), S(b)}, .out = {S(y)}, .d = {N, C, OC}};
    run_ref(FB_OP_MATMUL_FWD, &fa);
    float *dx0 = randf(N * C, 0.1f), *dW0 = randf(OC * C, 0.1f), *db0 = randf(OC, 0.1f);
    float *dx = copyf(dx0, N * C), *dW = copyf(dW0, OC * C), *db = copyf(db0, OC);
    fb_op_args ba = {.in = {S(dy), S(x), S(W)}, .out = {S(dx), S(dW), S(db)}, .d = {N, C, OC}};
    run_ref(FB_OP_MATMUL_BWD, &ba);
    double yd[12];
    problem p = {.op = FB_OP_MATMUL_BWD, .d = {N, C, OC}, .n_x = 3,
                 .x = {to_double(x, N * C), to_double(W, OC * C), to_double(b, OC)}, .nx = {N * C, OC * C, OC},
                 .r = to_double(dy, N * OC), .y = yd};
    loss_of(&p);
    p.y = NULL;
    check_forward("matmul_forward", y, yd, N * OC, NULL);
    double *gx = analytic(dx, dx0, N * C), *gW = analytic(dW, dW0, OC * C), *gb = analytic(db, db0, OC);
    check_input(&p, 0, gx, NULL, "dx");
    check_input(&p, 1, gW, NULL, "dW");
    check_input(&p, 2, gb, NULL, "db");
    free(gx); free(gW); free(gb);
    for (int k = 0; k < 3; k++) free(p.x[k]);
    free((void *)p.r);
    free(x); free(W); free(b); free(dy); free(dx0); free(dW0); free(db0); free(dx); free(dW); free(db);
}

static void fd_rope(void) {
    /* strided rows with gaps, pos0 != 0 */
    const int64_t B = 2, T = 3, H = 2, D = 6, S = 15, pos0 = 5, n = B * T * S;
    const float theta = 100.0f;
    float *x = randf(n, 1.0f), *dy = randf(n, 1.0f), *y = malloc(sizeof(float) * n), *dx = malloc(sizeof(float) * n);
    unsigned char *mask = calloc((size_t)n, 1);
    for (int64_t bt = 0; bt < B * T; bt++)
        for (int64_t k = 0; k < H * D; k++) mask[bt * S + k] = 1;
    for (int64_t i = 0; i < n; i++) { y[i] = NAN; dx[i] = NAN; }
    fb_op_args fa = {.in = {S(x)}, .out = {S(y)}, .d = {B, T, H, D, S, pos0}, .f = {theta}};
    run_ref(FB_OP_ROPE_FWD, &fa);
    fb_op_args ba = {.in = {S(dy)}, .out = {S(dx)}, .d = {B, T, H, D, S, pos0}, .f = {theta}};
    run_ref(FB_OP_ROPE_BWD, &ba);
    for (int64_t i = 0; i < n; i++) FB_CHECK(mask[i] || isnan(dx[i]), "rope_backward wrote a gap element %lld", (long long)i);
    double *yd = calloc((size_t)n, sizeof(double));
    problem p = {.op = FB_OP_ROPE_BWD, .d = {B, T, H, D, S, pos0}, .theta = theta, .n_x = 1, .x = {to_double(x, n)},
                 .nx = {n}, .r = to_double(dy, n), .y = yd};
    loss_of(&p);
    p.y = NULL;
    check_forward("rope_forward", y, yd, n, mask);
    double *g = analytic(dx, NULL, n);
    check_input(&p, 0, g, mask, "dx");
    free(g); free(yd); free(p.x[0]); free((void *)p.r);
    free(x); free(dy); free(y); free(dx); free(mask);
}

static void fd_unary(fb_op_id op, fb_op_id fwd) {
    const int64_t N = 41;
    float *x = randf(N, 2.0f), *dy = randf(N, 1.0f), y[41], dx[41];
    x[0] = 0.0f; x[1] = -6.0f; x[2] = 5.0f;
    fb_op_args fa = {.in = {S(x)}, .out = {S(y)}, .d = {N}};
    run_ref(fwd, &fa);
    fb_op_args ba = {.in = {S(dy), S(x)}, .out = {S(dx)}, .d = {N}};
    run_ref(op, &ba);
    double yd[41];
    problem p = {.op = op, .d = {N}, .n_x = 1, .x = {to_double(x, N)}, .nx = {N}, .r = to_double(dy, N), .y = yd};
    loss_of(&p);
    p.y = NULL;
    check_forward(fb_op_get(op)->name, y, yd, N, NULL);
    double *g = analytic(dx, NULL, N);
    check_input(&p, 0, g, NULL, "dx");
    free(g); free(p.x[0]); free((void *)p.r); free(x); free(dy);
}

static void fd_swiglu(void) {
    const int64_t N = 3, F = 5;
    float *h = randf(N * 2 * F, 2.0f), *dy = randf(N * F, 1.0f), y[15], dh[30];
    fb_op_args fa = {.in = {S(h)}, .out = {S(y)}, .d = {N, F}};
    run_ref(FB_OP_SWIGLU_FWD, &fa);
    fb_op_args ba = {.in = {S(dy), S(h)}, .out = {S(dh)}, .d = {N, F}};
    run_ref(FB_OP_SWIGLU_BWD, &ba);
    double yd[15];
    problem p = {.op = FB_OP_SWIGLU_BWD, .d = {N, F}, .n_x = 1, .x = {to_double(h, N * 2 * F)}, .nx = {N * 2 * F},
                 .r = to_double(dy, N * F), .y = yd};
    loss_of(&p);
    p.y = NULL;
    check_forward("swiglu_forward", y, yd, N * F, NULL);
    double *g = analytic(dh, NULL, N * 2 * F);
    check_input(&p, 0, g, NULL, "dh");
    free(g); free(p.x[0]); free((void *)p.r); free(h); free(dy);
}

static void fd_residual(void) {
    const int64_t N = 13;
    float *a = randf(N, 1.0f), *b = randf(N, 1.0f), *dy = randf(N, 1.0f), y[13];
    fb_op_args fa = {.in = {S(a), S(b)}, .out = {S(y)}, .d = {N}};
    run_ref(FB_OP_RESIDUAL_FWD, &fa);
    float *da0 = randf(N, 0.1f), *db0 = randf(N, 0.1f), *da = copyf(da0, N), *db = copyf(db0, N);
    fb_op_args ba = {.in = {S(dy)}, .out = {S(da), S(db)}, .d = {N}};
    run_ref(FB_OP_RESIDUAL_BWD, &ba);
    double yd[13];
    problem p = {.op = FB_OP_RESIDUAL_BWD, .d = {N}, .n_x = 2, .x = {to_double(a, N), to_double(b, N)},
                 .nx = {N, N}, .r = to_double(dy, N), .y = yd};
    loss_of(&p);
    p.y = NULL;
    check_forward("residual_forward", y, yd, N, NULL);
    double *ga = analytic(da, da0, N), *gb = analytic(db, db0, N);
    check_input(&p, 0, ga, NULL, "da");
    check_input(&p, 1, gb, NULL, "db");
    free(ga); free(gb); free(p.x[0]); free(p.x[1]); free((void *)p.r);
    free(a); free(b); free(dy); free(da0); free(db0); free(da); free(db);
}

static void fd_embedding(void) {
    const int64_t B = 2, T = 5, C = 3, V = 4;
    int32_t ids[10] = {1, 3, 1, 1, 0, 3, 3, 1, 2, 1};   /* repeats, and across batch rows */
    float *wte = randf(V * C, 1.0f), *wpe = randf(T * C, 1.0f), *dy = randf(B * T * C, 1.0f), y[30];
    fb_op_args fa = {.in = {S(ids), S(wte), S(wpe)}, .out = {S(y)}, .d = {B, T, C, V}};
    run_ref(FB_OP_EMBEDDING_FWD, &fa);
    float *dwte0 = randf(V * C, 0.1f), *dwpe0 = randf(T * C, 0.1f), *dwte = copyf(dwte0, V * C),
          *dwpe = copyf(dwpe0, T * C);
    fb_op_args ba = {.in = {S(dy), S(ids)}, .out = {S(dwte), S(dwpe)}, .d = {B, T, C, V}};
    run_ref(FB_OP_EMBEDDING_BWD, &ba);
    double yd[30];
    problem p = {.op = FB_OP_EMBEDDING_BWD, .d = {B, T, C, V}, .n_x = 2,
                 .x = {to_double(wte, V * C), to_double(wpe, T * C)}, .nx = {V * C, T * C},
                 .r = to_double(dy, B * T * C), .ids = ids, .y = yd};
    loss_of(&p);
    p.y = NULL;
    check_forward("embedding_forward", y, yd, B * T * C, NULL);
    double *g0 = analytic(dwte, dwte0, V * C), *g1 = analytic(dwpe, dwpe0, T * C);
    check_input(&p, 0, g0, NULL, "dwte");
    check_input(&p, 1, g1, NULL, "dwpe");
    free(g0); free(g1); free(p.x[0]); free(p.x[1]); free((void *)p.r);
    free(wte); free(wpe); free(dy); free(dwte0); free(dwpe0); free(dwte); free(dwpe);
}

static void fd_crossentropy(void) {
    const int64_t N = 5, C = 6, V = 11;
    const float scale = 0.25f;
    int32_t tg[5] = {3, -1, 0, 10, 3};
    float *h = randf(N * C, 0.8f), *W = randf(V * C, 0.8f), loss[5];
    float *dh0 = randf(N * C, 0.1f), *dW0 = randf(V * C, 0.1f), *dh = copyf(dh0, N * C), *dW = copyf(dW0, V * C);
    fb_op_args a = {.in = {S(h), S(W), S(tg)}, .out = {S(loss), S(dh), S(dW)}, .d = {N, C, V, 0},
                    .f = {scale}};
    run_ref(FB_OP_CROSSENTROPY_FUSED, &a);
    double yd[5];
    problem p = {.op = FB_OP_CROSSENTROPY_FUSED, .d = {N, C, V}, .scale = scale, .n_x = 2,
                 .x = {to_double(h, N * C), to_double(W, V * C)}, .nx = {N * C, V * C}, .ids = tg, .y = yd};
    loss_of(&p);
    p.y = NULL;
    check_forward("crossentropy_fused (loss)", loss, yd, N, NULL);
    FB_CHECK(loss[1] == 0.0f, "crossentropy: ignored row has loss %g", loss[1]);
    double *gh = analytic(dh, dh0, N * C), *gW = analytic(dW, dW0, V * C);
    for (int64_t c = 0; c < C; c++) FB_CHECK(gh[C + c] == 0.0, "crossentropy: ignored row got a gradient");
    check_input(&p, 0, gh, NULL, "dh");
    check_input(&p, 1, gW, NULL, "dW");
    /* forward_only: same losses, gradients untouched */
    float loss2[5];
    memcpy(dh, dh0, sizeof(float) * N * C);
    a.out[0].data = loss2;
    a.d[3] = 1;
    run_ref(FB_OP_CROSSENTROPY_FUSED, &a);
    FB_CHECK(memcmp(loss, loss2, sizeof loss) == 0, "crossentropy forward_only: different losses");
    FB_CHECK(memcmp(dh, dh0, sizeof(float) * N * C) == 0, "crossentropy forward_only touched dh");
    free(gh); free(gW); free(p.x[0]); free(p.x[1]);
    free(h); free(W); free(dh0); free(dW0); free(dh); free(dW);
}

/* ---- fast variants: optional outputs absent, in place, thread counts ---- */
static void check_variants(fb_op_id op, const int64_t *d8, float f, unsigned null_out, int threads_check) {
    int64_t d[FB_OP_MAX_D] = {0};
    memcpy(d, d8, sizeof(int64_t) * 8);
    const float fs[FB_OP_MAX_F] = {f};
    fb_test_op t;
    if (fb_test_op_init(&t, op, d, fs, 0, &rng) != 0) {
        FB_CHECK(0, "op %d: cannot set up its arguments", (int)op);
        fb_test_op_free(&t);
        return;
    }
    const fb_op_def *def = t.def;
    fb_test_op_reset(&t, null_out);
    FB_CHECK(fb_test_op_run(&t, &def->reference, 1, 0, NULL) == FB_OK, "%s reference: %s", def->name, fb_last_error());
    fb_test_op_keep_ref(&t);
    void *first[FB_OP_MAX_OUT] = {0};
    for (int o = 0; o < t.n_out; o++) first[o] = malloc(t.out_bytes[o] ? t.out_bytes[o] : 1);
    for (const fb_kernel *k = def->variants; k->fn; k++) {
        if (!fb_kernel_runnable(k)) continue;
        if (!threads_check) {
            FB_CHECK(fb_test_op_run(&t, k, omp_get_num_procs(), 0, NULL) == FB_OK, "%s[%s]: %s", def->name, k->name,
                     fb_last_error());
            for (int o = 0; o < t.n_out; o++) {
                if ((null_out >> o) & 1) {
                    FB_CHECK(memcmp(t.out[o], t.init[o], t.out_bytes[o]) == 0, "%s[%s]: absent output %d was written",
                             def->name, k->name, o);
                    continue;
                }
                double e = fb_test_op_err(&t, o);
                FB_CHECK(e <= def->tolerance, "%s[%s] null_out=%u: output %d rel err %.3g", def->name, k->name,
                         null_out, o, e);
            }
            continue;
        }
        static const int threads[] = {1, 2, 3, 5};
        for (int ti = 0; ti < 4; ti++) {
            FB_CHECK(fb_test_op_run(&t, k, threads[ti], 0, NULL) == FB_OK, "%s[%s] at %d threads: %s", def->name,
                     k->name, threads[ti], fb_last_error());
            for (int o = 0; o < t.n_out; o++) {
                if (!ti) { memcpy(first[o], t.out[o], t.out_bytes[o]); continue; }
                FB_CHECK(memcmp(t.out[o], first[o], t.out_bytes[o]) == 0,
                         "%s[%s]: output %d differs between 1 and %d threads", def->name, k->name, o, threads[ti]);
            }
        }
        for (int o = 0; o < t.n_out; o++) {
            memcpy(t.out[o], first[o], t.out_bytes[o]);
            double e = fb_test_op_err(&t, o);
            FB_CHECK(e <= def->tolerance, "%s[%s]: output %d rel err %.3g", def->name, k->name, o, e);
        }
    }
    for (int o = 0; o < t.n_out; o++) free(first[o]);
    fb_test_op_free(&t);
}

static void rope_in_place(void) {
    const fb_op_def *def = fb_op_get(FB_OP_ROPE_BWD);
    const int64_t d[6] = {2, 9, 3, 16, 56, 7}, n = 2 * 9 * 56;
    float *dy = randf(n, 1.0f), *out = malloc(sizeof(float) * n), *buf = malloc(sizeof(float) * n);
    fb_op_args a = {.in = {S(dy)}, .out = {S(out)}, .d = {d[0], d[1], d[2], d[3], d[4], d[5]}, .f = {10000.0f}};
    memcpy(out, dy, sizeof(float) * n);
    run_ref(FB_OP_ROPE_BWD, &a);
    for (const fb_kernel *k = &def->reference; k; k = k == &def->reference ? def->variants : k + 1) {
        if (!k->fn) break;
        if (!fb_kernel_runnable(k)) continue;
        memcpy(buf, dy, sizeof(float) * n);
        fb_op_args b = {.in = {S(buf)}, .out = {S(buf)}, .d = {d[0], d[1], d[2], d[3], d[4], d[5]}, .f = {10000.0f}};
        fb_test_args_complete(FB_OP_ROPE_BWD, &b);
        FB_CHECK(fb_test_run_kernel(k, &b, omp_get_num_procs()) == FB_OK, "rope_backward[%s]: %s", k->name,
                 fb_last_error());
        double e = fb_test_max_rel_err(buf, out, (size_t)n, 1e-6);
        FB_CHECK(e <= def->tolerance, "rope_backward[%s] in place: rel err %.3g", k->name, e);
    }
    free(dy); free(out); free(buf);
}

int main(void) {
    fb_test_rng_seed(&rng, 20240607);
    fb_ops_select();   /* runtime init: OpenBLAS single-threaded inside our OpenMP threads */
    printf("finite differences (double) vs reference backward:\n");
    fd_layernorm();
    fd_rmsnorm();
    fd_matmul();
    fd_rope();
    fd_unary(FB_OP_GELU_TANH_BWD, FB_OP_GELU_TANH_FWD);
    fd_unary(FB_OP_GELU_BWD, FB_OP_GELU_FWD);
    fd_swiglu();
    fd_residual();
    fd_embedding();
    fd_crossentropy();

    printf("fast variants: optional outputs absent, in place\n");
    check_variants(FB_OP_LAYERNORM_BWD, (int64_t[8]){37, 50}, 0, 4, 0);           /* db NULL */
    check_variants(FB_OP_MATMUL_BWD, (int64_t[8]){9, 40, 30}, 0, 4, 0);           /* db NULL */
    check_variants(FB_OP_EMBEDDING_BWD, (int64_t[8]){2, 9, 40, 13}, 0, 2, 0);     /* dwpe NULL */
    check_variants(FB_OP_CROSSENTROPY_FUSED, (int64_t[8]){70, 24, 300, 1}, 1.0f, 6, 0);  /* fwd only, no dh/dW */
    rope_in_place();

    printf("fast variants: same bits for 1, 2, 3 and 5 threads\n");
    check_variants(FB_OP_LAYERNORM_BWD, (int64_t[8]){300, 200}, 0, 0, 1);
    check_variants(FB_OP_RMSNORM_BWD, (int64_t[8]){300, 200}, 0, 0, 1);
    check_variants(FB_OP_MATMUL_BWD, (int64_t[8]){300, 200, 530}, 0, 0, 1);
    check_variants(FB_OP_ROPE_BWD, (int64_t[8]){2, 300, 4, 64, 256, 3}, 10000.0f, 0, 1);
    check_variants(FB_OP_GELU_TANH_BWD, (int64_t[8]){200001}, 0, 0, 1);
    check_variants(FB_OP_GELU_BWD, (int64_t[8]){200001}, 0, 0, 1);
    check_variants(FB_OP_SWIGLU_BWD, (int64_t[8]){300, 300}, 0, 0, 1);
    check_variants(FB_OP_RESIDUAL_BWD, (int64_t[8]){200001}, 0, 0, 1);
    check_variants(FB_OP_EMBEDDING_FWD, (int64_t[8]){4, 100, 200, 1000}, 0, 0, 1);
    check_variants(FB_OP_EMBEDDING_BWD, (int64_t[8]){4, 100, 200, 37}, 0, 0, 1);
    check_variants(FB_OP_CROSSENTROPY_FUSED, (int64_t[8]){150, 96, 1100, 0}, 3.0f, 0, 1);
    return fb_test_finish("test_grad_check");
}
