/* llama2.c / SentencePiece-style BPE: the tokenizer.bin loader, the
 * in-memory constructor, and an encoder that gives exactly the ids of
 * llama2.c run.c encode() (see merge.c for the equivalence argument). */
#include "tokenizer/tok_internal.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* run.c decode(): sscanf(piece, "<0x%02hhX>", &byte_val) == 1. Same call,
 * so the same (lenient) set of pieces counts as a byte piece. */
int fb_tok_parse_byte_piece(const char *p, size_t n) {
    char tmp[64];
    char *buf = n < sizeof tmp ? tmp : (char *)malloc(n + 1);
    if (!buf) return -1;
    memcpy(buf, p, n);
    buf[n] = 0;
    unsigned char v;
    int r = (n >= 3 && p[0] == '<') ? sscanf(buf, "<0x%02hhX>", &v) : 0;
    if (buf != tmp) free(buf);
    return r == 1 ? (int)v : -1;
}

fb_status fb_tok_spm_finish(fb_tokenizer *t) {
    int n = t->n_vocab;
    FB_TRY(fb_tok_build_strmap(t));
    t->dec_byte = (int16_t *)malloc((size_t)n * sizeof *t->dec_byte);
    if (!t->dec_byte) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    for (int i = 0; i < n; i++) t->dec_byte[i] = (int16_t)fb_tok_parse_byte_piece(t->bytes + t->off[i], t->len[i]);
    for (int b = 0; b < 256; b++) t->fallback[b] = b + 3 < n ? b + 3 : 0;
    t->space_id = fb_tok_lookup(t, " ", 1);
    /* Pair map: every split of every piece into two pieces. The merged id is
     * the id str_lookup() would return for the concatenation (lowest id with
     * that string); pairs whose merged score is not > -1e10f never merge. */
    FB_TRY(fb_pairmap_init(&t->pairs, (size_t)n * 4));
    const float floor_score = -1e10f;
    for (int m = 0; m < n; m++) {
        float sc = t->scores[m];
        if (!(sc > floor_score)) continue;
        const char *s = t->bytes + t->off[m];
        size_t l = t->len[m];
        if (l < 2 || fb_tok_lookup(t, s, l) != m) continue;
        for (size_t k = 1; k < l; k++) {
            int32_t a = fb_tok_lookup(t, s, k);
            if (a < 0) continue;
            int32_t b = fb_tok_lookup(t, s + k, l - k);
            if (b < 0) continue;
            FB_TRY(fb_pairmap_put(&t->pairs, a, b, 0, m));
        }
    }
    return FB_OK;
}

fb_status fb_tok_llama2c_from_buffer(fb_tokenizer **out, const unsigned char *buf, size_t n,
                                     int vocab_size, const char *name, const char *spec) {
    *out = NULL;
    if (n < 4) return fb_fail(FB_ERR_FORMAT, "%s: offset 0: truncated (no max_token_length header)", name);
    int32_t maxlen;
    memcpy(&maxlen, buf, 4);
    if (maxlen < 0) return fb_fail(FB_ERR_FORMAT, "%s: offset 0: negative max_token_length %d", name, (int)maxlen);
    /* pass 1: count and validate */
    size_t o = 4, total = 0;
    int count = 0;
    while (vocab_size > 0 ? count < vocab_size : o < n) {
        if (n - o < 8)
            return fb_fail(FB_ERR_FORMAT, "%s: offset %zu: truncated in the header of token %d (need 8 bytes, %zu left)",
                           name, o, count, n - o);
        int32_t l;
        memcpy(&l, buf + o + 4, 4);
        if (l < 0) return fb_fail(FB_ERR_FORMAT, "%s: offset %zu: token %d has negative length %d", name, o + 4, count, (int)l);
        if ((size_t)l > n - o - 8)
            return fb_fail(FB_ERR_FORMAT, "%s: offset %zu: token %d length %d runs past the end of the file (%zu bytes)",
                           name, o + 4, count, (int)l, n);
        o += 8 + (size_t)l;
        total += (size_t)l;
        if (++count == INT32_MAX) return fb_fail(FB_ERR_FORMAT, "%s: too many tokens", name);
    }
    if (count == 0) return fb_fail(FB_ERR_FORMAT, "%s: offset 4: the vocabulary is empty", name);
    fb_tokenizer *t = fb_tok_alloc(FB_TOKENIZER_LLAMA2C, spec);
    if (!t) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    t->n_vocab = count;
    t->off = (uint32_t *)malloc((size_t)count * sizeof *t->off);
    t->len = (uint32_t *)malloc((size_t)count * sizeof *t->len);
    t->scores = (float *)malloc((size_t)count * sizeof *t->scores);
    t->bytes = (char *)malloc(total + 1);
    if (!t->off || !t->len || !t->scores || !t->bytes || total > UINT32_MAX) {
        fb_tokenizer_free(t);
        return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    }
    o = 4;
    size_t bo = 0;
    for (int i = 0; i < count; i++) {
        int32_t l;
        memcpy(&t->scores[i], buf + o, 4);
        memcpy(&l, buf + o + 4, 4);
        memcpy(t->bytes + bo, buf + o + 8, (size_t)l);
        t->off[i] = (uint32_t)bo; t->len[i] = (uint32_t)l;
        bo += (size_t)l; o += 8 + (size_t)l;
    }
    t->bytes[bo] = 0;
    t->bytes_size = bo;
    t->bos_id = count > 1 ? 1 : -1;
    t->eos_id = count > 2 ? 2 : -1;
    fb_status st = fb_tok_spm_finish(t);
    if (st != FB_OK) { fb_tokenizer_free(t); return st; }
    *out = t;
    return FB_OK;
}

