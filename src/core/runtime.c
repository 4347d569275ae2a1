/* The thread count shared by all parallel kernels, the ISA level derived
 * from the CPU feature mask (core/cpu.h), aligned allocation, the clock. */
#include "flashblock.h"
#include "core/cpu.h"
#include "core/runtime.h"
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

const char *fb_isa_name(fb_isa isa) {
    switch (isa) {
    case FB_ISA_GENERIC: return "generic";
    case FB_ISA_AVX2: return "avx2";
    case FB_ISA_AVX512: return "avx512";
    default: return "?";
    }
}

/* The highest build of the *.simd.c kernels whose features are all usable
 * (core/cpu.h: CPUID, OS state, FLASHBLOCK_ISA and FLASHBLOCK_DISABLE). */
fb_isa fb_cpu_best_isa(void) {
    const uint64_t f = fb_cpu_features();
    if ((f & FB_CPU_SET_AVX512) == FB_CPU_SET_AVX512) return FB_ISA_AVX512;
    if ((f & FB_CPU_SET_AVX2) == FB_CPU_SET_AVX2) return FB_ISA_AVX2;
    return FB_ISA_GENERIC;
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
