#include "test_util.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fb_test_failures = 0;

const char *fb_test_data_path(const char *relative) {
    static char path[4096];
    const char *root = getenv("FLASHBLOCK_DATA");
    if (!root || !*root) root = FB_DEFAULT_DATA_DIR;
    snprintf(path, sizeof path, "%s/%s", root, relative);
    if (access(path, R_OK) == 0) return path;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        fprintf(stderr, "FAIL: required data file %s is missing (CI=true)\n", path);
        exit(1);
    }
    fprintf(stderr, "SKIP: data file %s not found (set FLASHBLOCK_DATA)\n", path);
    exit(FB_TEST_SKIP);
}

void fb_test_rng_seed(fb_test_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull; if (!r->s) r->s = 1; }
uint64_t fb_test_rng_u64(fb_test_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}
float fb_test_rng_uniform(fb_test_rng *r) { return (float)(fb_test_rng_u64(r) >> 40) / 16777216.0f; }
float fb_test_rng_normal(fb_test_rng *r) {
    float u1 = fb_test_rng_uniform(r), u2 = fb_test_rng_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}
void fb_test_fill_normal(fb_test_rng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * fb_test_rng_normal(r);
}

void fb_test_fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fb_test_failures++;
}

int fb_test_finish(const char *name) {
    if (fb_test_failures) { fprintf(stderr, "%s: %d check(s) failed\n", name, fb_test_failures); return 1; }
    printf("%s: all checks passed\n", name);
    return 0;
}

double fb_test_max_rel_err(const float *a, const float *b, size_t n, double floor) {
    double maxref = floor, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs((double)b[i]) > maxref) maxref = fabs((double)b[i]);
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= maxdiff)) maxdiff = d;   /* NaN propagates as failure */
        if (isnan(d)) return INFINITY;
    }
    return maxdiff / maxref;
}
