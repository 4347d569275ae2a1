/* Benchmark plumbing: wall-clock timing, medians, and running one
 * measurement in a child process so its peak memory (VmHWM) is its own. */
#ifndef FB_CLI_BENCH_UTIL_H
#define FB_CLI_BENCH_UTIL_H
#include <stddef.h>

double fb_median(double *v, int n);      /* sorts v */
size_t fb_vm_hwm_bytes(void);            /* peak resident set of this process */
size_t fb_phys_mem_bytes(void);

/* Runs fn(ctx, result, n_result) in a forked child and copies back up to
 * n_result doubles. Returns 0 on success, -1 if the child failed. The parent
 * must not have started OpenMP threads (fork + threads do not mix). */
int fb_run_isolated(void (*fn)(void *ctx, double *result, int n_result), void *ctx, double *result, int n_result);
#endif
