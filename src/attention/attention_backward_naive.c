/* Naive attention backward: the reference every attention backward kernel is
 * tested against. Per (batch, head) it materialises the full Tq×Tk matrices
 * in double:
 *   P  = exp(scale·Q·Kᵀ − lse)   (lse: the saved natural-log logsumexp; masked entries 0)
 *   dP = dO·Vᵀ,  Dv = rowsum(dO ∘ O),  dS = P ∘ (dP − Dv)
 *   dQ = scale·dS·K,  dK += scale·dSᵀ·Q,  dV += Pᵀ·dO
 * with the dK/dV of every query head of a GQA group summed into the shared
 * KV head. Obvious and slow on purpose.
 *
 * Also here: the test-input hook that makes o and lse the true forward
 * outputs of q, k, v. */
#include "ops/ops.h"
#include <math.h>
#include <string.h>

void attention_backward_prepare(const int64_t *d, void *const *in, void *const *out, uint64_t seed);

/* P and dS [Tq, Tk], the dK and dV of one KV head [Tk, D], all double. */
size_t attention_backward_naive_ws(const fb_op_args *a, int n_threads) {
    (void)n_threads;
    const int64_t Tq = a->d[1], Tk = a->d[2], D = a->d[5];
    return 2 * fb_ws_round(sizeof(double) * (size_t)(Tq * Tk > 0 ? Tq * Tk : 1)) +
           2 * fb_ws_round(sizeof(double) * (size_t)(Tk * D > 0 ? Tk * D : 1));
}

fb_status attention_backward_naive(const fb_op_args *a) {
    const float *q = fb_in_f32(a, 0), *k = fb_in_f32(a, 1), *v = fb_in_f32(a, 2);
    const float *o = fb_in_f32(a, 3), *lse = fb_in_f32(a, 4), *dout = fb_in_f32(a, 5);
    float *dq = fb_out_f32(a, 0), *dk = fb_out_f32(a, 1), *dv = fb_out_f32(a, 2);
    const int64_t B = a->d[0], Tq = a->d[1], Tk = a->d[2], H = a->d[3], Hkv = a->d[4], D = a->d[5];
    const int causal = (int)a->d[6];
    const int64_t qs = a->d[7], kvs = a->d[8], os = a->d[9];
    const double scale = a->f[0] > 0 ? a->f[0] : 1.0 / sqrt((double)D);
    const int64_t group = H / Hkv, offset = Tk - Tq;
    FB_TRY(fb_ws_check(a, attention_backward_naive_ws(a, 1), "attention_backward[reference]"));
    const size_t tt = fb_ws_round(sizeof(double) * (size_t)(Tq * Tk > 0 ? Tq * Tk : 1));
    const size_t td = fb_ws_round(sizeof(double) * (size_t)(Tk * D > 0 ? Tk * D : 1));
    double *P = a->ws.data, *dS = (double *)((char *)P + tt);
    double *gk = (double *)((char *)dS + tt), *gv = (double *)((char *)gk + td);
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
    return FB_OK;
}

/* Tests: o and lse become the forward outputs of the random q, k, v (with the
 * default scale), so the gradients are those of a real softmax. */
void attention_backward_prepare(const int64_t *d, void *const *in, void *const *out, uint64_t seed) {
    (void)out; (void)seed;
    const int64_t B = d[0], Tq = d[1], Tk = d[2], H = d[3], Hkv = d[4], D = d[5];
    fb_op_args f = {.in = {fb_src_f32(in[0], B * Tq, H * D, d[7]), fb_src_f32(in[1], B * Tk, Hkv * D, d[8]),
                           fb_src_f32(in[2], B * Tk, Hkv * D, d[8])},
                    .out = {fb_dst_f32(in[3], B * Tq, H * D, d[9]), fb_dst_f32(in[4], B * H, Tq, Tq)}};
    memcpy(f.d, d, sizeof f.d);
    fb_workspace ws = {0};
    if (fb_workspace_reserve(&ws, attention_forward_naive_ws(&f, 1)) != FB_OK) return;   /* the comparison fails */
    f.ws = ws;
    (void)attention_forward_naive(&f);
    fb_workspace_free(&ws);
}
