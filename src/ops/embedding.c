/* Reference token (+ learned position) embedding, forward and backward
 * (double accumulators, one thread). Token ids are an i32 slot; the caller
 * guarantees 0 <= id < V. */
#include "ops/ops.h"

/* Backward: chain heads [V] and links [B·T] (int64), accumulators [C] (double). */
size_t embedding_backward_ref_ws(const fb_op_args *a, int n_threads) {
    (void)n_threads;
    const int64_t V = a->d[3] > 0 ? a->d[3] : 1, BT = a->d[0] * a->d[1] > 0 ? a->d[0] * a->d[1] : 1;
    return fb_ws_round(sizeof(int64_t) * (size_t)V) + fb_ws_round(sizeof(int64_t) * (size_t)BT) +
           sizeof(double) * (size_t)(a->d[2] > 0 ? a->d[2] : 1);
}

fb_status embedding_forward_ref(const fb_op_args *a) {
    const int32_t *ids = fb_in_i32(a, 0);
    const float *wte = fb_in_f32(a, 1), *wpe = fb_in_f32(a, 2);
    float *y = fb_out_f32(a, 0);
    const int64_t B = a->d[0], T = a->d[1], C = a->d[2];
    for (int64_t bt = 0; bt < B * T; bt++) {
        const float *e = wte + (int64_t)ids[bt] * C, *p = wpe ? wpe + (bt % T) * C : NULL;
        for (int64_t c = 0; c < C; c++) y[bt * C + c] = (float)((double)e[c] + (p ? (double)p[c] : 0.0));
    }
    return FB_OK;
}

/* dwte[v] += Σ of dy over the tokens with id v (each vocabulary row summed
 * once in double, tokens chained per id), dwpe[t] += Σ_b dy[b, t]. */
fb_status embedding_backward_ref(const fb_op_args *a) {
    const float *dy = fb_in_f32(a, 0);
    const int32_t *ids = fb_in_i32(a, 1);
    float *dwte = fb_out_f32(a, 0), *dwpe = fb_out_f32(a, 1);
    const int64_t B = a->d[0], T = a->d[1], C = a->d[2], V = a->d[3], BT = B * T;
    FB_TRY(fb_ws_check(a, embedding_backward_ref_ws(a, 1), "embedding_backward[reference]"));
    int64_t *head = a->ws.data;
    int64_t *next = (int64_t *)((char *)head + fb_ws_round(sizeof(int64_t) * (size_t)(V > 0 ? V : 1)));
    double *acc = (double *)((char *)next + fb_ws_round(sizeof(int64_t) * (size_t)(BT > 0 ? BT : 1)));
    for (int64_t v = 0; v < V; v++) head[v] = -1;
    for (int64_t i = BT - 1; i >= 0; i--) {   /* chains in token order */
        next[i] = head[ids[i]];
        head[ids[i]] = i;
    }
    for (int64_t v = 0; v < V; v++) {
        if (head[v] < 0) continue;
        for (int64_t c = 0; c < C; c++) acc[c] = 0;
        for (int64_t i = head[v]; i >= 0; i = next[i])
            for (int64_t c = 0; c < C; c++) acc[c] += dy[i * C + c];
        for (int64_t c = 0; c < C; c++) dwte[v * C + c] = (float)((double)dwte[v * C + c] + acc[c]);
    }
    if (dwpe)
        for (int64_t t = 0; t < T; t++) {
            for (int64_t c = 0; c < C; c++) acc[c] = 0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t c = 0; c < C; c++) acc[c] += dy[(b * T + t) * C + c];
            for (int64_t c = 0; c < C; c++) dwpe[t * C + c] = (float)((double)dwpe[t * C + c] + acc[c]);
        }
    return FB_OK;
}
