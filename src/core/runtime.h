/* Internal runtime helpers: one-time init, aligned allocation, checked
 * size arithmetic. */
#ifndef FB_CORE_RUNTIME_H
#define FB_CORE_RUNTIME_H
#include <stddef.h>
#include <stdint.h>

void  fb_runtime_init(void);
void *fb_aligned_alloc(size_t bytes);     /* 64-byte aligned; free() it */
double fb_now_sec(void);                  /* monotonic clock, seconds */

/* a*b into *out; returns 0 on overflow. */
static inline int fb_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}
#endif
