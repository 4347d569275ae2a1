/* Error reporting inside the library: set a thread-local one-line message
 * and return the status, so call sites read `return fb_fail(FB_ERR_X, ...)`. */
#ifndef FB_CORE_ERROR_H
#define FB_CORE_ERROR_H
#include "flashblock.h"

#if defined(__GNUC__)
#define FB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FB_PRINTF(a, b)
#endif

fb_status fb_fail(fb_status s, const char *fmt, ...) FB_PRINTF(2, 3);
void fb_clear_error(void);

#define FB_TRY(expr) do { fb_status fb_try_s_ = (expr); if (fb_try_s_ != FB_OK) return fb_try_s_; } while (0)
#endif
