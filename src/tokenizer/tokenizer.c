/* Tokenizer handle: loading by spec, accessors, encode dispatch, decoding. */
#include "tokenizer/tok_internal.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

int fb_tok_parse_byte_piece(const char *p, size_t n);   /* llama2c.c */

fb_tokenizer *fb_tok_alloc(fb_tokenizer_kind kind, const char *spec) {
    fb_tokenizer *t = (fb_tokenizer *)calloc(1, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    t->bos_id = t->eos_id = t->special_id = t->space_id = -1;
    t->spec = strdup(spec ? spec : "");
    if (!t->spec) { free(t); return NULL; }
    return t;
}

void fb_tokenizer_free(fb_tokenizer *t) {
    if (!t) return;
    free(t->spec); free(t->off); free(t->len); free(t->bytes);
    free(t->strmap.slots);
    fb_pairmap_free(&t->pairs);
    free(t->scores); free(t->dec_byte);
    free(t);
}

/* ---- string map --------------------------------------------------------- */
fb_status fb_tok_build_strmap(fb_tokenizer *t) {
    size_t cap = 16;
    while (cap < (size_t)t->n_vocab * 2 + 16) cap *= 2;
    free(t->strmap.slots);
    t->strmap.slots = (fb_str_slot *)malloc(cap * sizeof(fb_str_slot));
    if (!t->strmap.slots) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    for (size_t i = 0; i < cap; i++) t->strmap.slots[i].id = -1;
    t->strmap.mask = cap - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        const char *s = t->bytes + t->off[id];
        size_t l = t->len[id];
        uint64_t h = fb_tok_hash_bytes(s, l);
        size_t i = (size_t)h & t->strmap.mask;
        int dup = 0;
        while (t->strmap.slots[i].id >= 0) {
            fb_str_slot *q = &t->strmap.slots[i];
            if (q->hash == h && t->len[q->id] == l && memcmp(t->bytes + t->off[q->id], s, l) == 0) { dup = 1; break; }
            i = (i + 1) & t->strmap.mask;
        }
        if (dup) continue;   /* keep the lowest id */
        t->strmap.slots[i].hash = h;
        t->strmap.slots[i].id = id;
    }
    return FB_OK;
}

int32_t fb_tok_lookup(const fb_tokenizer *t, const void *s, size_t n) {
    if (!t->strmap.slots) return -1;
    uint64_t h = fb_tok_hash_bytes(s, n);
    size_t i = (size_t)h & t->strmap.mask;
    for (;;) {
        const fb_str_slot *q = &t->strmap.slots[i];
        if (q->id < 0) return -1;
        if (q->hash == h && t->len[q->id] == n && memcmp(t->bytes + t->off[q->id], s, n) == 0) return q->id;
        i = (i + 1) & t->strmap.mask;
    }
}

/* ---- files -------------------------------------------------------------- */
fb_status fb_tok_read_file(const char *path, char **data, size_t *len) {
    *data = NULL; *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fb_fail(FB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = (char *)malloc(cap + 1);
    if (!buf) { fclose(f); return fb_fail(FB_ERR_OOM, "%s: out of memory", path); }
    for (;;) {
        if (n == cap) {
            char *nb = (char *)realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); fclose(f); return fb_fail(FB_ERR_OOM, "%s: out of memory", path); }
            buf = nb; cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(buf); return fb_fail(FB_ERR_IO, "%s: read error", path); }
    buf[n] = 0;
    *data = buf; *len = n;
    return FB_OK;
}

static fb_status load_gpt2_dir(fb_tokenizer **out, const char *dir, const char *spec) {
    size_t dl = strlen(dir);
    char *jp = (char *)malloc(dl + 16), *bp = (char *)malloc(dl + 16);
    if (!jp || !bp) { free(jp); free(bp); return fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); }
    const char *sep = (dl && dir[dl - 1] == '/') ? "" : "/";
    sprintf(jp, "%s%sencoder.json", dir, sep);
    sprintf(bp, "%s%svocab.bpe", dir, sep);
    char *j = NULL, *b = NULL; size_t jl = 0, bl = 0;
    fb_status st = fb_tok_read_file(jp, &j, &jl);
    if (st == FB_OK) st = fb_tok_read_file(bp, &b, &bl);
    if (st == FB_OK) st = fb_tok_gpt2_from_buffers(out, j, jl, jp, b, bl, bp, spec);
    free(j); free(b); free(jp); free(bp);
    return st;
}

