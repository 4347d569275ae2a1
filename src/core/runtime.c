/* CPU feature detection (which compiled kernel set may run) and the thread
 * count shared by all parallel kernels. */
#include "flashblock.h"
#include "core/runtime.h"
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
static fb_isa detect_isa(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return FB_ISA_GENERIC;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave) return FB_ISA_GENERIC;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 6) != 6) return FB_ISA_GENERIC;             /* OS saves SSE+AVX state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return FB_ISA_GENERIC;
    int avx2 = (b >> 5) & 1;
    int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1); /* F DQ BW VL */
    if (avx512 && (xcr0 & 0xE6) == 0xE6 && fma && avx2) return FB_ISA_AVX512;
    if (avx2 && fma && f16c) return FB_ISA_AVX2;
    return FB_ISA_GENERIC;
}
#else
static fb_isa detect_isa(void) { return FB_ISA_GENERIC; }
#endif

const char *fb_isa_name(fb_isa isa) {
    switch (isa) {
    case FB_ISA_GENERIC: return "generic";
    case FB_ISA_AVX2: return "avx2";
    case FB_ISA_AVX512: return "avx512";
    default: return "?";
    }
}

fb_isa fb_cpu_best_isa(void) {
    static int cached = -1;
    if (cached < 0) {
        fb_isa isa = detect_isa();
        const char *force = getenv("FLASHBLOCK_ISA");
        if (force) {
            for (int i = 0; i < FB_ISA_COUNT; i++)
                if (strcmp(force, fb_isa_name((fb_isa)i)) == 0 && i < (int)isa) isa = (fb_isa)i;
        }
        cached = (int)isa;
    }
    return (fb_isa)cached;
}

static int fb_threads = 0;

void fb_runtime_init(void) {
    static int done = 0;
    if (done) return;
    done = 1;
    /* GEMMs are split across our own OpenMP threads; OpenBLAS itself runs
     * single-threaded so the two pools never oversubscribe the cores. */
    openblas_set_num_threads(1);
    if (fb_threads <= 0) fb_threads = omp_get_max_threads();
}

void fb_set_threads(int n) {
    fb_runtime_init();
    if (n <= 0) n = omp_get_num_procs();
    fb_threads = n;
    omp_set_num_threads(n);
}

int fb_get_threads(void) {
    fb_runtime_init();
    return fb_threads;
}

void *fb_aligned_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

double fb_now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
