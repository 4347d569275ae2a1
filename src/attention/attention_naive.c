/* Naive attention: the reference every other attention kernel is tested
 * against. Materialises the full Tq×Tk score matrix of a head in double,
 * softmax in double, then P·V. Obvious and slow on purpose. K and V may be
 * contiguous or paged (a block table, see attention/kv_rows.h). */
#include "attention/kv_rows.h"
#include "ops/ops.h"
#include <math.h>

/* The Tq×Tk scores of one head, in double. */
size_t attention_forward_naive_ws(const fb_op_args *a, int n_threads) {
    (void)n_threads;
    return sizeof(double) * (size_t)(a->d[1] * a->d[2] > 0 ? a->d[1] * a->d[2] : 1);
}

fb_status attention_forward_naive(const fb_op_args *a) {
    const float *q = fb_in_f32(a, 0), *k = fb_in_f32(a, 1), *v = fb_in_f32(a, 2);
    const fb_kv_rows kv = fb_kv_rows_of(a);
    float *o = fb_out_f32(a, 0), *lse = fb_out_f32(a, 1);
    const int64_t B = a->d[0], Tq = a->d[1], Tk = a->d[2], H = a->d[3], Hkv = a->d[4], D = a->d[5];
    const int causal = (int)a->d[6];
    const int64_t qs = a->d[7], os = a->d[9];
    const double scale = a->f[0] > 0 ? a->f[0] : 1.0 / sqrt((double)D);
    const int64_t group = H / Hkv, offset = Tk - Tq;
    FB_TRY(fb_ws_check(a, attention_forward_naive_ws(a, 1), "attention_forward[reference]"));
    double *S = a->ws.data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t kh = h / group;
            for (int64_t i = 0; i < Tq; i++)
                for (int64_t j = 0; j < Tk; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < D; d++)
                        s += (double)q[(b * Tq + i) * qs + h * D + d] * k[fb_kv_row_offset(&kv, b, j) + kh * D + d];
                    S[i * Tk + j] = (causal && j > i + offset) ? -INFINITY : s * scale;
                }
            for (int64_t i = 0; i < Tq; i++) {
                double *row = S + i * Tk, mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < Tk; j++) mx = row[j] > mx ? row[j] : mx;
                for (int64_t j = 0; j < Tk; j++) { row[j] = exp(row[j] - mx); sum += row[j]; }
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < Tk; j++) acc += row[j] * v[fb_kv_row_offset(&kv, b, j) + kh * D + d];
                    o[(b * Tq + i) * os + h * D + d] = (float)(acc / sum);
                }
                lse[(b * H + h) * Tq + i] = (float)(mx + log(sum));
            }
        }
    return FB_OK;
}
