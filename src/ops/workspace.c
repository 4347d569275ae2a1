/* The caller-owned scratch buffer of the kernels (see workspace.h). */
#include "ops/workspace.h"
#include "core/error.h"
#include "core/runtime.h"
#include <stdlib.h>

fb_status fb_workspace_reserve(fb_workspace *ws, size_t bytes) {
    if (!ws) return fb_fail(FB_ERR_INVALID_ARG, "workspace: NULL pointer");
    if (bytes <= ws->bytes) return FB_OK;
    void *p = fb_aligned_alloc(bytes);
    if (!p) return fb_fail(FB_ERR_OOM, "cannot allocate a kernel workspace of %.1f MiB", (double)bytes / 1048576.0);
    free(ws->data);
    ws->data = p;
    ws->bytes = bytes;
    return FB_OK;
}

void fb_workspace_free(fb_workspace *ws) {
    if (!ws) return;
    free(ws->data);
    ws->data = NULL;
    ws->bytes = 0;
}
