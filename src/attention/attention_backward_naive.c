/* Naive attention backward: the reference every attention backward kernel is
 * tested against. Per (batch, head) it materialises the full Tq×Tk matrices
 * in double:
 *   P  = exp(scale·Q·Kᵀ − lse)   (lse: the saved natural-log logsumexp; masked entries 0)
 *   dP = dO·Vᵀ,  Dv = rowsum(dO ∘ O),  dS = P ∘ (dP − Dv)
 *   dQ = scale·dS·K,  dK += scale·dSᵀ·Q,  dV += Pᵀ·dO
 * with the dK/dV of every query head of a GQA group summed into the shared
 * KV head. Obvious and slow on purpose.
 *
 * Also here: the buffer sizes of FB_OP_ATTENTION_BWD and the test-input hook
 * that makes o and lse the true forward outputs of q, k, v. */
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void attention_backward_naive(const fb_op_args *a);
void attention_backward_sizes(const int64_t *d, size_t *in, size_t *out);
void attention_backward_prepare_inputs(const int64_t *d, float **in, uint64_t seed);

void attention_backward_naive(const fb_op_args *a) {
    const float *q = a->in[0], *k = a->in[1], *v = a->in[2], *o = a->in[3], *lse = a->in[4], *dout = a->in[5];
    float *dq = a->out[0], *dk = a->out[1], *dv = a->out[2];
    const int64_t B = a->d[0], Tq = a->d[1], Tk = a->d[2], H = a->d[3], Hkv = a->d[4], D = a->d[5];
    const int causal = (int)a->d[6];
    const int64_t qs = a->d[7], kvs = a->d[8], os = a->d[9];
    const double scale = a->f[0] > 0 ? a->f[0] : 1.0 / sqrt((double)D);
    const int64_t group = H / Hkv, offset = Tk - Tq;
    const size_t tt = (size_t)(Tq * Tk > 0 ? Tq * Tk : 1);
    double *P = malloc(sizeof(double) * tt), *dS = malloc(sizeof(double) * tt);
    double *gk = calloc((size_t)(Tk * D > 0 ? Tk * D : 1), sizeof(double));
    double *gv = calloc((size_t)(Tk * D > 0 ? Tk * D : 1), sizeof(double));
    if (!P || !dS || !gk || !gv) abort();   /* reference only: tests size it */
    for (int64_t b = 0; b < B; b++)
        for (int64_t kh = 0; kh < Hkv; kh++) {
            memset(gk, 0, sizeof(double) * (size_t)(Tk * D));
            memset(gv, 0, sizeof(double) * (size_t)(Tk * D));
            for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
                const float *qh = q + b * Tq * qs + h * D, *doh = dout + b * Tq * os + h * D;
                const float *oh = o + b * Tq * os + h * D;
                const float *kb = k + b * Tk * kvs + kh * D, *vb = v + b * Tk * kvs + kh * D;
                for (int64_t i = 0; i < Tq; i++) {
                    const double l = lse[(b * H + h) * Tq + i];
                    double Dv = 0;
                    for (int64_t d = 0; d < D; d++) Dv += (double)doh[i * os + d] * oh[i * os + d];
                    for (int64_t j = 0; j < Tk; j++) {
                        const size_t ij = (size_t)(i * Tk + j);
                        if (causal && j > i + offset) { P[ij] = 0; dS[ij] = 0; continue; }
                        double s = 0, dp = 0;
                        for (int64_t d = 0; d < D; d++) {
                            s += (double)qh[i * qs + d] * kb[j * kvs + d];
                            dp += (double)doh[i * os + d] * vb[j * kvs + d];
                        }
                        P[ij] = exp(s * scale - l);
                        dS[ij] = P[ij] * (dp - Dv);
                    }
                }
                for (int64_t i = 0; i < Tq; i++)
                    for (int64_t d = 0; d < D; d++) {
                        double acc = 0;
                        for (int64_t j = 0; j < Tk; j++) acc += dS[i * Tk + j] * kb[j * kvs + d];
                        dq[(b * Tq + i) * qs + h * D + d] = (float)(scale * acc);
                    }
                for (int64_t j = 0; j < Tk; j++)
                    for (int64_t i = 0; i < Tq; i++) {
                        const double p = P[i * Tk + j], ds = dS[i * Tk + j];
                        if (p == 0 && ds == 0) continue;
                        for (int64_t d = 0; d < D; d++) {
                            gk[j * D + d] += scale * ds * qh[i * qs + d];
                            gv[j * D + d] += p * doh[i * os + d];
                        }
                    }
            }
            for (int64_t j = 0; j < Tk; j++)
                for (int64_t d = 0; d < D; d++) {
                    dk[(b * Tk + j) * kvs + kh * D + d] = (float)gk[j * D + d];
                    dv[(b * Tk + j) * kvs + kh * D + d] = (float)gv[j * D + d];
                }
        }
    free(P);
    free(dS);
    free(gk);
    free(gv);
}

/* in: q, k, v, o, lse, do; out: dq, dk, dv (d: as FB_OP_ATTENTION_FWD) */
void attention_backward_sizes(const int64_t *d, size_t *in, size_t *out) {
    in[0] = out[0] = (size_t)(d[0] * d[1] * d[7]);
    in[1] = in[2] = out[1] = out[2] = (size_t)(d[0] * d[2] * d[8]);
    in[3] = in[5] = (size_t)(d[0] * d[1] * d[9]);
    in[4] = (size_t)(d[0] * d[3] * d[1]);
}

/* Tests: o and lse become the forward outputs of the random q, k, v (with the
 * default scale), so the gradients are those of a real softmax. */
void attention_backward_prepare_inputs(const int64_t *d, float **in, uint64_t seed) {
    (void)seed;
    fb_op_args f = {.in = {in[0], in[1], in[2]}, .out = {in[3], in[4]}};
    memcpy(f.d, d, sizeof f.d);
    attention_forward_naive(&f);
}
