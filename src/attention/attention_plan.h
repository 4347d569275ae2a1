/*
 * Tile sizes of the attention kernels and the layout of their workspaces,
 * shared by the kernels (*.simd.c, compiled per ISA) and their workspace
 * functions (attention_workspace.c, plain C), so the bytes a caller plans
 * for are the bytes the kernel carves. All sizes in floats unless stated;
 * d[] as FB_OP_ATTENTION_FWD.
 */
#ifndef FB_ATTENTION_PLAN_H
#define FB_ATTENTION_PLAN_H
#include "ops/ops.h"

#define FB_ATT_ROUND_UP(x, m) (((x) + (m) - 1) / (m) * (m))

/* FlashAttention forward: per thread Qs, O [BR][Dp], Kt [Dp][BC], S [BR][BC], m, l, alpha [BR]. */
#define FLASH_FWD_BR 64
#define FLASH_FWD_BC 64
static inline size_t flash_fwd_thread_bytes(const int64_t *d) {
    const size_t Dp = (size_t)FB_ATT_ROUND_UP(d[5], 16);
    return fb_ws_round(sizeof(float) * (2 * FLASH_FWD_BR * Dp + Dp * FLASH_FWD_BC + FLASH_FWD_BR * FLASH_FWD_BC +
                                        3 * FLASH_FWD_BR));
}

/* FlashAttention backward: shared, per query tile item (B·H·ceil(Tq/BR)),
 * the transposed Q and dO tiles [D][BR] and lse2, Dv [BR]; per thread St,
 * dPt [BC][BR], Kp, Vp, dKa, dVa [BC][Dp], dQa [BR][Dp]. */
#define FLASH_BWD_BR 64
#define FLASH_BWD_BC 64
static inline size_t flash_bwd_shared_bytes(const int64_t *d) {
    const size_t n_qitems = (size_t)(d[0] * d[3] * ((d[1] + FLASH_BWD_BR - 1) / FLASH_BWD_BR));
    return fb_ws_round(sizeof(float) * n_qitems * (2 * (size_t)d[5] * FLASH_BWD_BR + 2 * FLASH_BWD_BR));
}
static inline size_t flash_bwd_thread_bytes(const int64_t *d) {
    const size_t Dp = (size_t)FB_ATT_ROUND_UP(d[5], 16);
    return fb_ws_round(sizeof(float) *
                       (2 * FLASH_BWD_BC * FLASH_BWD_BR + 4 * FLASH_BWD_BC * Dp + FLASH_BWD_BR * Dp));
}

/* Decode (split-K): the visible keys are cut into n_split chunks per
 * (batch, KV head) group, enough for about 4 items per thread, chunks of at
 * least DECODE_MIN_CHUNK keys. Shared: per item R·Dp partial outputs plus R
 * maxima and R sums (R = G·Tq rows); per thread Qs [R][Dp] and S [R][BC]. */
#define DECODE_BC 32
#define DECODE_MIN_CHUNK 64
typedef struct decode_plan {
    int R, Dp;
    int64_t kvis, n_split, chunk, n_items;
    size_t per_item;             /* floats */
    size_t shared_bytes, thread_bytes;
} decode_plan;
static inline decode_plan decode_plan_for(const int64_t *d, int n_threads) {
    decode_plan p;
    const int64_t B = d[0], Tq = d[1], Tk = d[2], H = d[3], Hkv = d[4], D = d[5], offset = Tk - Tq;
    const int64_t kend = d[6] ? (Tk < offset + Tq ? Tk : offset + Tq) : Tk;   /* keys any row can see */
    p.R = (int)(H / (Hkv > 0 ? Hkv : 1) * Tq);
    p.Dp = (int)FB_ATT_ROUND_UP(D > 0 ? D : 1, 16);
    p.kvis = kend > 0 ? kend : 0;
    const int64_t groups = B * Hkv > 0 ? B * Hkv : 1;
    int64_t n_split = (4 * (int64_t)n_threads + groups - 1) / groups;
    const int64_t max_split = (p.kvis + DECODE_MIN_CHUNK - 1) / DECODE_MIN_CHUNK;
    if (n_split > max_split) n_split = max_split;
    if (n_split < 1) n_split = 1;
    p.n_split = n_split;
    p.chunk = FB_ATT_ROUND_UP((p.kvis + n_split - 1) / n_split, DECODE_BC);
    p.n_items = groups * n_split;
    p.per_item = (size_t)p.R * (size_t)p.Dp + 2 * (size_t)p.R;
    /* Sized for a bound on n_items that grows with every dimension (n_items
     * itself can shrink when groups grow), so one plan covers smaller calls. */
    const int64_t bound_a = 4 * (int64_t)n_threads + groups, bound_b = groups * (max_split > 1 ? max_split : 1);
    const int64_t bound = bound_a < bound_b ? bound_a : bound_b;
    p.shared_bytes = fb_ws_round(sizeof(float) * p.per_item * (size_t)bound);
    p.thread_bytes = fb_ws_round(sizeof(float) * ((size_t)p.R * (size_t)p.Dp + (size_t)p.R * DECODE_BC));
    return p;
}

/* Standard attention: per thread one (forward) or two (backward) Tq×Tk matrices. */
static inline size_t standard_matrix_bytes(const int64_t *d) {
    return fb_ws_round(sizeof(float) * (size_t)(d[1] * d[2] > 0 ? d[1] * d[2] : 1));
}
/* Standard forward with paged K/V (d[10] > 0): contiguous Tk×D copies of K and V. */
static inline size_t standard_gather_bytes(const int64_t *d) {
    return d[10] > 0 ? fb_ws_round(sizeof(float) * 2 * (size_t)(d[2] * d[5] > 0 ? d[2] * d[5] : 1)) : 0;
}
#endif
