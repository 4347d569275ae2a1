/* Reference token (+ learned position) embedding, forward and backward
 * (double accumulators, one thread). Token ids are int32 values stored in
 * the float slot in[0]; the caller guarantees 0 <= id < V. */
#include "ops/ops.h"
#include <stdlib.h>

void embedding_forward_ref(const fb_op_args *a) {
    const int32_t *ids = (const int32_t *)(const void *)a->in[0];
    const float *wte = a->in[1], *wpe = a->in[2];
    float *y = a->out[0];
    const int64_t B = a->d[0], T = a->d[1], C = a->d[2];
    for (int64_t bt = 0; bt < B * T; bt++) {
        const float *e = wte + (int64_t)ids[bt] * C, *p = wpe ? wpe + (bt % T) * C : NULL;
        for (int64_t c = 0; c < C; c++) y[bt * C + c] = (float)((double)e[c] + (p ? (double)p[c] : 0.0));
    }
}

/* dwte[v] += Σ of dy over the tokens with id v (each vocabulary row summed
 * once in double, tokens chained per id), dwpe[t] += Σ_b dy[b, t]. */
void embedding_backward_ref(const fb_op_args *a) {
    const float *dy = a->in[0];
    const int32_t *ids = (const int32_t *)(const void *)a->in[1];
    float *dwte = a->out[0], *dwpe = a->out[1];
    const int64_t B = a->d[0], T = a->d[1], C = a->d[2], V = a->d[3], BT = B * T;
    int64_t *head = malloc(sizeof(int64_t) * (size_t)(V > 0 ? V : 1));
    int64_t *next = malloc(sizeof(int64_t) * (size_t)(BT > 0 ? BT : 1));
    double *acc = malloc(sizeof(double) * (size_t)(C > 0 ? C : 1));
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
    free(head);
    free(next);
    free(acc);
}
