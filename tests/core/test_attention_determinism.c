/*
 * FlashAttention backward is deterministic: the same inputs give bitwise the
 * same dq, dk, dv on every run and for any thread count. Each flash variant
 * this CPU runs is called at 1, 2 and 3 OpenMP threads (and twice at 2) on a
 * causal GQA case whose T is not a multiple of the tile, and the gradients
 * are compared with memcmp. The standard (BLAS) variant is not required to be.
 */
#include "ops/ops.h"
#include "test_util.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 203, H = 4, HKV = 2, D = 40 };

int main(void) {
    const size_t nq = (size_t)B * T * H * D, nkv = (size_t)B * T * HKV * D, nl = (size_t)B * H * T;
    float *q = malloc(nq * 4), *k = malloc(nkv * 4), *v = malloc(nkv * 4), *o = malloc(nq * 4);
    float *lse = malloc(nl * 4), *dout = malloc(nq * 4);
    float *g[4][3];   /* [run][dq, dk, dv] */
    if (!q || !k || !v || !o || !lse || !dout) return 1;
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 77);
    fb_test_fill_normal(&rng, q, nq, 1.0f);
    fb_test_fill_normal(&rng, k, nkv, 1.0f);
    fb_test_fill_normal(&rng, v, nkv, 1.0f);
    fb_test_fill_normal(&rng, dout, nq, 1.0f);
    const int64_t dims[10] = {B, T, T, H, HKV, D, 1, H * D, HKV * D, H * D};
    fb_op_args fa = {.in = {q, k, v}, .out = {o, lse}};
    memcpy(fa.d, dims, sizeof dims);
    attention_forward_naive(&fa);

    const fb_op_def *def = fb_op_get(FB_OP_ATTENTION_BWD);
    FB_CHECK(def && def->reference, "attention backward has no table entry");
    if (!def || !def->reference) return fb_test_finish("test_attention_determinism");
    const int threads[4] = {1, 2, 3, 2};
    int tested = 0;
    for (int vi = 0; vi < FB_OP_MAX_VARIANTS && def->fast[vi].fn; vi++) {
        const fb_kernel *kern = &def->fast[vi];
        if (strncmp(kern->variant, "flash", 5) != 0 || kern->isa > fb_cpu_best_isa()) continue;
        for (int r = 0; r < 4; r++) {
            const size_t n[3] = {nq, nkv, nkv};
            for (int j = 0; j < 3; j++) {
                g[r][j] = malloc(n[j] * 4);
                memset(g[r][j], 0xA5 + r, n[j] * 4);   /* different garbage each run */
            }
            fb_op_args a = {.in = {q, k, v, o, lse, dout}, .out = {g[r][0], g[r][1], g[r][2]}};
            memcpy(a.d, dims, sizeof dims);
            omp_set_num_threads(threads[r]);
            kern->fn(&a);
        }
        const char *names[3] = {"dq", "dk", "dv"};
        const size_t n[3] = {nq, nkv, nkv};
        for (int r = 1; r < 4; r++)
            for (int j = 0; j < 3; j++)
                FB_CHECK(memcmp(g[0][j], g[r][j], n[j] * 4) == 0,
                         "%s: %s at %d threads (run %d) differs bitwise from 1 thread", kern->variant, names[j],
                         threads[r], r);
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 3; j++) free(g[r][j]);
        tested++;
    }
    printf("test_attention_determinism: %d flash variant(s) compared at 1, 2, 3 threads\n", tested);
    FB_CHECK(tested > 0, "no flash variant ran");
    free(q); free(k); free(v); free(o); free(lse); free(dout);
    return fb_test_finish("test_attention_determinism");
}
