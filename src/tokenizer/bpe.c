/* Byte-level BPE with GPT-2 pre-tokenization: the GPT-2 loaders (encoder.json
 * + vocab.bpe, or in-memory token strings + merges) and the encoder shared
 * with trained vocabularies. */
#include "tokenizer/tok_internal.h"
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- GPT-2 byte <-> unicode alphabet ------------------------------------ */
/* bytes_to_unicode() of OpenAI's encoder.py: printable Latin-1 bytes map to
 * themselves, the other 68 bytes to U+0100.. in increasing byte order. */
static void byte_alphabet(int32_t b2u[256], int16_t u2b[512]) {
    for (int i = 0; i < 512; i++) u2b[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        b2u[b] = keep ? b : 256 + n++;
        u2b[b2u[b]] = (int16_t)b;
    }
}

/* Decode one UTF-8 code point (strict); returns its length or 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, int32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = (int32_t)c; return 1; }
    if (c >= 0xC2 && c <= 0xDF && n >= 2 && (s[1] & 0xC0) == 0x80) {
        *cp = (int32_t)(((c & 0x1F) << 6) | (s[1] & 0x3F));
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF && n >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        int32_t v = (int32_t)(((c & 0x0F) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3F));
        if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return 0;
        *cp = v;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4 && n >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
        (s[3] & 0xC0) == 0x80) {
        int32_t v = (int32_t)(((c & 0x07) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3F));
        if (v < 0x10000 || v > 0x10FFFF) return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

/* Turn a token string in the byte alphabet into raw bytes (out has room for
 * n bytes). Returns the byte count, or -1 with *bad set to the offending
 * code point (or -1 for invalid UTF-8). */
static long unmap_token(const int16_t u2b[512], const char *str, size_t n, unsigned char *out, int32_t *bad) {
    size_t i = 0, o = 0;
    while (i < n) {
        int32_t cp;
        size_t l = utf8_decode((const unsigned char *)str + i, n - i, &cp);
        if (!l) { *bad = -1; return -1; }
        if (cp >= 512 || u2b[cp] < 0) { *bad = cp; return -1; }
        out[o++] = (unsigned char)u2b[cp];
        i += l;
    }
    return (long)o;
}

static void describe_bad(char *buf, size_t cap, int32_t bad) {
    if (bad < 0) snprintf(buf, cap, "is not valid UTF-8");
    else snprintf(buf, cap, "has character U+%04X outside GPT-2's byte alphabet", (unsigned)bad);
}

/* Token table from the (already unmapped) token byte strings. */
static fb_status set_tokens(fb_tokenizer *t, int n, const unsigned char *const *tb, const size_t *tl) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += tl[i];
    t->n_vocab = n;
    t->off = (uint32_t *)malloc((size_t)n * sizeof *t->off);
    t->len = (uint32_t *)malloc((size_t)n * sizeof *t->len);
    t->bytes = (char *)malloc(total + 1);
    if (!t->off || !t->len || !t->bytes) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    if (total > UINT32_MAX) return fb_fail(FB_ERR_FORMAT, "tokenizer: vocabulary too large");
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        t->off[i] = (uint32_t)o; t->len[i] = (uint32_t)tl[i];
        if (tl[i]) memcpy(t->bytes + o, tb[i], tl[i]);
        o += tl[i];
    }
    t->bytes[o] = 0;
    t->bytes_size = o;
    return fb_tok_build_strmap(t);
}

static fb_status finish_byte_level(fb_tokenizer *t, const char *name) {
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = fb_tok_lookup(t, &c, 1);
        if (t->byte_id[b] < 0)
            return fb_fail(FB_ERR_FORMAT, "%s: no token for the single byte 0x%02X", name, b);
    }
    t->special_id = fb_tok_lookup(t, "<|endoftext|>", 13);
    t->bos_id = t->eos_id = t->special_id;
    return FB_OK;
}

