/*
 * The CPU feature mask and its overrides (src/core/cpu.h), and variant
 * selection by feature needs (src/ops/op_select.c). Run by CTest three
 * times: as is, with FLASHBLOCK_ISA=avx2, and with
 * FLASHBLOCK_DISABLE=avx512_vnni,fma; each run checks what its environment
 * promises:
 *   usable ⊆ OS-enabled ⊆ reported by CPUID, and the masks remove bits;
 *   fb_cpu_best_isa() is the level whose feature set is usable;
 *   every selected variant's needs are usable and no runnable variant is
 *   listed before it (best first); a variant whose needs are not usable
 *   cannot be forced, and the reason names the override that masked it.
 */
#include "core/cpu.h"
#include "ops/ops.h"
#include "test_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const fb_cpu_info *ci = fb_cpu_info_get();
    char buf[512], why[512];
    printf("cpuid:  %s\n", fb_cpu_features_str(ci->cpuid, buf, sizeof buf));
    printf("os:     %s\n", fb_cpu_features_str(ci->os, buf, sizeof buf));
    printf("usable: %s\n", fb_cpu_features_str(ci->usable, buf, sizeof buf));
    FB_CHECK((ci->usable & ~ci->os) == 0 && (ci->os & ~ci->cpuid) == 0, "usable ⊆ os ⊆ cpuid does not hold");
    const char *isa = getenv("FLASHBLOCK_ISA"), *dis = getenv("FLASHBLOCK_DISABLE");
    if (isa && !strcmp(isa, "avx2")) FB_CHECK((ci->usable & ~FB_CPU_SET_AVX2) == 0, "FLASHBLOCK_ISA=avx2 left more than avx2");
    if (isa && !strcmp(isa, "generic")) FB_CHECK(ci->usable == 0, "FLASHBLOCK_ISA=generic left features");
    if (dis && strstr(dis, "avx512_vnni")) FB_CHECK(!(ci->usable & FB_CPU_AVX512_VNNI), "avx512_vnni not disabled");
    if (dis && strstr(dis, "fma")) FB_CHECK(!(ci->usable & FB_CPU_FMA), "fma not disabled");
    const fb_isa best = fb_cpu_best_isa();
    const fb_isa want = (ci->usable & FB_CPU_SET_AVX512) == FB_CPU_SET_AVX512 ? FB_ISA_AVX512
                      : (ci->usable & FB_CPU_SET_AVX2) == FB_CPU_SET_AVX2 ? FB_ISA_AVX2 : FB_ISA_GENERIC;
    FB_CHECK(best == want, "fb_cpu_best_isa() is %s, the usable features make it %s", fb_isa_name(best), fb_isa_name(want));
    /* a mask names itself as the reason */
    if (isa && !strcmp(isa, "avx2") && (ci->os & FB_CPU_AVX512F))
        FB_CHECK(strstr(fb_cpu_explain_missing(FB_CPU_SET_AVX512, why, sizeof why), "FLASHBLOCK_ISA=avx2") != NULL,
                 "reason for a masked avx512f: '%s'", why);
    if (dis && strstr(dis, "avx512_vnni") && (ci->os & FB_CPU_AVX512_VNNI))
        FB_CHECK(strstr(fb_cpu_explain_missing(FB_CPU_AVX512_VNNI, why, sizeof why), "FLASHBLOCK_DISABLE") != NULL,
                 "reason for a disabled avx512_vnni: '%s'", why);
    FB_CHECK(fb_cpu_explain_missing(ci->usable, why, sizeof why)[0] == '\0', "usable features reported missing: %s", why);

    int forced_refusals = 0;
    for (int op = 0; op < FB_OP_COUNT; op++) {
        const fb_op_def *def = fb_op_get((fb_op_id)op);
        if (!def) continue;
        const fb_kernel *sel = fb_op_selected((fb_op_id)op), *first = &def->reference;
        for (const fb_kernel *k = def->variants; k->fn; k++)
            if (fb_kernel_runnable(k)) { first = k; break; }
        FB_CHECK(sel == first, "%s: selected %s, the first runnable variant is %s", def->name, sel->name, first->name);
        FB_CHECK((sel->needs & ~ci->usable) == 0, "%s: selected %s needs unusable features", def->name, sel->name);
        for (const fb_kernel *k = def->variants; k->fn; k++) {
            if (fb_kernel_runnable(k)) continue;
            FB_CHECK(fb_op_force_variant((fb_op_id)op, k->name) == FB_ERR_UNSUPPORTED, "%s: forced %s, which cannot run",
                     def->name, k->name);
            forced_refusals++;
        }
        FB_CHECK(fb_op_selected((fb_op_id)op) == sel, "%s: a refused force changed the selection", def->name);
    }
    printf("test_cpu_features: best ISA %s, %d unrunnable variants refused\n", fb_isa_name(best), forced_refusals);
    return fb_test_finish("test_cpu_features");
}
