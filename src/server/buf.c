/* Growable buffers, UTF-8 checks and the clock of flashblock serve. */
#include "server/srv.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int reserve(srv_buf *b, size_t n) {
    if (b->oom) return 0;
    if (b->len + n + 1 <= b->cap) return 1;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + n + 1) nc *= 2;
    char *p = realloc(b->p, nc);
    if (!p) { b->oom = 1; return 0; }
    b->p = p;
    b->cap = nc;
    return 1;
}

void srv_buf_put(srv_buf *b, const void *data, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void srv_buf_puts(srv_buf *b, const char *s) { srv_buf_put(b, s, strlen(s)); }

void srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void srv_buf_free(srv_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Length of the valid UTF-8 sequence starting at s[0] (n bytes available):
 * > 0 valid, 0 incomplete (a valid start cut short), -1 invalid. */
static int utf8_seq(const unsigned char *s, size_t n) {
    const unsigned c = s[0];
    int len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
    else return -1;
    unsigned cp = c & (0x3Fu >> (len - 1));
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return 0;
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i] & 0x3Fu);
        /* reject overlong and out-of-range prefixes as soon as they show */
        if (i == 1 && len == 3 && c == 0xE0 && s[1] < 0xA0) return -1;
        if (i == 1 && len == 3 && c == 0xED && s[1] > 0x9F) return -1;   /* surrogates */
        if (i == 1 && len == 4 && c == 0xF0 && s[1] < 0x90) return -1;
        if (i == 1 && len == 4 && c == 0xF4 && s[1] > 0x8F) return -1;
    }
    return cp >= min ? len : -1;
}

size_t srv_utf8_complete(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        int l = utf8_seq(s + i, n - i);
        if (l == 0) return i;   /* incomplete tail: hold it back */
        i += l > 0 ? (size_t)l : 1;
    }
    return n;
}

long srv_utf8_invalid_at(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        const int l = utf8_seq(s + i, n - i);
        if (l <= 0) return (long)i;
        i += (size_t)l;
    }
    return -1;
}

void srv_utf8_sanitize(srv_buf *out, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;   /* valid run s[run..i) copied at once */
    while (i < n) {
        int l = utf8_seq(s + i, n - i);
        if (l > 0) { i += (size_t)l; continue; }
        srv_buf_put(out, s + run, i - run);
        srv_buf_put(out, "\xEF\xBF\xBD", 3);
        i++;
        run = i;
    }
    srv_buf_put(out, s + run, n - run);
}

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
