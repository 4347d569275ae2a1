/*
 * FlashAttention backward is deterministic: the same inputs give bitwise the
 * same dq, dk, dv on every run and for any thread count. Each flash variant
 * this CPU runs is called at 1, 2 and 3 OpenMP threads (and twice at 2) on a
 * causal GQA case whose T is not a multiple of the tile, and the gradients
 * are compared with memcmp. The standard (BLAS) variant is not required to be.
 * Arguments (o and lse the true forward outputs) come from tests/op_harness.h;
 * each run gets a fresh workspace of its declared size, garbage-filled.
 */
#include "op_harness.h"
#include "ops/ops.h"
#include "test_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 203, H = 4, HKV = 2, D = 40 };

int main(void) {
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 77);
    const int64_t dims[FB_OP_MAX_D] = {B, T, T, H, HKV, D, 1, H * D, HKV * D, H * D};
    fb_test_op t;
    if (fb_test_op_init(&t, FB_OP_ATTENTION_BWD, dims, NULL, 0, &rng) != 0) {
        FB_CHECK(0, "cannot set up attention backward arguments");
        return fb_test_finish("test_attention_determinism");
    }
    const int threads[4] = {1, 2, 3, 2};
    int tested = 0;
    void *g[4][3] = {{0}};   /* [run][dq, dk, dv] */
    for (const fb_kernel *kern = t.def->variants; kern->fn; kern++) {
        if (strncmp(kern->name, "flash", 5) != 0 || !fb_kernel_runnable(kern)) continue;
        for (int r = 0; r < 4; r++) {
            for (int j = 0; j < 3; j++) memset(t.init[j], 0xA5 + r, t.out_bytes[j]);   /* different garbage each run */
            int ws_ok = 1;
            FB_CHECK(fb_test_op_run(&t, kern, threads[r], 0, &ws_ok) == FB_OK && ws_ok, "%s: run %d failed: %s",
                     kern->name, r, fb_last_error());
            for (int j = 0; j < 3; j++) {
                g[r][j] = malloc(t.out_bytes[j]);
                if (g[r][j]) memcpy(g[r][j], t.out[j], t.out_bytes[j]);
            }
        }
        const char *names[3] = {"dq", "dk", "dv"};
        for (int r = 1; r < 4; r++)
            for (int j = 0; j < 3; j++)
                FB_CHECK(g[0][j] && g[r][j] && memcmp(g[0][j], g[r][j], t.out_bytes[j]) == 0,
                         "%s: %s at %d threads (run %d) differs bitwise from 1 thread", kern->name, names[j],
                         threads[r], r);
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 3; j++) { free(g[r][j]); g[r][j] = NULL; }
        tested++;
    }
    printf("test_attention_determinism: %d flash variant(s) compared at 1, 2, 3 threads\n", tested);
    FB_CHECK(tested > 0, "no flash variant ran");
    fb_test_op_free(&t);
    return fb_test_finish("test_attention_determinism");
}
