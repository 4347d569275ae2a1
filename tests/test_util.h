/* Shared helpers for test programs: data paths, random fills, comparisons. */
#ifndef FB_TEST_UTIL_H
#define FB_TEST_UTIL_H
#include <stddef.h>
#include <stdint.h>

#define FB_TEST_SKIP 77

/* Path of a file under the shared data folder ("gpt2/encoder.json"), taken
 * from $FLASHBLOCK_DATA or ../shared/data beside the source tree. If it does
 * not exist: with CI=true prints an error and exits 1, else prints a skip
 * notice and exits 77 (CTest SKIP_RETURN_CODE). Returns a static buffer. */
const char *fb_test_data_path(const char *relative);

/* Deterministic xorshift-based RNG for tests. */
typedef struct { uint64_t s; } fb_test_rng;
void     fb_test_rng_seed(fb_test_rng *r, uint64_t seed);
uint64_t fb_test_rng_u64(fb_test_rng *r);
float    fb_test_rng_uniform(fb_test_rng *r);            /* [0,1) */
float    fb_test_rng_normal(fb_test_rng *r);
void     fb_test_fill_normal(fb_test_rng *r, float *x, size_t n, float scale);

/* Counters and checks: each CHECK failure is printed and counted; a test
 * returns fb_test_finish() as its exit code. */
extern int fb_test_failures;
#define FB_CHECK(cond, ...) do { if (!(cond)) { fb_test_fail_at(__FILE__, __LINE__, __VA_ARGS__); } } while (0)
void fb_test_fail_at(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int fb_test_finish(const char *name);

/* max |a-b| / max(max|b|, floor): relative to the reference's scale. */
double fb_test_max_rel_err(const float *a, const float *b, size_t n, double floor);
#endif
