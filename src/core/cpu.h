/*
 * CPU features as a bit mask, not a linear ISA order: AVX-512 VNNI, BF16,
 * FP16 and AMX are each one bit, and a kernel variant lists the bits it
 * executes (src/ops/ops.h, fb_kernel.needs). A variant may run when its
 * needs are a subset of fb_cpu_features().
 *
 * A bit is usable when the CPU reports it (CPUID), the OS saves the state
 * it needs (XCR0: YMM for AVX*, opmask/ZMM for AVX-512, XTILE for AMX; for
 * AMX on Linux the process must also have asked for permission with
 * arch_prctl(ARCH_REQ_XCOMP_PERM), which flashblock does not do: AMX is then
 * reported "present, not enabled") and no override masks it:
 *   FLASHBLOCK_ISA=generic|avx2|avx512   keep only the features of that level
 *                                        (avx512: all; names the CLI printed
 *                                        before the mask existed)
 *   FLASHBLOCK_DISABLE=avx512_vnni,fma   drop single features (names below)
 * Unknown names in either variable are ignored.
 */
#ifndef FB_CORE_CPU_H
#define FB_CORE_CPU_H
#include <stddef.h>
#include <stdint.h>

enum {
    FB_CPU_AVX2 = 1u << 0,
    FB_CPU_FMA = 1u << 1,
    FB_CPU_F16C = 1u << 2,
    FB_CPU_AVX512F = 1u << 3,
    FB_CPU_AVX512DQ = 1u << 4,
    FB_CPU_AVX512BW = 1u << 5,
    FB_CPU_AVX512VL = 1u << 6,
    FB_CPU_AVX512_VNNI = 1u << 7,
    FB_CPU_AVX512_BF16 = 1u << 8,
    FB_CPU_AVX512_FP16 = 1u << 9,
    FB_CPU_AVX_VNNI = 1u << 10,
    FB_CPU_AMX_TILE = 1u << 11,
    FB_CPU_AMX_BF16 = 1u << 12,
    FB_CPU_AMX_INT8 = 1u << 13,
    FB_CPU_FEATURE_BITS = 14
};

/* What the *.simd.c builds are compiled for (CMakeLists.txt FB_ISA_FLAGS_*). */
#define FB_CPU_SET_AVX2 ((uint64_t)(FB_CPU_AVX2 | FB_CPU_FMA | FB_CPU_F16C))
#define FB_CPU_SET_AVX512 \
    (FB_CPU_SET_AVX2 | (uint64_t)(FB_CPU_AVX512F | FB_CPU_AVX512DQ | FB_CPU_AVX512BW | FB_CPU_AVX512VL))

typedef struct fb_cpu_info {
    uint64_t cpuid;     /* the CPU reports them */
    uint64_t os;        /* ... and the OS saves their state (AMX: and permits it) */
    uint64_t usable;    /* ... and no FLASHBLOCK_ISA / FLASHBLOCK_DISABLE masks them */
} fb_cpu_info;

/* Detected once (thread-safe after the first call from one thread). */
const fb_cpu_info *fb_cpu_info_get(void);
static inline uint64_t fb_cpu_features(void) { return fb_cpu_info_get()->usable; }

/* "avx512_vnni" for one bit; NULL for anything else. */
const char *fb_cpu_feature_name(uint64_t bit);
/* Comma-separated names of the bits in mask ("" for none); returns buf. */
const char *fb_cpu_features_str(uint64_t mask, char *buf, size_t len);
/* Why the features in need are not all usable, one phrase per missing bit:
 * "needs avx512_vnni (masked by FLASHBLOCK_ISA=avx2)", "needs amx_int8
 * (present, not enabled by the OS)", "needs avx512f (CPU lacks it)". */
const char *fb_cpu_explain_missing(uint64_t need, char *buf, size_t len);
#endif
