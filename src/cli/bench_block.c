/*
 * flashblock bench block: one transformer block forward (default: gpt2
 * preset, d_model 768, 12 heads, B=4, T=1024) against the same GEMMs run on
 * their own. "GEMM share" = Σ time of the block's GEMMs alone / block time:
 * the fraction of the time-weighted GEMM peak the block reaches. Everything
 * else (norms, attention, activations, residuals) is the remainder.
 */
#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/runtime.h"
#include "flashblock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

double fb_bench_time_matmul(long M, long N, long K, int reps);

int fb_bench_block(int argc, char **argv) {
    const char *cmd = "bench block";
    long d_model = 768, heads = 12, kv_heads = 0, B = 4, T = 1024, threads = 0, reps = 5, d_ff = 0;
    const char *preset = "gpt2";
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: flashblock bench block [--preset gpt2|llama] [--dim 768] [--heads 12] [--kv-heads H]\n"
                   "         [--ff F] [--batch 4] [--seq 1024] [--threads N] [--reps 5] [--json]\n");
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--preset")) {
            if (!(preset = fb_arg_value(cmd, argc, argv, &i))) return 2;
            if (strcmp(preset, "gpt2") && strcmp(preset, "llama"))
                return fb_cli_usage_error(cmd, "--preset: expected gpt2 or llama, got '%s'", preset);
        }
        else if (!strcmp(a, "--dim")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 16, &d_model)) return 2; }
        else if (!strcmp(a, "--heads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &heads)) return 2; }
        else if (!strcmp(a, "--kv-heads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &kv_heads)) return 2; }
        else if (!strcmp(a, "--ff")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 18, &d_ff)) return 2; }
        else if (!strcmp(a, "--batch")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &B)) return 2; }
        else if (!strcmp(a, "--seq")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &T)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--reps")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 64, &reps)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (threads == 0) threads = sysconf(_SC_NPROCESSORS_ONLN);
    fb_set_threads((int)threads);
    fb_block_config cfg;
    if (!strcmp(preset, "gpt2")) {
        cfg = fb_block_config_gpt2((int)d_model, (int)heads);
        if (d_ff) cfg.d_ff = (int)d_ff;
    } else {
        cfg = fb_block_config_llama((int)d_model, (int)heads, (int)(kv_heads ? kv_heads : heads),
                                    (int)(d_ff ? d_ff : (8 * d_model / 3 + 63) / 64 * 64));
    }
    if (kv_heads) cfg.n_kv_heads = (int)kv_heads;
    fb_block *blk;
    if (fb_block_init(&blk, &cfg) != FB_OK) return fb_cli_error("%s", fb_last_error());
    fb_block_init_random(blk, 1);
    const size_t n = (size_t)(B * T * d_model);
    float *x = fb_aligned_alloc(n * 4), *y = fb_aligned_alloc(n * 4);
    if (!x || !y) return fb_cli_error("bench block: out of memory");
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u) % 2000) * 1e-3f - 1.0f;
    double t[64];
    if (fb_block_forward(blk, y, x, (int)B, (int)T, 0) != FB_OK) return fb_cli_error("%s", fb_last_error());
    for (int r = 0; r < reps; r++) {
        double t0 = fb_now_sec();
        fb_block_forward(blk, y, x, (int)B, (int)T, 0);
        t[r] = fb_now_sec() - t0;
    }
    const double block_s = fb_median(t, (int)reps);
    /* The block's GEMMs, each alone. */
    const long N = B * T, C = d_model, D = C / heads, QKV = (heads + 2 * cfg.n_kv_heads) * D, F = cfg.d_ff;
    const long glu = cfg.mlp == FB_MLP_SWIGLU ? 2 : 1;
    const long shapes[4][3] = {{N, QKV, C}, {N, C, C}, {N, glu * F, C}, {N, C, F}};
    double gemm_s = 0, gemm_flops = 0;
    for (int s = 0; s < 4; s++) {
        gemm_s += fb_bench_time_matmul(shapes[s][0], shapes[s][1], shapes[s][2], (int)reps);
        gemm_flops += 2.0 * (double)shapes[s][0] * (double)shapes[s][1] * (double)shapes[s][2];
    }
    const double attn_flops = 2.0 * (double)T * (double)T * (double)D * (double)(B * heads);
    const double share = gemm_s / block_s;
    if (json)
        printf("{\"bench\":\"block\",\"preset\":\"%s\",\"d_model\":%ld,\"heads\":%ld,\"kv_heads\":%d,\"d_ff\":%ld,\"batch\":%ld,"
               "\"T\":%ld,\"threads\":%ld,\"reps\":%ld,\"ms\":%.3f,\"gemm_ms\":%.3f,\"gemm_share\":%.4f,\"gflops\":%.2f}\n",
               preset, d_model, heads, cfg.n_kv_heads, F, B, T, threads, reps, block_s * 1e3, gemm_s * 1e3, share,
               (gemm_flops + attn_flops) / block_s / 1e9);
    else
        printf("block %s d=%ld h=%ld kv=%d ff=%ld B=%ld T=%ld threads=%ld: %.2f ms (%.1f GFLOP/s); its GEMMs alone %.2f ms;"
               " GEMM share %.1f%%\n",
               preset, d_model, heads, cfg.n_kv_heads, F, B, T, threads, block_s * 1e3,
               (gemm_flops + attn_flops) / block_s / 1e9, gemm_s * 1e3, 100 * share);
    free(x);
    free(y);
    fb_block_free(blk);
    return 0;
}