/* Parse one merge "left right": 0 ok, else sets err. */
static fb_status add_merge(fb_tokenizer *t, const int16_t u2b[512], const char *line, size_t n,
                           int32_t rank, const char *name, long lineno, unsigned char *scratch) {
    /* split on ASCII whitespace into exactly two fields */
    const char *f[3]; size_t fl[3]; int nf = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
        if (i >= n) break;
        size_t st = i;
        while (i < n && !(line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
        if (nf < 3) { f[nf] = line + st; fl[nf] = i - st; }
        nf++;
    }
    if (nf != 2)
        return fb_fail(FB_ERR_FORMAT, "%s: line %ld: expected two tokens separated by a space, found %d field(s)",
                       name, lineno, nf);
    int32_t bad = 0, id[2];
    long bl[2];
    for (int k = 0; k < 2; k++) {
        bl[k] = unmap_token(u2b, f[k], fl[k], scratch + (k ? bl[0] : 0), &bad);
        if (bl[k] < 0) {
            char why[96];
            describe_bad(why, sizeof why, bad);
            return fb_fail(FB_ERR_FORMAT, "%s: line %ld: token '%.*s' %s", name, lineno, (int)fl[k], f[k], why);
        }
        id[k] = fb_tok_lookup(t, scratch + (k ? bl[0] : 0), (size_t)bl[k]);
        if (id[k] < 0)
            return fb_fail(FB_ERR_FORMAT, "%s: line %ld: merge names unknown token '%.*s'", name, lineno,
                           (int)fl[k], f[k]);
    }
    int32_t merged = fb_tok_lookup(t, scratch, (size_t)(bl[0] + bl[1]));
    if (merged < 0)
        return fb_fail(FB_ERR_FORMAT, "%s: line %ld: merged token '%.*s%.*s' is not in the vocabulary", name,
                       lineno, (int)fl[0], f[0], (int)fl[1], f[1]);
    return fb_pairmap_put(&t->pairs, id[0], id[1], rank, merged);
}

typedef struct { const char *key; int64_t id; } kv_ent;

fb_status fb_tok_gpt2_from_buffers(fb_tokenizer **out, const char *json, size_t json_len,
                                   const char *json_name, const char *bpe, size_t bpe_len,
                                   const char *bpe_name, const char *spec) {
    *out = NULL;
    if (json_len > INT_MAX) return fb_fail(FB_ERR_FORMAT, "%s: file too large", json_name);
    fb_tokenizer *t = fb_tok_alloc(FB_TOKENIZER_GPT2, spec);
    if (!t) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    fb_status st = FB_OK;
    json_tokener *tok = json_tokener_new();
    json_object *root = NULL;
    unsigned char **tb = NULL; size_t *tl = NULL; unsigned char *arena = NULL;
    int32_t b2u[256]; int16_t u2b[512];
    byte_alphabet(b2u, u2b);
    if (!tok) { st = fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); goto done; }
    root = json_tokener_parse_ex(tok, json, (int)json_len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!root || jerr != json_tokener_success) {
        if (jerr == json_tokener_continue) jerr = json_tokener_error_parse_eof;
        st = fb_fail(FB_ERR_FORMAT, "%s: offset %zu: invalid JSON (%s)", json_name,
                     json_tokener_get_parse_end(tok), json_tokener_error_desc(jerr));
        goto done;
    }
    {
        size_t end = json_tokener_get_parse_end(tok);
        while (end < json_len && (json[end] == ' ' || json[end] == '\n' || json[end] == '\r' || json[end] == '\t')) end++;
        if (end < json_len) {
            st = fb_fail(FB_ERR_FORMAT, "%s: offset %zu: unexpected data after the JSON object", json_name, end);
            goto done;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        st = fb_fail(FB_ERR_FORMAT, "%s: offset 0: expected a JSON object mapping token strings to ids", json_name);
        goto done;
    }
    int n = json_object_object_length(root);
    if (n <= 0) { st = fb_fail(FB_ERR_FORMAT, "%s: the vocabulary is empty", json_name); goto done; }
    tb = (unsigned char **)calloc((size_t)n, sizeof *tb);
    tl = (size_t *)calloc((size_t)n, sizeof *tl);
    arena = (unsigned char *)malloc(json_len + 1);
    if (!tb || !tl || !arena) { st = fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); goto done; }
    size_t ao = 0;
    {
        json_object_object_foreach(root, key, val) {
            if (!json_object_is_type(val, json_type_int)) {
                st = fb_fail(FB_ERR_FORMAT, "%s: token \"%.60s\": id is not an integer", json_name, key);
                goto done;
            }
            int64_t id = json_object_get_int64(val);
            if (id < 0 || id >= n) {
                st = fb_fail(FB_ERR_FORMAT, "%s: token \"%.60s\": id %lld out of range for %d entries", json_name,
                             key, (long long)id, n);
                goto done;
            }
            if (tb[id]) {
                st = fb_fail(FB_ERR_FORMAT, "%s: token \"%.60s\": duplicate id %lld", json_name, key, (long long)id);
                goto done;
            }
            size_t kl = strlen(key);
            int32_t bad = 0;
            long bl = unmap_token(u2b, key, kl, arena + ao, &bad);
            if (bl < 0) {
                char why[96];
                describe_bad(why, sizeof why, bad);
                st = fb_fail(FB_ERR_FORMAT, "%s: token \"%.60s\" (id %lld) %s", json_name, key, (long long)id, why);
                goto done;
            }
            if (bl == 0) {
                st = fb_fail(FB_ERR_FORMAT, "%s: empty token string (id %lld)", json_name, (long long)id);
                goto done;
            }
            tb[id] = arena + ao; tl[id] = (size_t)bl;
            ao += (size_t)bl;
        }
    }
    if ((st = set_tokens(t, n, (const unsigned char *const *)tb, tl)) != FB_OK) goto done;
    if ((st = finish_byte_level(t, json_name)) != FB_OK) goto done;
    /* merges */
    if ((st = fb_pairmap_init(&t->pairs, (size_t)n)) != FB_OK) goto done;
    {
        unsigned char *scratch = (unsigned char *)malloc(bpe_len + 1);
        if (!scratch) { st = fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); goto done; }
        size_t i = 0; long lineno = 0; int32_t rank = 0;
        while (i < bpe_len && st == FB_OK) {
            size_t e = i;
            while (e < bpe_len && bpe[e] != '\n') e++;
            lineno++;
            size_t ll = e - i;
            while (ll && bpe[i + ll - 1] == '\r') ll--;
            int blank = 1;
            for (size_t k = 0; k < ll; k++) if (bpe[i + k] != ' ' && bpe[i + k] != '\t') { blank = 0; break; }
            if (!(lineno == 1 && ll && bpe[i] == '#') && !blank) {
                if (memchr(bpe + i, 0, ll))
                    st = fb_fail(FB_ERR_FORMAT, "%s: line %ld: NUL byte", bpe_name, lineno);
                else if (rank == INT32_MAX)
                    st = fb_fail(FB_ERR_FORMAT, "%s: line %ld: too many merges", bpe_name, lineno);
                else
                    st = add_merge(t, u2b, bpe + i, ll, rank++, bpe_name, lineno, scratch);
            }
            i = e + 1;
        }
        free(scratch);
        if (st != FB_OK) goto done;
    }
