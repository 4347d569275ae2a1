#include "cli/bench_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
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

extern char **environ;

/* environ minus the names in unset, plus set: a NULL-terminated array of
 * borrowed strings (free the array only). */
static char **child_env(const char *const *unset, char *const *set) {
    size_t n = 0, k = 0;
    for (char **e = environ; *e; e++) n++;
    for (char *const *s = set; s && *s; s++) n++;
    char **env = calloc(n + 1, sizeof *env);
    if (!env) return NULL;
    for (char **e = environ; *e; e++) {
        int drop = 0;
        for (const char *const *u = unset; u && *u && !drop; u++) {
            size_t l = strlen(*u);
            drop = strncmp(*e, *u, l) == 0 && (*e)[l] == '=';
        }
        for (char *const *s = set; s && *s && !drop; s++) {
            size_t l = strcspn(*s, "=");
            drop = strncmp(*e, *s, l) == 0 && (*e)[l] == '=';
        }
        if (!drop) env[k++] = *e;
    }
    for (char *const *s = set; s && *s; s++) env[k++] = *s;
    env[k] = NULL;
    return env;
}

int fb_run_self(char *const argv[], const char *const *unset, char *const *set, char *out, size_t out_len) {
    int fds[2];
    if (out_len == 0 || pipe(fds) != 0) return -1;
    char **env = child_env(unset, set);
    posix_spawn_file_actions_t fa;
    int ok = env && posix_spawn_file_actions_init(&fa) == 0;
    pid_t pid = -1;
    if (ok) {
        ok = posix_spawn_file_actions_adddup2(&fa, fds[1], 1) == 0 &&
             posix_spawn_file_actions_addclose(&fa, fds[0]) == 0 && posix_spawn_file_actions_addclose(&fa, fds[1]) == 0;
        fflush(NULL);
        ok = ok && posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, env) == 0;
        posix_spawn_file_actions_destroy(&fa);
    }
    free(env);
    close(fds[1]);
    size_t got = 0;
    while (ok && got + 1 < out_len) {
        ssize_t k = read(fds[0], out + got, out_len - 1 - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    out[got] = '\0';
    char sink[256];
    while (ok && read(fds[0], sink, sizeof sink) > 0) {}   /* the rest, so the child never blocks on a full pipe */
    close(fds[0]);
    if (!ok) return -1;
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}