fb_status fb_tokenizer_load_llama2c(fb_tokenizer **out, const char *path, int vocab_size) {
    if (!out || !path) return fb_fail(FB_ERR_INVALID_ARG, "fb_tokenizer_load_llama2c: NULL argument");
    char *d = NULL; size_t n = 0;
    FB_TRY(fb_tok_read_file(path, &d, &n));
    size_t sl = strlen(path) + 16;
    char *spec = (char *)malloc(sl);
    if (!spec) { free(d); return fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); }
    snprintf(spec, sl, "llama2c:%s", path);
    fb_status st = fb_tok_llama2c_from_buffer(out, (const unsigned char *)d, n, vocab_size, path, spec);
    free(d); free(spec);
    return st;
}

fb_status fb_tokenizer_load(fb_tokenizer **out, const char *spec) {
    if (!out || !spec) return fb_fail(FB_ERR_INVALID_ARG, "fb_tokenizer_load: NULL argument");
    *out = NULL;
    if (strcmp(spec, "byte") == 0) {
        fb_tokenizer *t = fb_tok_alloc(FB_TOKENIZER_BYTE, "byte");
        if (!t) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
        t->n_vocab = 256;
        t->off = (uint32_t *)malloc(256 * sizeof *t->off);
        t->len = (uint32_t *)malloc(256 * sizeof *t->len);
        t->bytes = (char *)malloc(257);
        if (!t->off || !t->len || !t->bytes) { fb_tokenizer_free(t); return fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); }
        for (int b = 0; b < 256; b++) { t->off[b] = (uint32_t)b; t->len[b] = 1; t->bytes[b] = (char)b; t->byte_id[b] = b; }
        t->bytes[256] = 0;
        t->bytes_size = 256;
        *out = t;
        return FB_OK;
    }
    if (strncmp(spec, "gpt2:", 5) == 0) {
        if (!spec[5]) return fb_fail(FB_ERR_INVALID_ARG, "tokenizer spec '%s': missing directory", spec);
        return load_gpt2_dir(out, spec + 5, spec);
    }
    if (strncmp(spec, "llama2c:", 8) == 0) {
        if (!spec[8]) return fb_fail(FB_ERR_INVALID_ARG, "tokenizer spec '%s': missing file", spec);
        char *d = NULL; size_t n = 0;
        FB_TRY(fb_tok_read_file(spec + 8, &d, &n));
        fb_status st = fb_tok_llama2c_from_buffer(out, (const unsigned char *)d, n, 0, spec + 8, spec);
        free(d);
        return st;
    }
    char *d = NULL; size_t n = 0;
    fb_status st = fb_tok_read_file(spec, &d, &n);
    if (st != FB_OK)
        return fb_fail(st, "tokenizer spec '%s': not \"byte\", \"gpt2:DIR\", \"llama2c:FILE\" or a readable vocabulary "
                           "file (%s)", spec, fb_last_error());
    st = fb_tok_trained_from_buffer(out, d, n, spec, spec);
    free(d);
    return st;
}

/* ---- accessors ---------------------------------------------------------- */
fb_tokenizer_kind fb_tokenizer_get_kind(const fb_tokenizer *t) { return t->kind; }
int fb_tokenizer_vocab_size(const fb_tokenizer *t) { return t ? t->n_vocab : 0; }
int fb_tokenizer_bos_id(const fb_tokenizer *t) { return t ? t->bos_id : -1; }
int fb_tokenizer_eos_id(const fb_tokenizer *t) { return t ? t->eos_id : -1; }
const char *fb_tokenizer_spec(const fb_tokenizer *t) { return t ? t->spec : ""; }

static const unsigned char fb_all_bytes[256] = {
#define B4(x) x, x + 1, x + 2, x + 3
#define B16(x) B4(x), B4(x + 4), B4(x + 8), B4(x + 12)
#define B64(x) B16(x), B16(x + 16), B16(x + 32), B16(x + 48)
    B64(0), B64(64), B64(128), B64(192)
#undef B4
#undef B16
#undef B64
};