done:
    if (tok) json_tokener_free(tok);
    if (root) json_object_put(root);
    free(tb); free(tl); free(arena);
    if (st != FB_OK) { fb_tokenizer_free(t); return st; }
    *out = t;
    return FB_OK;
}

fb_status fb_tokenizer_from_gpt2(fb_tokenizer **out, const char *const *tokens, int n_tokens,
                                 const char *const *merges, int n_merges) {
    if (!out || (!tokens && n_tokens) || n_tokens <= 0 || n_merges < 0 || (!merges && n_merges))
        return fb_fail(FB_ERR_INVALID_ARG, "fb_tokenizer_from_gpt2: bad arguments");
    *out = NULL;
    fb_tokenizer *t = fb_tok_alloc(FB_TOKENIZER_GPT2, "gpt2:memory");
    if (!t) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    int32_t b2u[256]; int16_t u2b[512];
    byte_alphabet(b2u, u2b);
    fb_status st = FB_OK;
    unsigned char **tb = (unsigned char **)calloc((size_t)n_tokens, sizeof *tb);
    size_t *tl = (size_t *)calloc((size_t)n_tokens, sizeof *tl);
    size_t total = 0;
    for (int i = 0; i < n_tokens; i++) total += tokens[i] ? strlen(tokens[i]) : 0;
    unsigned char *arena = (unsigned char *)malloc(total + 1);
    if (!tb || !tl || !arena) { st = fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); goto done; }
    size_t ao = 0;
    for (int i = 0; i < n_tokens; i++) {
        if (!tokens[i]) { st = fb_fail(FB_ERR_INVALID_ARG, "gpt2 vocabulary: token %d is NULL", i); goto done; }
        int32_t bad = 0;
        long bl = unmap_token(u2b, tokens[i], strlen(tokens[i]), arena + ao, &bad);
        if (bl <= 0) {
            char why[96];
            if (bl == 0) snprintf(why, sizeof why, "is empty");
            else describe_bad(why, sizeof why, bad);
            st = fb_fail(FB_ERR_FORMAT, "gpt2 vocabulary: token %d \"%.60s\" %s", i, tokens[i], why);
            goto done;
        }
        tb[i] = arena + ao; tl[i] = (size_t)bl; ao += (size_t)bl;
    }
    if ((st = set_tokens(t, n_tokens, (const unsigned char *const *)tb, tl)) != FB_OK) goto done;
    if ((st = finish_byte_level(t, "gpt2 vocabulary")) != FB_OK) goto done;
    if ((st = fb_pairmap_init(&t->pairs, (size_t)n_merges)) != FB_OK) goto done;
    {
        size_t mx = 0;
        for (int i = 0; i < n_merges; i++) {
            if (!merges[i]) { st = fb_fail(FB_ERR_INVALID_ARG, "gpt2 merges: merge %d is NULL", i); goto done; }
            size_t l = strlen(merges[i]);
            if (l > mx) mx = l;
        }
        unsigned char *scratch = (unsigned char *)malloc(mx + 1);
        if (!scratch) { st = fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); goto done; }
        for (int i = 0; i < n_merges && st == FB_OK; i++)
            st = add_merge(t, u2b, merges[i], strlen(merges[i]), i, "gpt2 merges", (long)i + 1, scratch);
        free(scratch);
    }
