/*
 * flashblock bench attention: naive vs standard vs flash attention forward,
 * causal, [B, T, H, D]. Each (kernel, T, D) point runs in its own child
 * process (this binary again, `bench attention --point ...`): median of
 * --reps timed runs after one warm-up, and the peak extra resident memory
 * beyond the inputs and outputs (VmHWM delta: the kernel's workspace pages
 * it touched and anything else).
 * GFLOP/s count only the useful causal FLOPs, 2·2·T²·D/2 per head.
 * --backward times the backward pass instead (o and lse from one forward
 * run beforehand; gradients dq, dk, dv): useful causal FLOPs 5·T²·D per head
 * (five T×T×D products, half of each visible), 2.5× the forward's.
 */
#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/runtime.h"
#include "ops/kernels.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *kernel;   /* flash | standard | naive */
    long B, T, H, Hkv, D, reps, threads, causal, backward;
} attn_point;

/* One point, in the child: prints "seconds extra_bytes" and returns 0. */
static int run_point(const attn_point *p) {
    fb_set_threads((int)p->threads);
    const char *variant = !strcmp(p->kernel, "naive") ? "reference"
                        : !strcmp(p->kernel, "standard") ? "standard_avx512" : "flash_avx512";
    char buf[64];
    /* backward: the forward that makes o and lse is the default (fastest) one */
    const fb_op_id timed = p->backward ? FB_OP_ATTENTION_BWD : FB_OP_ATTENTION_FWD;
    if (fb_op_force_variant(timed, variant) != FB_OK) {   /* fall back to the best ISA present */
        snprintf(buf, sizeof buf, "%s_%s", p->kernel, fb_isa_name(fb_cpu_best_isa()));
        if (fb_op_force_variant(timed, buf) != FB_OK) return 1;
    }
    const size_t nq = (size_t)(p->B * p->T * p->H * p->D), nkv = (size_t)(p->B * p->T * p->Hkv * p->D);
    float *q = fb_aligned_alloc(nq * 4), *k = fb_aligned_alloc(nkv * 4), *v = fb_aligned_alloc(nkv * 4);
    float *o = fb_aligned_alloc(nq * 4), *lse = fb_aligned_alloc((size_t)(p->B * p->H * p->T) * 4);
    if (!q || !k || !v || !o || !lse) return 1;
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < nq; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; q[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5); }
    for (size_t i = 0; i < nkv; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; k[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5); v[i] = k[(i * 7) % nkv]; }
    memset(o, 0, nq * 4);
    memset(lse, 0, (size_t)(p->B * p->H * p->T) * 4);
    float *dout = NULL, *dq = NULL, *dk = NULL, *dv = NULL;
    if (p->backward) {
        dout = fb_aligned_alloc(nq * 4), dq = fb_aligned_alloc(nq * 4);
        dk = fb_aligned_alloc(nkv * 4), dv = fb_aligned_alloc(nkv * 4);
        if (!dout || !dq || !dk || !dv) return 1;
        for (size_t i = 0; i < nq; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; dout[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5); }
        memset(dq, 0, nq * 4);
        memset(dk, 0, nkv * 4);
        memset(dv, 0, nkv * 4);
    }
    #pragma omp parallel
    { volatile int x = omp_get_thread_num(); (void)x; }   /* start the threads before the baseline */
    const size_t base = fb_vm_hwm_bytes();
    const long qs = p->H * p->D, kvs = p->Hkv * p->D;
    /* The workspace is reserved after the baseline: the pages the kernels touch count as their extra memory. */
    const fb_op_args dims = {.d = {p->B, p->T, p->T, p->H, p->Hkv, p->D, p->causal, qs, kvs, qs}};
    size_t need = 0;
    fb_ws_plan(&need, FB_OP_ATTENTION_FWD, &dims, fb_get_threads());
    if (p->backward) fb_ws_plan(&need, FB_OP_ATTENTION_BWD, &dims, fb_get_threads());
    fb_workspace ws = {0};
    if (fb_workspace_reserve(&ws, need) != FB_OK) return 1;
    double times[64];
    int reps = p->reps < 64 ? (int)p->reps : 64;
    /* warm-up (the forward also makes o and lse for the backward) */
    if (fb_attention_forward(&ws, o, lse, q, k, v, p->B, p->T, p->T, p->H, p->Hkv, p->D, (int)p->causal, qs, kvs,
                             qs) != FB_OK)
        return 1;
    if (p->backward && fb_attention_backward(&ws, dq, dk, dv, dout, q, k, v, o, lse, p->B, p->T, p->T, p->H, p->Hkv,
                                             p->D, (int)p->causal, qs, kvs, qs, 0.0f) != FB_OK)
        return 1;
    for (int r = 0; r < reps; r++) {
        double t0 = fb_now_sec();
        fb_status st = p->backward ? fb_attention_backward(&ws, dq, dk, dv, dout, q, k, v, o, lse, p->B, p->T, p->T, p->H,
                                                           p->Hkv, p->D, (int)p->causal, qs, kvs, qs, 0.0f)
                                   : fb_attention_forward(&ws, o, lse, q, k, v, p->B, p->T, p->T, p->H, p->Hkv, p->D,
                                                          (int)p->causal, qs, kvs, qs);
        if (st != FB_OK) return 1;
        times[r] = fb_now_sec() - t0;
    }
    /* backward: the extra memory includes the (small) flash forward scratch */
    size_t peak = fb_vm_hwm_bytes();
    printf("%.17g %.17g\n", fb_median(times, reps), (double)(peak > base ? peak - base : 0));
    return 0;
}

