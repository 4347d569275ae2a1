/* flashblock demo: run one gpt2-preset transformer block on random input,
 * check it is finite, then the attention benchmark at a few lengths. */
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/runtime.h"
#include "flashblock.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fb_bench_attention(int argc, char **argv);

int fb_cmd_demo(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fb_block_config cfg = fb_block_config_gpt2(768, 12);
    fb_block *blk;
    if (fb_block_init(&blk, &cfg) != FB_OK) return fb_cli_error("%s", fb_last_error());
    fb_block_init_random(blk, 42);
    const int B = 1, T = 1024;
    const size_t n = (size_t)B * T * 768;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    if (!x || !y) return fb_cli_error("demo: out of memory");
    for (size_t i = 0; i < n; i++) x[i] = sinf((float)i * 0.001f);
    double t0 = fb_now_sec();
    if (fb_block_forward(blk, y, x, B, T, 0) != FB_OK) return fb_cli_error("%s", fb_last_error());
    double ms = (fb_now_sec() - t0) * 1e3;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += fabs(y[i] - x[i]);
    printf("gpt2 block (d_model 768, 12 heads, T=%d): forward in %.1f ms, mean |y - x| = %.4f, kernels: %s\n", T, ms,
           sum / (double)n, fb_isa_name(fb_cpu_best_isa()));
    free(x);
    free(y);
    fb_block_free(blk);
    printf("\nattention forward, causal, 12 heads, head_dim 64:\n");
    char *bargv[] = {"attention", "--seq", "512,1024,2048,4096", "--head-dim", "64", "--reps", "3", NULL};
    return fb_bench_attention(7, bargv);
}
