#include "cli/bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double fb_median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

size_t fb_vm_hwm_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) { kb = (size_t)strtoull(line + 6, NULL, 10); break; }
    fclose(f);
    return kb * 1024;
}

size_t fb_phys_mem_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (size_t)pages * (size_t)size : (size_t)8 << 30;
}

int fb_run_isolated(void (*fn)(void *, double *, int), void *ctx, double *result, int n_result) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return -1; }
    if (pid == 0) {
        close(fds[0]);
        double *r = calloc((size_t)n_result, sizeof(double));
        if (r) fn(ctx, r, n_result);
        ssize_t want = (ssize_t)(sizeof(double) * (size_t)n_result);
        _exit(r && write(fds[1], r, (size_t)want) == want ? 0 : 1);
    }
    close(fds[1]);
    size_t got = 0, want = sizeof(double) * (size_t)n_result;
    while (got < want) {
        ssize_t k = read(fds[0], (char *)result + got, want - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return (got == want && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
}