/* Runs one point in a child process; 0 and res[0..1] on success. */
static int run_point_isolated(const attn_point *p, double res[2]) {
    char a[10][32], out[256];
    const long vals[10] = {p->B, p->T, p->H, p->Hkv, p->D, p->reps, p->threads, p->causal, p->backward, 0};
    for (int i = 0; i < 9; i++) snprintf(a[i], sizeof a[i], "%ld", vals[i]);
    snprintf(a[9], sizeof a[9], "%s", p->kernel);
    char *argv[] = {"flashblock", "bench", "attention", "--point", a[9], a[0], a[1], a[2], a[3], a[4], a[5],
                    a[6], a[7], a[8], NULL};
    if (fb_run_self(argv, NULL, NULL, out, sizeof out) != 0) return -1;
    return sscanf(out, "%lf %lf", &res[0], &res[1]) == 2 ? 0 : -1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: flashblock bench attention [--seq 512,1024,...] [--head-dim 64,128] [--heads 12]\n"
            "         [--kv-heads H] [--batch 1] [--threads N] [--kernels flash,standard,naive]\n"
            "         [--reps 5] [--non-causal] [--backward] [--max-naive-seq 2048] [--mem-limit-mb M] [--json]\n"
            "Causal attention forward; median ms, GFLOP/s on useful FLOPs (2·T²·D per head causal,\n"
            "4·T²·D not), peak extra memory.\n"
            "--backward: the backward pass only (o, lse from one forward run beforehand; dq, dk, dv);\n"
            "GFLOP/s on 5·T²·D per head causal, 10·T²·D not (2.5× the forward's).\n"
            "naive and standard refuse sizes whose T×T buffers exceed --mem-limit-mb\n"
            "(default: half the physical memory); naive is skipped above --max-naive-seq.\n");
}