done:
    free(tb); free(tl); free(arena);
    if (st != FB_OK) { fb_tokenizer_free(t); return st; }
    *out = t;
    return FB_OK;
}

/* ---- encoder ------------------------------------------------------------ */
/* Per-call word cache: pre-token bytes -> ids (arena offset, count). */
typedef struct { uint64_t h; const unsigned char *k; uint32_t kl, off, nid; } cache_slot;
typedef struct {
    cache_slot *slots; size_t mask, count;
    int32_t *ids; size_t n, cap;
} word_cache;

#define FB_CACHE_MAX_WORD 256

static int cache_grow(word_cache *c) {
    size_t ncap = c->slots ? (c->mask + 1) * 2 : 4096;
    cache_slot *ns = (cache_slot *)calloc(ncap, sizeof *ns);
    if (!ns) return 0;
    for (size_t i = 0; c->slots && i <= c->mask; i++) {
        if (!c->slots[i].k) continue;
        size_t j = (size_t)c->slots[i].h & (ncap - 1);
        while (ns[j].k) j = (j + 1) & (ncap - 1);
        ns[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = ns; c->mask = ncap - 1;
    return 1;
}

typedef struct {
    const fb_tokenizer *t;
    fb_merge_ws *ws;
    int32_t *syms; size_t scap;
    word_cache cache;
    int use_cache;
} enc_ctx;

static fb_status encode_word(enc_ctx *x, const unsigned char *w, size_t n, fb_idbuf *out) {
    const fb_tokenizer *t = x->t;
    if (n == 1) {
        FB_TRY(fb_idbuf_reserve(out, 1));
        out->v[out->n++] = t->byte_id[w[0]];
        return FB_OK;
    }
    uint64_t h = 0; cache_slot *slot = NULL;
    if (x->use_cache && n <= FB_CACHE_MAX_WORD) {
        h = fb_tok_hash_bytes(w, n);
        word_cache *c = &x->cache;
        size_t i = (size_t)h & c->mask;
        for (;;) {
            cache_slot *s = &c->slots[i];
            if (!s->k) { slot = s; break; }
            if (s->h == h && s->kl == n && memcmp(s->k, w, n) == 0) {
                FB_TRY(fb_idbuf_reserve(out, s->nid));
                memcpy(out->v + out->n, c->ids + s->off, s->nid * sizeof(int32_t));
                out->n += s->nid;
                return FB_OK;
            }
            i = (i + 1) & c->mask;
        }
    }
    if (n > x->scap) {
        size_t nc = x->scap ? x->scap : 64;
        while (nc < n) nc *= 2;
        int32_t *ns = (int32_t *)realloc(x->syms, nc * sizeof *ns);
        if (!ns) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
        x->syms = ns; x->scap = nc;
    }
    for (size_t i = 0; i < n; i++) x->syms[i] = t->byte_id[w[i]];
    size_t m = fb_merge_bpe(x->ws, &t->pairs, x->syms, n);
    if (m == (size_t)-1) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    FB_TRY(fb_idbuf_reserve(out, m));
    memcpy(out->v + out->n, x->syms, m * sizeof(int32_t));
    out->n += m;
    if (slot) {
        word_cache *c = &x->cache;
        if (c->n + m > c->cap) {
            size_t nc = c->cap ? c->cap * 2 : 65536;
            while (nc < c->n + m) nc *= 2;
            int32_t *ni = (int32_t *)realloc(c->ids, nc * sizeof *ni);
            if (!ni) return FB_OK;   /* cache is optional */
            c->ids = ni; c->cap = nc;
        }
        slot->h = h; slot->k = w; slot->kl = (uint32_t)n; slot->off = (uint32_t)c->n; slot->nid = (uint32_t)m;
        memcpy(c->ids + c->n, x->syms, m * sizeof(int32_t));
        c->n += m;
        if (++c->count * 2 > c->mask + 1 && !cache_grow(c)) x->use_cache = 0;
    }
    return FB_OK;
}

static fb_status encode_segment(enc_ctx *x, const unsigned char *s, size_t n, fb_idbuf *out) {
    size_t pos = 0;
    while (pos < n) {
        size_t end = fb_pretok_next(s, n, pos);
        FB_TRY(encode_word(x, s + pos, end - pos, out));
        pos = end;
    }
    return FB_OK;
}

fb_status fb_tok_encode_bpe(const fb_tokenizer *t, const unsigned char *s, size_t n, unsigned flags,
                            fb_idbuf *out) {
    fb_pretok_init();
    enc_ctx x;
    memset(&x, 0, sizeof x);
    x.t = t;
    x.ws = fb_merge_ws_new();
    if (!x.ws) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    if (n >= 4096 && cache_grow(&x.cache)) x.use_cache = 1;
    fb_status st = FB_OK;
    const unsigned char *sp = NULL; size_t spl = 0;
    if ((flags & FB_TOK_ALLOW_SPECIAL) && t->special_id >= 0) {
        sp = (const unsigned char *)t->bytes + t->off[t->special_id];
        spl = t->len[t->special_id];
    }
    size_t pos = 0;
    while (pos < n && st == FB_OK) {
        size_t seg_end = n;
        int hit = 0;
        if (sp && spl) {
            for (size_t i = pos; i + spl <= n; i++) {
                const unsigned char *q = (const unsigned char *)memchr(s + i, sp[0], n - spl + 1 - i);
                if (!q) break;
                i = (size_t)(q - s);
                if (memcmp(q, sp, spl) == 0) { seg_end = i; hit = 1; break; }
            }
        }
        st = encode_segment(&x, s + pos, seg_end - pos, out);
        if (st == FB_OK && hit) {
            st = fb_idbuf_reserve(out, 1);
            if (st == FB_OK) out->v[out->n++] = t->special_id;
        }
        pos = hit ? seg_end + spl : n;
    }
    fb_merge_ws_free(x.ws);
    free(x.syms);
    free(x.cache.slots);
    free(x.cache.ids);
    return st;
}
