/* GPT-2 pre-tokenizer, a hand-written matcher for the regular expression
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * with the semantics of the JavaScript engine used by the reference
 * tokenizers (js-tiktoken, gpt-3-encoder; flags "gu"):
 *   \p{L}  general category Lu Ll Lt Lm Lo     (from utf8proc)
 *   \p{N}  general category Nd Nl No           (from utf8proc)
 *   \s     ECMAScript WhiteSpace + LineTerminator: U+0009..U+000D, U+FEFF,
 *          U+2028, U+2029 and every code point of category Zs (utf8proc).
 * Leftmost alternative wins, quantifiers are greedy; "\s+(?!\S)" gives back
 * exactly one code point when the whitespace run is followed by a non-space.
 * Bytes that are not well-formed UTF-8 are one "other" code point each (they
 * join [^\s\p{L}\p{N}]+ runs), so any byte string is split losslessly. */
#include "tokenizer/tok_internal.h"
#include <pthread.h>
#include <utf8proc.h>

enum { C_O = 0, C_L = 1, C_N = 2, C_S = 3 };

static unsigned char bmp_class[65536];
static pthread_once_t pretok_once = PTHREAD_ONCE_INIT;

static unsigned char classify(int32_t cp) {
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0xFEFF || cp == 0x2028 || cp == 0x2029) return C_S;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return C_L;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return C_N;
    case UTF8PROC_CATEGORY_ZS:
        return C_S;
    default:
        return C_O;
    }
}

static void pretok_init_once(void) {
    for (int32_t cp = 0; cp < 65536; cp++) bmp_class[cp] = classify(cp);
}

void fb_pretok_init(void) { pthread_once(&pretok_once, pretok_init_once); }

/* Class of the code point at s[i] (i < n) and its length in bytes. */
static inline int cls_at(const unsigned char *s, size_t n, size_t i, size_t *clen) {
    unsigned c = s[i];
    if (c < 0x80) { *clen = 1; return bmp_class[c]; }
    size_t rem = n - i;
    if (c >= 0xC2 && c <= 0xDF) {
        if (rem >= 2 && (s[i + 1] & 0xC0) == 0x80) {
            *clen = 2;
            return bmp_class[((c & 0x1F) << 6) | (s[i + 1] & 0x3F)];
        }
    } else if (c >= 0xE0 && c <= 0xEF) {
        if (rem >= 3 && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80) {
            unsigned cp = ((c & 0x0F) << 12) | ((unsigned)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
            if (cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF)) { *clen = 3; return bmp_class[cp]; }
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        if (rem >= 4 && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80 && (s[i + 3] & 0xC0) == 0x80) {
            unsigned cp = ((c & 0x07) << 18) | ((unsigned)(s[i + 1] & 0x3F) << 12) |
                          ((unsigned)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
            if (cp >= 0x10000 && cp <= 0x10FFFF) { *clen = 4; return classify((int32_t)cp); }
        }
    }
    *clen = 1;
    return C_O;   /* ill-formed byte */
}

/* End of the run of class k starting at i. */
static inline size_t run_end(const unsigned char *s, size_t n, size_t i, int k) {
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (bmp_class[c] != k) return i;
            i++;
            continue;
        }
        size_t cl;
        if (cls_at(s, n, i, &cl) != k) return i;
        i += cl;
    }
    return i;
}

size_t fb_pretok_next(const unsigned char *s, size_t n, size_t pos) {
    unsigned c = s[pos];
    if (c == '\'' && pos + 1 < n) {
        unsigned d = s[pos + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return pos + 2;
        if (pos + 2 < n) {
            unsigned e = s[pos + 2];
            if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return pos + 3;
        }
    }
    size_t cl;
    if (c == ' ' && pos + 1 < n) {
        int k = cls_at(s, n, pos + 1, &cl);
        if (k != C_S) return run_end(s, n, pos + 1 + cl, k);
    }
    int k = cls_at(s, n, pos, &cl);
    if (k != C_S) return run_end(s, n, pos + cl, k);
    /* whitespace run [pos, end); last code point starts at last */
    size_t i = pos, last = pos;
    while (i < n) {
        size_t l;
        if (cls_at(s, n, i, &l) != C_S) break;
        last = i;
        i += l;
    }
    if (i == n) return n;            /* \s+(?!\S) at end of text */
    if (last > pos) return last;     /* give back the last code point */
    return i;                        /* single whitespace before non-space: \s+ */
}
