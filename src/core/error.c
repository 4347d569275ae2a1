#include "core/error.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char fb_error_message[512];

const char *fb_status_string(fb_status s) {
    switch (s) {
    case FB_OK: return "ok";
    case FB_ERR_INVALID_ARG: return "invalid argument";
    case FB_ERR_CONFIG: return "invalid configuration";
    case FB_ERR_SHAPE: return "invalid shape";
    case FB_ERR_OOM: return "out of memory";
    case FB_ERR_IO: return "i/o error";
    case FB_ERR_FORMAT: return "bad file format";
    case FB_ERR_UNSUPPORTED: return "unsupported";
    case FB_ERR_NUMERIC: return "non-finite value";
    case FB_ERR_KV_FULL: return "out of KV cache blocks";
    case FB_ERR_WORKSPACE: return "workspace too small";
    }
    return "unknown status";
}

const char *fb_last_error(void) { return fb_error_message; }

void fb_clear_error(void) { fb_error_message[0] = '\0'; }

/* Formats into a local buffer first: callers often wrap the previous message
 * (fb_fail(..., "%s: ...", fb_last_error())), which must not be overwritten
 * while it is still being read. */
fb_status fb_fail(fb_status s, const char *fmt, ...) {
    char msg[sizeof fb_error_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(fb_error_message, msg, sizeof msg);
    return s;
}