const char *fb_tokenizer_token_bytes(const fb_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) { if (len) *len = 0; return NULL; }
    if (t->kind == FB_TOKENIZER_LLAMA2C && t->dec_byte[id] >= 0) {
        if (len) *len = 1;
        return (const char *)fb_all_bytes + t->dec_byte[id];
    }
    if (len) *len = t->len[id];
    return t->bytes + t->off[id];
}

/* ---- encode ------------------------------------------------------------- */
static fb_status encode_buf(const fb_tokenizer *t, const char *text, size_t len, unsigned flags, fb_idbuf *b) {
    if (!t || (!text && len)) return fb_fail(FB_ERR_INVALID_ARG, "fb_tokenizer_encode: NULL argument");
    if (flags & ~(FB_TOK_ADD_BOS | FB_TOK_ADD_EOS | FB_TOK_ALLOW_SPECIAL))
        return fb_fail(FB_ERR_INVALID_ARG, "fb_tokenizer_encode: unknown flags 0x%x", flags);
    const unsigned char *s = (const unsigned char *)text;
    b->n = 0;
    if (t->kind == FB_TOKENIZER_LLAMA2C) return fb_tok_encode_spm(t, s, len, flags, b);
    if ((flags & FB_TOK_ADD_BOS) && t->bos_id >= 0) {
        FB_TRY(fb_idbuf_reserve(b, 1));
        b->v[b->n++] = t->bos_id;
    }
    if (t->kind == FB_TOKENIZER_BYTE) {
        FB_TRY(fb_idbuf_reserve(b, len));
        for (size_t i = 0; i < len; i++) b->v[b->n++] = s[i];
    } else if (len) {
        FB_TRY(fb_tok_encode_bpe(t, s, len, flags, b));
    }
    if ((flags & FB_TOK_ADD_EOS) && t->eos_id >= 0) {
        FB_TRY(fb_idbuf_reserve(b, 1));
        b->v[b->n++] = t->eos_id;
    }
    return FB_OK;
}

fb_status fb_tokenizer_encode(const fb_tokenizer *t, const char *text, size_t len, unsigned flags,
                              int32_t **ids, size_t *n_ids, size_t *cap) {
    if (!ids || !n_ids || !cap) return fb_fail(FB_ERR_INVALID_ARG, "fb_tokenizer_encode: NULL argument");
    fb_idbuf b = { *ids, 0, *ids ? *cap : 0 };
    fb_status st = encode_buf(t, text, len, flags, &b);
    *ids = b.v; *cap = b.cap;
    *n_ids = st == FB_OK ? b.n : 0;
    return st;
}

fb_status fb_tokenizer_encode_into(const fb_tokenizer *t, const char *text, size_t len, unsigned flags,
                                   int32_t *buf, size_t cap, size_t *n_ids) {
    if (!n_ids || (!buf && cap)) return fb_fail(FB_ERR_INVALID_ARG, "fb_tokenizer_encode_into: NULL argument");
    fb_idbuf b = { NULL, 0, 0 };
    fb_status st = encode_buf(t, text, len, flags, &b);
    if (st == FB_OK) {
        *n_ids = b.n;
        if (b.n > cap) st = fb_fail(FB_ERR_SHAPE, "fb_tokenizer_encode_into: %zu ids do not fit in %zu", b.n, cap);
        else if (b.n) memcpy(buf, b.v, b.n * sizeof *buf);
    }
    free(b.v);
    return st;
}

/* ---- decode ------------------------------------------------------------- */
struct fb_token_decoder {
    const fb_tokenizer *t;
    int32_t prev;
    unsigned char pend[4];
    size_t npend;
    char *buf;
    size_t cap;
};

fb_status fb_token_decoder_init(fb_token_decoder **out, const fb_tokenizer *t) {
    if (!out || !t) return fb_fail(FB_ERR_INVALID_ARG, "fb_token_decoder_init: NULL argument");
    fb_token_decoder *d = (fb_token_decoder *)calloc(1, sizeof *d);
    if (!d) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    d->t = t;
    d->prev = -1;
    *out = d;
    return FB_OK;
}

void fb_token_decoder_reset(fb_token_decoder *d) { if (d) { d->prev = -1; d->npend = 0; } }

void fb_token_decoder_free(fb_token_decoder *d) {
    if (!d) return;
    free(d->buf);
    free(d);
}

