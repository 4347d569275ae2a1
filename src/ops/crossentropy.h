/* Blocking of the fast fused cross-entropy (crossentropy.simd.c), shared
 * with its workspace function (crossentropy.c). */
#ifndef FB_OPS_CROSSENTROPY_H
#define FB_OPS_CROSSENTROPY_H
#include <stdint.h>

#define CE_CHUNK_MIN 64             /* rows per chunk, at least ... */
#define CE_CHUNK_FLOATS (1 << 24)   /* ... and as many as fit a 64 MiB logits block: fewer, larger dW GEMMs */
#define CE_TILE_V 512               /* vocabulary columns per logits / dW tile */
#define CE_TILE_C 128               /* columns of dh per tile */

static inline int64_t ce_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Rows per chunk for a vocabulary of V. */
static inline int64_t ce_chunk_rows(int64_t V) {
    int64_t c = CE_CHUNK_FLOATS / (V > 0 ? V : 1);
    return c < CE_CHUNK_MIN ? CE_CHUNK_MIN : c;
}
#endif