int fb_bench_attention(int argc, char **argv) {
    const char *cmd = "bench attention";
    long seqs[32] = {512, 1024, 2048, 4096, 8192, 16384, 32768}, dims[8] = {64, 128};
    int n_seq = 7, n_dim = 2, json = 0;
    long heads = 12, kv_heads = 0, batch = 1, threads = 0, reps = 5, max_naive = 2048, causal = 1, backward = 0;
    long mem_limit_mb = (long)(fb_phys_mem_bytes() / 2 / (1 << 20));
    int use[3] = {1, 1, 1};   /* flash, standard, naive */
    if (argc == 12 && !strcmp(argv[1], "--point")) {   /* the child of run_point_isolated */
        long v[9];
        for (int i = 0; i < 9; i++) v[i] = atol(argv[3 + i]);
        const attn_point p = {argv[2], v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
        return run_point(&p);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--non-causal")) causal = 0;
        else if (!strcmp(a, "--backward")) backward = 1;
        else if (!strcmp(a, "--seq")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long_list(cmd, a, v, 1, 1 << 20, seqs, 32, &n_seq)) return 2; }
        else if (!strcmp(a, "--head-dim")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long_list(cmd, a, v, 1, 1024, dims, 8, &n_dim)) return 2; }
        else if (!strcmp(a, "--heads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &heads)) return 2; }
        else if (!strcmp(a, "--kv-heads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &kv_heads)) return 2; }
        else if (!strcmp(a, "--batch")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &batch)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--reps")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 64, &reps)) return 2; }
        else if (!strcmp(a, "--max-naive-seq")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &max_naive)) return 2; }
        else if (!strcmp(a, "--mem-limit-mb")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1L << 30, &mem_limit_mb)) return 2; }
        else if (!strcmp(a, "--kernels")) {
            if (!(v = fb_arg_value(cmd, argc, argv, &i))) return 2;
            use[0] = use[1] = use[2] = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (!strcmp(t, "flash")) use[0] = 1;
                else if (!strcmp(t, "standard")) use[1] = 1;
                else if (!strcmp(t, "naive")) use[2] = 1;
                else return fb_cli_usage_error(cmd, "--kernels: unknown kernel '%s' (flash, standard, naive)", t);
            }
        } else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (kv_heads == 0) kv_heads = heads;
    if (heads % kv_heads) return fb_cli_usage_error(cmd, "--kv-heads %ld must divide --heads %ld", kv_heads, heads);
    if (threads == 0) threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *names[3] = {"flash", "standard", "naive"};
    if (!json) {
        printf("attention %s, %s\n", backward ? "backward" : "forward", causal ? "causal" : "non-causal");
        printf("%-9s %7s %4s %7s %11s %9s %12s\n", "kernel", "T", "D", "threads", "ms", "GFLOP/s", "extra_MiB");
    }
    for (int di = 0; di < n_dim; di++)
        for (int si = 0; si < n_seq; si++)
            for (int ki = 0; ki < 3; ki++) {
                if (!use[ki]) continue;
                attn_point p = {names[ki], batch, seqs[si], heads, kv_heads, dims[di], ki == 2 ? 1 : reps, threads, causal, backward};
                const double tt = (double)p.T * (double)p.T;
                if (ki == 2 && p.T > max_naive) {
                    fprintf(stderr, "naive: T=%ld skipped (above --max-naive-seq %ld; it would run for minutes)\n", p.T, max_naive);
                    continue;
                }
                if (ki > 0) {
                    /* standard: one float T×T per thread (backward: two); naive: one double T×T (backward: two) */
                    double need = tt * (ki == 1 ? 4.0 * (double)threads : 8.0) * (backward ? 2.0 : 1.0);
                    if (need > (double)mem_limit_mb * 1048576.0) {
                        fprintf(stderr, "%s: T=%ld refused: its T×T score buffers need %.1f GiB, over the %.1f GiB limit (--mem-limit-mb)\n",
                                names[ki], p.T, need / 1073741824.0, (double)mem_limit_mb / 1024.0);
                        if (json)
                            printf("{\"bench\":\"attention\",\"pass\":\"%s\",\"kernel\":\"%s\",\"T\":%ld,\"head_dim\":%ld,\"heads\":%ld,"
                                   "\"threads\":%ld,\"refused\":true,\"need_bytes\":%.0f,\"limit_bytes\":%.0f}\n",
                                   backward ? "backward" : "forward", names[ki], p.T, p.D, p.H, threads, need,
                                   (double)mem_limit_mb * 1048576.0);
                        continue;
                    }
                }
                double res[2] = {0};
                if (run_point_isolated(&p, res) != 0) {
                    fprintf(stderr, "%s: T=%ld D=%ld failed to run (out of memory?)\n", names[ki], p.T, p.D);
                    continue;
                }
                const double flops = (causal ? 2.0 : 4.0) * (backward ? 2.5 : 1.0) * tt * (double)p.D * (double)(p.B * p.H);
                const double gflops = flops / res[0] / 1e9;
                if (json)
                    printf("{\"bench\":\"attention\",\"pass\":\"%s\",\"kernel\":\"%s\",\"T\":%ld,\"head_dim\":%ld,\"heads\":%ld,\"kv_heads\":%ld,"
                           "\"batch\":%ld,\"threads\":%ld,\"causal\":%ld,\"reps\":%ld,\"ms\":%.3f,\"gflops\":%.2f,\"extra_bytes\":%.0f}\n",
                           backward ? "backward" : "forward", names[ki], p.T, p.D, p.H, p.Hkv, p.B, threads, causal, p.reps, res[0] * 1e3, gflops, res[1]);
                else
                    printf("%-9s %7ld %4ld %7ld %11.2f %9.1f %12.2f\n", names[ki], p.T, p.D, threads, res[0] * 1e3, gflops,
                           res[1] / 1048576.0);
                fflush(stdout);
            }
    return 0;
}
