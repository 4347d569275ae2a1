/* flashblock bench comm (under mpirun, 2+ ranks): the alpha-beta model of
 * the transport between rank 0 and rank 1 — ping-pong round trips from 8 B
 * to 64 MiB give alpha (latency, the intercept) and beta (bandwidth, the
 * slope), fitted by least squares on time = alpha + bytes/beta — and the
 * time of MPI_Allreduce over all ranks for the same sizes. docs/SCALING.md
 * projects step times from these numbers. */
#include "cli/cli.h"
#include <stdio.h>
#include <string.h>
#ifdef FB_HAVE_MPI
#include "cli/args.h"
#include "cli/bench_util.h"
#include "core/runtime.h"
#include <mpi.h>
#include <stdlib.h>

int fb_bench_comm(int argc, char **argv) {
    const char *cmd = "bench comm";
    long reps = 20, max_mb = 64;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: mpirun -np 2 flashblock bench comm [--reps 20] [--max-mb 64] [--json]\n");
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--reps")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 10000, &reps)) return 2; }
        else if (!strcmp(a, "--max-mb")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 4096, &max_mb)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    int provided, rank, world;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (world < 2) {
        if (rank == 0) fb_cli_error("bench comm: run it under mpirun with at least 2 ranks");
        MPI_Finalize();
        return 1;
    }
    const size_t max_bytes = (size_t)max_mb << 20;
    char *buf = malloc(max_bytes);
    float *fb = malloc(max_bytes);
    if (!buf || !fb) { fb_cli_error("bench comm: out of memory"); MPI_Abort(MPI_COMM_WORLD, 1); return 1; }
    memset(buf, 1, max_bytes);
    for (size_t i = 0; i < max_bytes / 4; i++) fb[i] = 1.0f;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int npts = 0;
    if (rank == 0 && !json) printf("%12s %14s %12s %16s\n", "bytes", "one-way (us)", "GB/s", "allreduce (us)");
    for (size_t bytes = 8; bytes <= max_bytes; bytes *= 4) {
        const int r = bytes >= (1u << 24) ? (int)(reps / 4 > 0 ? reps / 4 : 1) : (int)reps;
        double t[10000];
        for (int k = 0; k < r + 1; k++) {   /* round trips between ranks 0 and 1; the first warms up */
            MPI_Barrier(MPI_COMM_WORLD);
            const double t0 = fb_now_sec();
            if (rank == 0) {
                MPI_Send(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
                MPI_Recv(buf, (int)bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else if (rank == 1) {
                MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(buf, (int)bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
            }
            if (k) t[k - 1] = (fb_now_sec() - t0) / 2;
        }
        const double one_way = fb_median(t, r);
        double ta[10000];
        for (int k = 0; k < r + 1; k++) {
            MPI_Barrier(MPI_COMM_WORLD);
            const double t0 = fb_now_sec();
            MPI_Allreduce(MPI_IN_PLACE, fb, (int)(bytes / 4 > 0 ? bytes / 4 : 1), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            if (k) ta[k - 1] = fb_now_sec() - t0;
        }
        double all = fb_median(ta, r);
        MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        sx += (double)bytes; sy += one_way; sxx += (double)bytes * (double)bytes; sxy += (double)bytes * one_way; npts++;
        if (rank == 0) {
            if (json)
                printf("{\"bench\":\"comm\",\"ranks\":%d,\"bytes\":%zu,\"one_way_us\":%.3f,\"gbs\":%.3f,\"allreduce_us\":%.3f}\n", world, bytes,
                       one_way * 1e6, (double)bytes / one_way / 1e9, all * 1e6);
            else
                printf("%12zu %14.2f %12.3f %16.2f\n", bytes, one_way * 1e6, (double)bytes / one_way / 1e9, all * 1e6);
        }
    }
    const double slope = (npts * sxy - sx * sy) / (npts * sxx - sx * sx), alpha = (sy - slope * sx) / npts;
    if (rank == 0) {
        if (json) printf("{\"bench\":\"comm\",\"ranks\":%d,\"alpha_us\":%.3f,\"beta_gbs\":%.3f}\n", world, alpha * 1e6, 1.0 / slope / 1e9);
        else printf("alpha-beta fit (one way, ranks 0-1): alpha %.2f us, beta %.3f GB/s\n", alpha * 1e6, 1.0 / slope / 1e9);
    }
    free(buf);
    free(fb);
    MPI_Finalize();
    return 0;
}
#else
int fb_bench_comm(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return fb_cli_error("bench comm: this build has no MPI (install libopenmpi-dev and rebuild)");
}
#endif
