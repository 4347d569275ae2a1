/* "Standard" attention: what a user would build from the fastest parts.
 * Per (batch, head): S = scale·Q·Kᵀ with one BLAS GEMM, a vectorised
 * masked softmax pass over S, then O = P·V with a second GEMM. Needs a full
 * Tq×Tk buffer per thread; this is the baseline FlashAttention must beat.
 * Paged K/V (a block table) are first gathered into contiguous Tk×D copies
 * per head: BLAS needs one leading dimension. */
#include "attention/attention_plan.h"
#include "attention/kv_rows.h"
#include "core/simd.h"
#include "ops/ops.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>


fb_status FB_SIMD(attention_forward_standard)(const fb_op_args *a) {
    const float *q = fb_in_f32(a, 0), *k = fb_in_f32(a, 1), *v = fb_in_f32(a, 2);
    const fb_kv_rows kv = fb_kv_rows_of(a);
    float *o = fb_out_f32(a, 0), *lse = fb_out_f32(a, 1);
    const int64_t B = a->d[0], Tq = a->d[1], Tk = a->d[2], H = a->d[3], Hkv = a->d[4], D = a->d[5];
    const int causal = (int)a->d[6];
    const int64_t qs = a->d[7], kvs = a->d[8], os = a->d[9];
    const float scale = a->f[0] > 0 ? a->f[0] : 1.0f / sqrtf((float)D);
    const int64_t group = H / Hkv, offset = Tk - Tq;
    FB_TRY(fb_ws_check(a, attention_forward_standard_ws(a, omp_get_max_threads()), "attention_forward[standard]"));
    const size_t per_thread = attention_forward_standard_ws(a, 1);
    #pragma omp parallel
    {
        float *S = (float *)((char *)a->ws.data + (size_t)omp_get_thread_num() * per_thread);
        float *gathered = (float *)((char *)S + standard_matrix_bytes(a->d));   /* paged K/V only */
        #pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < B * H; bh++) {
            const int64_t b = bh / H, h = bh % H, kh = h / group;
            const float *qh = q + b * Tq * qs + h * D;
            const float *kh_ = k + b * Tk * kvs + kh * D;
            const float *vh = v + b * Tk * kvs + kh * D;
            int64_t ld = kvs;
            if (kv.table) {
                float *kc = gathered, *vc = gathered + Tk * D;
                for (int64_t j = 0; j < Tk; j++) {
                    const int64_t at = fb_kv_row_offset(&kv, b, j) + kh * D;
                    memcpy(kc + j * D, k + at, sizeof(float) * (size_t)D);
                    memcpy(vc + j * D, v + at, sizeof(float) * (size_t)D);
                }
                kh_ = kc;
                vh = vc;
                ld = D;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Tq, (int)Tk, (int)D, scale, qh, (int)qs,
                        kh_, (int)ld, 0.0f, S, (int)Tk);
            for (int64_t i = 0; i < Tq; i++) {
                float *row = S + i * Tk;
                const int64_t n = causal ? (i + offset + 1 < Tk ? i + offset + 1 : Tk) : Tk;
                fvec mx = fv_set1(-INFINITY);
                int64_t j = 0;
                for (; j + FV_N <= n; j += FV_N) mx = fv_max(mx, fv_load(row + j));
                float m = fv_hmax(mx);
                for (; j < n; j++) m = row[j] > m ? row[j] : m;
                fvec vs = fv_zero(), vm = fv_set1(m);
                const fvec l2e = fv_set1(1.44269504088896341f);
                for (j = 0; j + FV_N <= n; j += FV_N) {
                    fvec e = fv_exp2(fv_mul(fv_sub(fv_load(row + j), vm), l2e));
                    fv_store(row + j, e);
                    vs = fv_add(vs, e);
                }
                float sum = fv_hsum(vs);
                for (; j < n; j++) { row[j] = expf(row[j] - m); sum += row[j]; }
                const fvec inv = fv_set1(1.0f / sum);
                for (j = 0; j + FV_N <= n; j += FV_N) fv_store(row + j, fv_mul(fv_load(row + j), inv));
                for (; j < n; j++) row[j] /= sum;
                for (j = n; j < Tk; j++) row[j] = 0.0f;
                lse[(b * H + h) * Tq + i] = m + logf(sum);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Tq, (int)D, (int)Tk, 1.0f, S, (int)Tk,
                        vh, (int)ld, 0.0f, o + b * Tq * os + h * D, (int)os);
        }
    }
    return FB_OK;
}
