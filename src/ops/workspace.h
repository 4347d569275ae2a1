/*
 * Kernel scratch memory, owned by the caller.
 *
 * Kernels never allocate: each variant declares how many bytes of scratch
 * it needs for given dims and thread count (fb_kernel.workspace), and takes
 * them from the fb_workspace in its arguments, carved per OpenMP thread
 * where the scratch is per thread. A caller plans once, for the largest
 * shapes it will run (per model and batch size, per engine), with
 * fb_op_workspace / fb_ws_plan (ops.h), reserves one buffer and passes it
 * to every call. Too small, missing or misaligned: the kernel returns
 * FB_ERR_WORKSPACE and touches nothing.
 */
#ifndef FB_OPS_WORKSPACE_H
#define FB_OPS_WORKSPACE_H
#include "flashblock.h"
#include <stddef.h>

typedef struct fb_workspace {
    void *data;      /* 64-byte aligned */
    size_t bytes;
} fb_workspace;

/* Pieces carved from a workspace are rounded up to 64 bytes, so every
 * piece starts on a cache line (and stays aligned for aligned loads). */
static inline size_t fb_ws_round(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* bytes [offset, offset + bytes) of ws (offset a multiple of 64). */
static inline fb_workspace fb_ws_slice(fb_workspace ws, size_t offset, size_t bytes) {
    fb_workspace s = {bytes ? (char *)ws.data + offset : NULL, bytes};
    return s;
}

/* Grows ws to at least bytes (contents are not kept); never shrinks. */
fb_status fb_workspace_reserve(fb_workspace *ws, size_t bytes);
void      fb_workspace_free(fb_workspace *ws);
#endif