fb_status fb_tokenizer_from_sentencepiece(fb_tokenizer **out, const char *const *pieces, const float *scores,
                                          int n, int bos_id, int eos_id) {
    if (!out || !pieces || !scores || n <= 0 || bos_id >= n || eos_id >= n)
        return fb_fail(FB_ERR_INVALID_ARG, "fb_tokenizer_from_sentencepiece: bad arguments");
    *out = NULL;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!pieces[i]) return fb_fail(FB_ERR_INVALID_ARG, "sentencepiece vocabulary: piece %d is NULL", i);
        total += strlen(pieces[i]);
    }
    fb_tokenizer *t = fb_tok_alloc(FB_TOKENIZER_LLAMA2C, "sentencepiece:memory");
    if (!t) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    t->n_vocab = n;
    t->off = (uint32_t *)malloc((size_t)n * sizeof *t->off);
    t->len = (uint32_t *)malloc((size_t)n * sizeof *t->len);
    t->scores = (float *)malloc((size_t)n * sizeof *t->scores);
    t->bytes = (char *)malloc(total + 1);
    if (!t->off || !t->len || !t->scores || !t->bytes || total > UINT32_MAX) {
        fb_tokenizer_free(t);
        return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    }
    size_t bo = 0;
    for (int i = 0; i < n; i++) {
        const char *p = pieces[i];
        t->off[i] = (uint32_t)bo;
        for (size_t k = 0; p[k];) {
            /* U+2581 LOWER ONE EIGHTH BLOCK is SentencePiece's space */
            if ((unsigned char)p[k] == 0xE2 && (unsigned char)p[k + 1] == 0x96 && (unsigned char)p[k + 2] == 0x81) {
                t->bytes[bo++] = ' ';
                k += 3;
            } else {
                t->bytes[bo++] = p[k++];
            }
        }
        t->len[i] = (uint32_t)(bo - t->off[i]);
        t->scores[i] = scores[i];
    }
    t->bytes[bo] = 0;
    t->bytes_size = bo;
    t->bos_id = bos_id < 0 ? -1 : bos_id;
    t->eos_id = eos_id < 0 ? -1 : eos_id;
    fb_status st = fb_tok_spm_finish(t);
    if (st != FB_OK) { fb_tokenizer_free(t); return st; }
    /* byte fallback: when id byte+3 is not "<0xHH>" (vocabularies laid out
     * differently from Llama's), use the "<0xHH>" piece if there is one. */
    for (int b = 0; b < 256; b++) {
        char nm[8];
        snprintf(nm, sizeof nm, "<0x%02X>", b);
        int32_t id = fb_tok_lookup(t, nm, 6);
        if (id >= 0) t->fallback[b] = id;
    }
    *out = t;
    return FB_OK;
}

fb_status fb_tok_encode_spm(const fb_tokenizer *t, const unsigned char *s, size_t n, unsigned flags,
                            fb_idbuf *out) {
    size_t start = out->n;
    FB_TRY(fb_idbuf_reserve(out, n + 3));
    if ((flags & FB_TOK_ADD_BOS) && t->bos_id >= 0) out->v[out->n++] = t->bos_id;
    if (n > 0) out->v[out->n++] = t->space_id >= 0 ? t->space_id : t->fallback[' '];
    size_t i = 0;
    while (i < n) {
        size_t st = i++;
        while (i < n && (s[i] & 0xC0) == 0x80 && i - st < 4) i++;
        int32_t id = fb_tok_lookup(t, s + st, i - st);
        if (id >= 0) out->v[out->n++] = id;
        else for (size_t k = st; k < i; k++) out->v[out->n++] = t->fallback[s[k]];
    }
    fb_merge_ws *ws = fb_merge_ws_new();
    if (!ws) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    size_t m = fb_merge_spm(ws, t, out->v + start, out->n - start);
    fb_merge_ws_free(ws);
    if (m == (size_t)-1) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    out->n = start + m;
    if ((flags & FB_TOK_ADD_EOS) && t->eos_id >= 0) out->v[out->n++] = t->eos_id;
    return FB_OK;
}
