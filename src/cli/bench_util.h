/* Benchmark plumbing: wall-clock timing, medians, and running one
 * measurement in a child process (this binary again) so its peak memory
 * (VmHWM) and its OpenMP runtime are its own. */
#ifndef FB_CLI_BENCH_UTIL_H
#define FB_CLI_BENCH_UTIL_H
#include <stddef.h>

double fb_median(double *v, int n);      /* sorts v */
size_t fb_vm_hwm_bytes(void);            /* peak resident set of this process */
size_t fb_phys_mem_bytes(void);

/* Runs this program again (/proc/self/exe) with argv, its environment
 * without the variables named in unset (NULL-terminated, or NULL) and with
 * the "NAME=value" entries of set added (or NULL), and reads its standard
 * output into out (NUL-terminated, at most out_len - 1 bytes). Returns the
 * child's exit status, or -1 if it could not run or did not exit normally.
 * A fresh process, not a fork: OpenMP threads of the parent do not matter
 * and the child returns from main like any run. */
int fb_run_self(char *const argv[], const char *const *unset, char *const *set, char *out, size_t out_len);
#endif
