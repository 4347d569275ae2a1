/* flashblock bench gemm: fp32 GEMM throughput of the matmul op (fb_sgemm:
 * our AVX-512 kernel, or OpenBLAS without AVX-512; column blocks split over
 * our threads) at M×N×K, default 4096×3072×768 — the roofline the attention
 * and block targets refer to. */
#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/runtime.h"
#include "ops/kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Median seconds of y[M,N] = x[M,K]·W[N,K]ᵀ over reps (after a warm-up). */
double fb_bench_time_matmul(long M, long N, long K, int reps);

double fb_bench_time_matmul(long M, long N, long K, int reps) {
    float *x = fb_aligned_alloc((size_t)(M * K) * 4), *W = fb_aligned_alloc((size_t)(N * K) * 4);
    float *y = fb_aligned_alloc((size_t)(M * N) * 4);
    if (!x || !W || !y) { free(x); free(W); free(y); return -1; }
    for (long i = 0; i < M * K; i++) x[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (long i = 0; i < N * K; i++) W[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    double t[64];
    if (reps > 64) reps = 64;
    fb_workspace ws = {0};
    fb_status st = fb_workspace_reserve(&ws, fb_op_workspace(FB_OP_MATMUL_FWD, &(fb_op_args){.d = {M, K, N}},
                                                             fb_get_threads()));
    if (st == FB_OK) st = fb_matmul_forward(&ws, y, x, W, NULL, M, K, N);   /* warm-up */
    for (int r = 0; r < reps && st == FB_OK; r++) {
        double t0 = fb_now_sec();
        st = fb_matmul_forward(&ws, y, x, W, NULL, M, K, N);
        t[r] = fb_now_sec() - t0;
    }
    fb_workspace_free(&ws);
    free(x); free(W); free(y);
    return st == FB_OK ? fb_median(t, reps) : -1;
}

int fb_bench_gemm(int argc, char **argv) {
    const char *cmd = "bench gemm";
    long M = 4096, N = 3072, K = 768, threads = 0, reps = 5;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: flashblock bench gemm [--m 4096] [--n 3072] [--k 768] [--threads N] [--reps 5] [--json]\n");
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--m")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &M)) return 2; }
        else if (!strcmp(a, "--n")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &N)) return 2; }
        else if (!strcmp(a, "--k")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &K)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--reps")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 64, &reps)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (threads == 0) threads = sysconf(_SC_NPROCESSORS_ONLN);
    fb_set_threads((int)threads);
    double s = fb_bench_time_matmul(M, N, K, (int)reps);
    if (s < 0) return fb_cli_error("bench gemm: cannot allocate %ldx%ldx%ld matrices", M, N, K);
    double gflops = 2.0 * (double)M * (double)N * (double)K / s / 1e9;
    if (json)
        printf("{\"bench\":\"gemm\",\"M\":%ld,\"N\":%ld,\"K\":%ld,\"threads\":%ld,\"reps\":%ld,\"ms\":%.3f,\"gflops\":%.2f}\n", M, N,
               K, threads, reps, s * 1e3, gflops);
    else
        printf("sgemm %ldx%ldx%ld, %ld threads: %.2f ms, %.1f GFLOP/s\n", M, N, K, threads, s * 1e3, gflops);
    return 0;
}