/* Bytes of id in the context of the previous id. */
static const char *piece_of(const fb_tokenizer *t, int32_t prev, int32_t id, size_t *len, unsigned char *one) {
    if (t->kind != FB_TOKENIZER_LLAMA2C) { *len = t->len[id]; return t->bytes + t->off[id]; }
    if (id == t->bos_id) { *len = 0; return ""; }   /* run.c never prints BOS */
    const char *p = t->bytes + t->off[id];
    size_t l = t->len[id];
    int bv = t->dec_byte[id];
    if (prev >= 0 && prev == t->bos_id && l && p[0] == ' ') {
        p++; l--;
        bv = fb_tok_parse_byte_piece(p, l);
    }
    if (bv >= 0) { *one = (unsigned char)bv; *len = 1; return (const char *)one; }
    *len = l;
    return p;
}

/* Length of the tail of s[0..n) that is an incomplete but so far valid UTF-8
 * sequence (to be held back), 0 if none. */
static size_t incomplete_tail(const unsigned char *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned c = s[n - back];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (need <= back) return 0;
        if (back >= 2) {
            unsigned c1 = s[n - back + 1];
            unsigned lo = 0x80, hi = 0xBF;
            if (c == 0xE0) lo = 0xA0;
            else if (c == 0xED) hi = 0x9F;
            else if (c == 0xF0) lo = 0x90;
            else if (c == 0xF4) hi = 0x8F;
            if (c1 < lo || c1 > hi) return 0;
        }
        return back;
    }
    return 0;
}

static fb_status ensure(fb_token_decoder *d, size_t n) {
    if (n <= d->cap) return FB_OK;
    size_t nc = d->cap ? d->cap : 64;
    while (nc < n) nc *= 2;
    char *nb = (char *)realloc(d->buf, nc);
    if (!nb) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    d->buf = nb; d->cap = nc;
    return FB_OK;
}

fb_status fb_token_decoder_push(fb_token_decoder *d, int32_t id, const char **bytes, size_t *len) {
    if (!d || !bytes || !len) return fb_fail(FB_ERR_INVALID_ARG, "fb_token_decoder_push: NULL argument");
    *bytes = ""; *len = 0;
    if (id < 0 || id >= d->t->n_vocab)
        return fb_fail(FB_ERR_INVALID_ARG, "token id %d out of range (vocabulary size %d)", (int)id, d->t->n_vocab);
    unsigned char one;
    size_t pl;
    const char *p = piece_of(d->t, d->prev, id, &pl, &one);
    d->prev = id;
    FB_TRY(ensure(d, d->npend + pl + 1));
    memcpy(d->buf, d->pend, d->npend);
    if (pl) memcpy(d->buf + d->npend, p, pl);
    size_t total = d->npend + pl;
    size_t hold = incomplete_tail((const unsigned char *)d->buf, total);
    d->npend = hold;
    memcpy(d->pend, d->buf + total - hold, hold);
    d->buf[total - hold] = 0;
    *bytes = d->buf;
    *len = total - hold;
    return FB_OK;
}

fb_status fb_token_decoder_flush(fb_token_decoder *d, const char **bytes, size_t *len) {
    if (!d || !bytes || !len) return fb_fail(FB_ERR_INVALID_ARG, "fb_token_decoder_flush: NULL argument");
    FB_TRY(ensure(d, d->npend + 1));
    memcpy(d->buf, d->pend, d->npend);
    d->buf[d->npend] = 0;
    *bytes = d->buf;
    *len = d->npend;
    d->npend = 0;
    return FB_OK;
}

fb_status fb_tokenizer_decode(const fb_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len) {
    if (!t || (!ids && n) || !text || !len) return fb_fail(FB_ERR_INVALID_ARG, "fb_tokenizer_decode: NULL argument");
    *text = NULL; *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return fb_fail(FB_ERR_INVALID_ARG, "decode: token %zu: id %d out of range (vocabulary size %d)", i,
                           (int)ids[i], t->n_vocab);
        total += t->len[ids[i]];
    }
    char *out = (char *)malloc(total + 1);
    if (!out) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    size_t o = 0;
    int32_t prev = -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char one;
        size_t pl;
        const char *p = piece_of(t, prev, ids[i], &pl, &one);
        memcpy(out + o, p, pl);
        o += pl;
        prev = ids[i];
    }
    out[o] = 0;
    *text = out; *len = o;
    return FB_OK;
}
