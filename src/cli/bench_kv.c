/* flashblock bench kv: split-K decode attention (one query token) over a
 * long KV cache, reading K and V contiguously and through a paged block
 * table (blocks of --block tokens scattered over a pool in shuffled order,
 * as the KV cache holds them after churn). Both layouts time the same data;
 * rounds alternate contiguous / paged, and the report gives the medians,
 * the bytes of K and V streamed per call and the paged/contiguous ratio
 * (the target: >= 0.95 at 16k cached tokens). */
#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/runtime.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double time_calls(fb_op_args *a, int reps) {
    if (fb_op_run(FB_OP_ATTENTION_DECODE, a) != FB_OK) return -1;   /* warm */
    const double t0 = fb_now_sec();
    for (int r = 0; r < reps; r++) (void)fb_op_run(FB_OP_ATTENTION_DECODE, a);
    return (fb_now_sec() - t0) / reps;
}

int fb_bench_kv(int argc, char **argv) {
    const char *cmd = "bench kv";
    long T = 16384, H = 12, Hkv = 12, D = 64, bs = 16, reps = 20, rounds = 7, threads = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: flashblock bench kv [--ctx 16384] [--heads 12] [--kv-heads 12] [--head-dim 64] [--block 16]\n"
                   "                           [--reps 20] [--rounds 7] [--threads N] [--json]\n");
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--ctx")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 22, &T)) return 2; }
        else if (!strcmp(a, "--heads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &H)) return 2; }
        else if (!strcmp(a, "--kv-heads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &Hkv)) return 2; }
        else if (!strcmp(a, "--head-dim")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &D)) return 2; }
        else if (!strcmp(a, "--block")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &bs)) return 2; }
        else if (!strcmp(a, "--reps")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 100000, &reps)) return 2; }
        else if (!strcmp(a, "--rounds")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 64, &rounds)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (H % Hkv) return fb_cli_usage_error(cmd, "--heads %ld is not a multiple of --kv-heads %ld", H, Hkv);
    if (threads == 0) threads = sysconf(_SC_NPROCESSORS_ONLN);
    fb_set_threads((int)threads);
    const size_t row = (size_t)(Hkv * D), width = (size_t)((T + bs - 1) / bs), pool = width + width / 4;
    float *q = fb_aligned_alloc(sizeof(float) * (size_t)(H * D)), *o = fb_aligned_alloc(sizeof(float) * (size_t)(H * D));
    float *lse = fb_aligned_alloc(sizeof(float) * (size_t)H);
    float *k = fb_aligned_alloc(sizeof(float) * (size_t)T * row), *v = fb_aligned_alloc(sizeof(float) * (size_t)T * row);
    float *kp = fb_aligned_alloc(sizeof(float) * pool * (size_t)bs * row), *vp = fb_aligned_alloc(sizeof(float) * pool * (size_t)bs * row);
    int32_t *perm = malloc(sizeof(int32_t) * pool);
    if (!q || !o || !lse || !k || !v || !kp || !vp || !perm) return fb_cli_error("bench kv: cannot allocate a %ld-token cache", T);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < (size_t)T * row; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; k[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5); v[i] = -k[i]; }
    for (long i = 0; i < H * D; i++) q[i] = k[i % (long)row];
    for (size_t i = 0; i < pool; i++) perm[i] = (int32_t)i;
    for (size_t i = pool - 1; i > 0; i--) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; size_t j = (size_t)(s % (i + 1)); int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
    memset(kp, 0, sizeof(float) * pool * (size_t)bs * row);
    memset(vp, 0, sizeof(float) * pool * (size_t)bs * row);
    for (long j = 0; j < T; j++) {
        const size_t at = ((size_t)perm[j / bs] * (size_t)bs + (size_t)(j % bs)) * row;
        memcpy(kp + at, k + (size_t)j * row, row * sizeof(float));
        memcpy(vp + at, v + (size_t)j * row, row * sizeof(float));
    }
    fb_op_args flat = fb_attention_args(NULL, o, lse, q, k, v, 1, 1, T, H, Hkv, D, 1, H * D, (int64_t)row, H * D);
    fb_op_args paged = fb_attention_args(NULL, o, lse, q, kp, vp, 1, 1, T, H, Hkv, D, 1, H * D, (int64_t)row, H * D);
    fb_attention_args_paged(&paged, perm, bs, (int64_t)width, (int64_t)pool);
    size_t need = 0;   /* the kernel's workspace, planned once as the engine does */
    fb_ws_plan(&need, FB_OP_ATTENTION_DECODE, &flat, (int)threads);
    fb_ws_plan(&need, FB_OP_ATTENTION_DECODE, &paged, (int)threads);
    fb_workspace ws = {0};
    if (fb_workspace_reserve(&ws, need) != FB_OK) return fb_cli_error("bench kv: %s", fb_last_error());
    flat.ws = paged.ws = ws;
    double tc[64], tp[64];
    for (long r = 0; r < rounds; r++) {
        tc[r] = time_calls(&flat, (int)reps);
        tp[r] = time_calls(&paged, (int)reps);
        if (tc[r] < 0 || tp[r] < 0) return fb_cli_error("bench kv: %s", fb_last_error());
    }
    const double mc = fb_median(tc, (int)rounds), mp = fb_median(tp, (int)rounds);
    const double bytes = 2.0 * (double)T * (double)row * 4.0;
    if (json)
        printf("{\"bench\":\"kv\",\"ctx\":%ld,\"heads\":%ld,\"kv_heads\":%ld,\"head_dim\":%ld,\"block\":%ld,\"threads\":%ld,"
               "\"contiguous_us\":%.2f,\"paged_us\":%.2f,\"contiguous_gbs\":%.2f,\"paged_gbs\":%.2f,\"ratio\":%.4f}\n",
               T, H, Hkv, D, bs, threads, mc * 1e6, mp * 1e6, bytes / mc / 1e9, bytes / mp / 1e9, mc / mp);
    else
        printf("decode attention, %ld cached tokens, %ld/%ld heads x %ld, %ld threads (%s), medians of %ld rounds x %ld calls:\n"
               "  contiguous          %9.1f us  %6.2f GB/s of K+V\n"
               "  paged, blocks of %-3ld %9.1f us  %6.2f GB/s of K+V\n"
               "  paged / contiguous speed: %.3f\n",
               T, H, Hkv, D, threads, fb_op_selected_variant(FB_OP_ATTENTION_DECODE), rounds, reps, mc * 1e6, bytes / mc / 1e9, bs,
               mp * 1e6, bytes / mp / 1e9, mc / mp);
    free(q); free(o); free(lse); free(k); free(v); free(kp); free(vp); free(perm);
    fb_workspace_free(&ws);
    return 0;
}
