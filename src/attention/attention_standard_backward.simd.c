/* "Standard" attention backward: what a user would build from the fastest
 * parts, the baseline FlashAttention backward must beat. Per (batch, KV head)
 * and each of its query heads, with two full Tq×Tk buffers per thread:
 *   P  = exp(scale·Q·Kᵀ − lse)        one BLAS GEMM + a vectorised masked pass
 *   dP = dO·Vᵀ                         GEMM
 *   dS = P ∘ (dP − rowsum(dO ∘ O))     vectorised pass
 *   dQ = scale·dS·K, dK += scale·dSᵀ·Q, dV += Pᵀ·dO   three GEMMs
 * (the first query head of a group writes dK/dV with beta = 0, the others add). */
#include "core/simd.h"
#include "ops/ops.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>


fb_status FB_SIMD(attention_backward_standard)(const fb_op_args *a) {
    const float *q = fb_in_f32(a, 0), *k = fb_in_f32(a, 1), *v = fb_in_f32(a, 2);
    const float *o = fb_in_f32(a, 3), *lse = fb_in_f32(a, 4), *dout = fb_in_f32(a, 5);
    float *dq = fb_out_f32(a, 0), *dk = fb_out_f32(a, 1), *dv = fb_out_f32(a, 2);
    const int64_t B = a->d[0], Tq = a->d[1], Tk = a->d[2], H = a->d[3], Hkv = a->d[4], D = a->d[5];
    const int causal = (int)a->d[6];
    const int64_t qs = a->d[7], kvs = a->d[8], os = a->d[9];
    const float scale = a->f[0] > 0 ? a->f[0] : 1.0f / sqrtf((float)D);
    const int64_t group = H / Hkv, offset = Tk - Tq;
    const fvec l2e = fv_set1(1.44269504088896341f);
    FB_TRY(fb_ws_check(a, attention_backward_standard_ws(a, omp_get_max_threads()), "attention_backward[standard]"));
    const size_t per_thread = attention_backward_standard_ws(a, 1);
    #pragma omp parallel
    {
        float *P = (float *)((char *)a->ws.data + (size_t)omp_get_thread_num() * per_thread);
        float *dS = P + per_thread / 2 / sizeof(float);
        #pragma omp for schedule(dynamic, 1)
        for (int64_t bkh = 0; bkh < B * Hkv; bkh++) {
            const int64_t b = bkh / Hkv, kh = bkh % Hkv;
            const float *kb = k + b * Tk * kvs + kh * D, *vb = v + b * Tk * kvs + kh * D;
            float *dkb = dk + b * Tk * kvs + kh * D, *dvb = dv + b * Tk * kvs + kh * D;
            for (int64_t h = kh * group; h < (kh + 1) * group; h++) {
                const float *qh = q + b * Tq * qs + h * D, *oh = o + b * Tq * os + h * D;
                const float *doh = dout + b * Tq * os + h * D;
                const float beta = h == kh * group ? 0.0f : 1.0f;
                if (Tk == 0 || Tq == 0) {   /* empty products: zero gradients (GEMMs of size 0 write nothing) */
                    for (int64_t i = 0; i < Tq; i++)
                        for (int64_t d = 0; d < D; d++) dq[(b * Tq + i) * qs + h * D + d] = 0.0f;
                    for (int64_t j = 0; j < Tk; j++)
                        for (int64_t d = 0; d < D; d++) dkb[j * kvs + d] = dvb[j * kvs + d] = 0.0f;
                    continue;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Tq, (int)Tk, (int)D, scale, qh, (int)qs,
                            kb, (int)kvs, 0.0f, P, (int)Tk);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Tq, (int)Tk, (int)D, 1.0f, doh, (int)os,
                            vb, (int)kvs, 0.0f, dS, (int)Tk);
                for (int64_t i = 0; i < Tq; i++) {
                    float *p = P + i * Tk, *ds = dS + i * Tk;
                    const int64_t n = causal ? (i + offset + 1 < Tk ? (i + offset + 1 > 0 ? i + offset + 1 : 0) : Tk) : Tk;
                    float dv_ = 0.0f;
                    for (int64_t d = 0; d < D; d++) dv_ += doh[i * os + d] * oh[i * os + d];
                    const fvec vl = fv_set1(lse[(b * H + h) * Tq + i]), vd = fv_set1(dv_);
                    int64_t j = 0;
                    for (; j + FV_N <= n; j += FV_N) {
                        fvec e = fv_exp2(fv_mul(fv_sub(fv_load(p + j), vl), l2e));
                        fv_store(p + j, e);
                        fv_store(ds + j, fv_mul(e, fv_sub(fv_load(ds + j), vd)));
                    }
                    for (; j < n; j++) {
                        p[j] = expf(p[j] - lse[(b * H + h) * Tq + i]);
                        ds[j] = p[j] * (ds[j] - dv_);
                    }
                    for (; j < Tk; j++) p[j] = ds[j] = 0.0f;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Tq, (int)D, (int)Tk, scale, dS, (int)Tk,
                            kb, (int)kvs, 0.0f, dq + b * Tq * qs + h * D, (int)qs);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Tk, (int)D, (int)Tq, scale, dS, (int)Tk,
                            qh, (int)qs, beta, dkb, (int)kvs);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Tk, (int)D, (int)Tq, 1.0f, P, (int)Tk,
                            doh, (int)os, beta, dvb, (int)kvs);
            }
        }
    }
    return FB_OK;
}
