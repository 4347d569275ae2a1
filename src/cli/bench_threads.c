/*
 * flashblock bench threads: how the OpenMP wait policy behaves when other
 * processes share the cores. A decode-like workload (per "token": 6 layers ×
 * 4 matrix-vector products at the 15M TinyStories shape, one parallel
 * region each) runs in a child process under three wait policies —
 * passive (sleep at once), bounded spinning (GOMP_SPINCOUNT, then sleep; the
 * flashblock default) and active (spin) — first on idle cores, then with one
 * busy-looping process per core.
 */
#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "cli/thread_policy.h"
#include "core/runtime.h"
#include "ops/kernels.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int worker(double seconds, int threads) {
    fb_set_threads(threads);
    const long dim = 288, hidden = 768, layers = 6;
    const long shapes[4][2] = {{dim, 3 * dim}, {dim, dim}, {dim, 2 * hidden}, {hidden, dim}};
    float *w[4], *x = fb_aligned_alloc(4 * 2 * hidden), *y = fb_aligned_alloc(4 * 2 * hidden);
    for (int s = 0; s < 4; s++) {
        size_t n = (size_t)(shapes[s][0] * shapes[s][1] * layers);
        w[s] = fb_aligned_alloc(n * 4);
        for (size_t i = 0; i < n; i++) w[s][i] = (float)(i % 17) * 0.01f;
    }
    for (long i = 0; i < 2 * hidden; i++) x[i] = 0.01f;
    size_t need = 0;
    for (int s = 0; s < 4; s++)
        fb_ws_plan(&need, FB_OP_MATMUL_FWD, &(fb_op_args){.d = {1, shapes[s][0], shapes[s][1]}}, fb_get_threads());
    fb_workspace ws = {0};
    if (fb_workspace_reserve(&ws, need) != FB_OK) return fb_cli_error("%s", fb_last_error());
    long tokens = 0;
    double t0 = fb_now_sec();
    while (fb_now_sec() - t0 < seconds) {
        for (long l = 0; l < layers; l++)
            for (int s = 0; s < 4; s++)
                if (fb_matmul_forward(&ws, y, x, w[s] + l * shapes[s][0] * shapes[s][1], NULL, 1, shapes[s][0],
                                      shapes[s][1]) != FB_OK)
                    return fb_cli_error("%s", fb_last_error());
        tokens++;
    }
    fb_workspace_free(&ws);
    printf("%.2f\n", (double)tokens / (fb_now_sec() - t0));
    return 0;
}

typedef struct { const char *name, *wait_policy, *spincount; } policy;

/* The worker in a fresh process (this binary again) under one policy:
 * OpenMP reads the wait policy once, when its runtime loads. */
static double run_child(const policy *pol, double seconds, int threads) {
    char s[32], t[32], wp[64], sc[64], out[64];
    snprintf(s, sizeof s, "%g", seconds);
    snprintf(t, sizeof t, "%d", threads);
    snprintf(wp, sizeof wp, "OMP_WAIT_POLICY=%s", pol->wait_policy ? pol->wait_policy : "");
    snprintf(sc, sizeof sc, "GOMP_SPINCOUNT=%s", pol->spincount ? pol->spincount : "");
    const char *unset[] = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", NULL};
    char *set[4] = {"FLASHBLOCK_NO_REEXEC=1", NULL, NULL, NULL};
    int k = 1;
    if (pol->wait_policy) set[k++] = wp;
    if (pol->spincount) set[k++] = sc;
    char *argv[] = {"flashblock", "bench", "threads", "--worker", s, t, NULL};
    return fb_run_self(argv, unset, set, out, sizeof out) == 0 ? atof(out) : -1;
}

int fb_bench_threads(int argc, char **argv) {
    const char *cmd = "bench threads";
    long threads = 0;
    double seconds = 3;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--worker") && i + 2 < argc) return worker(atof(argv[i + 1]), atoi(argv[i + 2]));
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: flashblock bench threads [--threads N] [--seconds 3] [--json]\n");
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--threads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--seconds")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_double(cmd, a, v, 0.1, 600, &seconds)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads == 0) threads = cores;
    const policy policies[3] = {{"passive", "passive", NULL}, {"spin-" FB_DEFAULT_SPINCOUNT, NULL, FB_DEFAULT_SPINCOUNT},
                                {"active", "active", NULL}};
    for (int loaded = 0; loaded < 2; loaded++) {
        pid_t load[256];
        int n_load = 0;
        if (loaded)
            for (long c = 0; c < cores && n_load < 256; c++) {
                pid_t p = fork();
                if (p == 0) { volatile unsigned long z = 0; for (;;) z++; }
                if (p > 0) load[n_load++] = p;
            }
        for (int pi = 0; pi < 3; pi++) {
            double tps = run_child(&policies[pi], seconds, (int)threads);
            if (json)
                printf("{\"bench\":\"threads\",\"policy\":\"%s\",\"loaded\":%d,\"threads\":%ld,\"tokens_per_s\":%.2f}\n",
                       policies[pi].name, loaded, threads, tps);
            else
                printf("wait policy %-12s %-6s cores, %ld threads: %8.1f decode steps/s\n", policies[pi].name,
                       loaded ? "loaded" : "idle", threads, tps);
            fflush(stdout);
        }
        for (int k = 0; k < n_load; k++) { kill(load[k], SIGKILL); waitpid(load[k], NULL, 0); }
    }
    return 0;
}
