/* CPU feature detection (CPUID, XCR0, Linux AMX permission) and the
 * FLASHBLOCK_ISA / FLASHBLOCK_DISABLE masks; see cpu.h. */
#include "core/cpu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static const char *const names[FB_CPU_FEATURE_BITS] = {
    "avx2",        "fma",         "f16c",        "avx512f",  "avx512dq", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
};

const char *fb_cpu_feature_name(uint64_t bit) {
    for (int i = 0; i < FB_CPU_FEATURE_BITS; i++)
        if (bit == (1ull << i)) return names[i];
    return NULL;
}

const char *fb_cpu_features_str(uint64_t mask, char *buf, size_t len) {
    size_t k = 0;
    if (len) buf[0] = '\0';
    for (int i = 0; i < FB_CPU_FEATURE_BITS && len; i++)
        if (mask & (1ull << i)) {
            int w = snprintf(buf + k, len - k, "%s%s", k ? "," : "", names[i]);
            if (w < 0 || (size_t)w >= len - k) break;
            k += (size_t)w;
        }
    return buf;
}

#if defined(__x86_64__) || defined(__i386__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* AMX tile data needs a per-process permission on Linux (5.16+). We only
 * ask whether it was granted; requesting it is left to a future AMX kernel. */
static int amx_permitted(void) {
#if defined(__linux__) && defined(__x86_64__) && defined(SYS_arch_prctl)
    uint64_t perm = 0;
    if (syscall(SYS_arch_prctl, 0x1022 /* ARCH_GET_XCOMP_PERM */, &perm) != 0) return 0;
    return (perm >> 18) & 1;   /* XFEATURE_XTILEDATA */
#else
    return 0;
#endif
}

static void detect(fb_cpu_info *ci) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const int osxsave = (c >> 27) & 1;
    uint64_t f = 0;
    if ((c >> 12) & 1) f |= FB_CPU_FMA;
    if ((c >> 29) & 1) f |= FB_CPU_F16C;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if ((b >> 5) & 1) f |= FB_CPU_AVX2;
        if ((b >> 16) & 1) f |= FB_CPU_AVX512F;
        if ((b >> 17) & 1) f |= FB_CPU_AVX512DQ;
        if ((b >> 30) & 1) f |= FB_CPU_AVX512BW;
        if ((b >> 31) & 1) f |= FB_CPU_AVX512VL;
        if ((c >> 11) & 1) f |= FB_CPU_AVX512_VNNI;
        if ((d >> 22) & 1) f |= FB_CPU_AMX_BF16;
        if ((d >> 23) & 1) f |= FB_CPU_AVX512_FP16;
        if ((d >> 24) & 1) f |= FB_CPU_AMX_TILE;
        if ((d >> 25) & 1) f |= FB_CPU_AMX_INT8;
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
            if ((a >> 4) & 1) f |= FB_CPU_AVX_VNNI;
            if ((a >> 5) & 1) f |= FB_CPU_AVX512_BF16;
        }
    }
    ci->cpuid = f;
    /* The OS must save the register state: YMM (XCR0 bits 1-2) for every
     * VEX-encoded feature here, opmask/ZMM (5-7) for AVX-512, XTILE (17-18)
     * and the process permission for AMX. */
    const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    const uint64_t avx512 = FB_CPU_AVX512F | FB_CPU_AVX512DQ | FB_CPU_AVX512BW | FB_CPU_AVX512VL |
                            FB_CPU_AVX512_VNNI | FB_CPU_AVX512_BF16 | FB_CPU_AVX512_FP16;
    const uint64_t amx = FB_CPU_AMX_TILE | FB_CPU_AMX_BF16 | FB_CPU_AMX_INT8;
    uint64_t os = f;
    if ((xcr0 & 0x6) != 0x6) os = 0;
    if ((xcr0 & 0xE6) != 0xE6) os &= ~avx512;
    if ((xcr0 & 0x60000) != 0x60000 || !amx_permitted()) os &= ~amx;
    ci->os = os;
}
#else
static void detect(fb_cpu_info *ci) { (void)ci; }
#endif

/* Masks of the two overrides (all ones when unset). */
static uint64_t isa_mask = ~0ull, disable_mask = 0;

static uint64_t level_mask(const char *v) {
    if (!strcmp(v, "generic")) return 0;
    if (!strcmp(v, "avx2")) return FB_CPU_SET_AVX2;
    return ~0ull;   /* "avx512" (the top level) or an unknown name: no mask */
}

static uint64_t parse_disable(const char *v) {
    uint64_t m = 0;
    char tok[32];
    while (*v) {
        size_t n = strcspn(v, ",");
        if (n < sizeof tok) {
            memcpy(tok, v, n);
            tok[n] = '\0';
            for (int i = 0; i < FB_CPU_FEATURE_BITS; i++)
                if (!strcmp(tok, names[i])) m |= 1ull << i;
        }
        v += n;
        if (*v == ',') v++;
    }
    return m;
}

const fb_cpu_info *fb_cpu_info_get(void) {
    static fb_cpu_info info;
    static int done = 0;
    if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        fb_cpu_info ci = {0, 0, 0};
        detect(&ci);
        const char *isa = getenv("FLASHBLOCK_ISA"), *dis = getenv("FLASHBLOCK_DISABLE");
        isa_mask = isa ? level_mask(isa) : ~0ull;
        disable_mask = dis ? parse_disable(dis) : 0;
        ci.usable = ci.os & isa_mask & ~disable_mask;
        info = ci;
        __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    }
    return &info;
}

const char *fb_cpu_explain_missing(uint64_t need, char *buf, size_t len) {
    const fb_cpu_info *ci = fb_cpu_info_get();
    const uint64_t missing = need & ~ci->usable;
    const uint64_t groups[4] = {missing & ~ci->cpuid, missing & ci->cpuid & ~ci->os,
                                missing & ci->os & ~isa_mask, missing & ci->os & isa_mask};
    const char *isa = getenv("FLASHBLOCK_ISA"), *dis = getenv("FLASHBLOCK_DISABLE");
    size_t k = 0;
    if (len) buf[0] = '\0';
    for (int g = 0; g < 4 && len; g++) {
        if (!groups[g]) continue;
        char list[256], why[128];
        if (g == 0) snprintf(why, sizeof why, "CPU lacks it");
        else if (g == 1) snprintf(why, sizeof why, "present, not enabled by the OS");
        else if (g == 2) snprintf(why, sizeof why, "masked by FLASHBLOCK_ISA=%s", isa ? isa : "");
        else snprintf(why, sizeof why, "masked by FLASHBLOCK_DISABLE=%s", dis ? dis : "");
        int w = snprintf(buf + k, len - k, "%sneeds %s (%s)", k ? "; " : "",
                         fb_cpu_features_str(groups[g], list, sizeof list), why);
        if (w < 0 || (size_t)w >= len - k) break;
        k += (size_t)w;
    }
    return buf;
}
