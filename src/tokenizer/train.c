/* Byte-level BPE training and the "flashblock-bpe 1" vocabulary format
 * (documented in docs/TOKENIZERS.md). */
#include "tokenizer/tok_internal.h"
#include "io/atomic_write.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FB_SPECIAL_TEXT "<|endoftext|>"

/* ---- loading ------------------------------------------------------------ */
typedef struct { const char *p; size_t n; long lineno; const char *buf; size_t len; size_t pos; } line_reader;

static int next_line(line_reader *r) {
    while (r->pos < r->len) {
        size_t s = r->pos, e = s;
        while (e < r->len && r->buf[e] != '\n') e++;
        r->pos = e + 1;
        r->lineno++;
        size_t l = e - s;
        while (l && (r->buf[s + l - 1] == '\r' || r->buf[s + l - 1] == ' ' || r->buf[s + l - 1] == '\t')) l--;
        if (l == 0 || r->buf[s] == '#') continue;
        r->p = r->buf + s; r->n = l;
        return 1;
    }
    return 0;
}

/* parse "KEY <int>" */
static int parse_kv(const line_reader *r, const char *key, long long *v) {
    size_t kl = strlen(key);
    if (r->n <= kl + 1 || memcmp(r->p, key, kl) != 0 || r->p[kl] != ' ') return 0;
    char tmp[32];
    size_t vl = r->n - kl - 1;
    if (vl >= sizeof tmp) return 0;
    memcpy(tmp, r->p + kl + 1, vl);
    tmp[vl] = 0;
    char *end;
    errno = 0;
    long long x = strtoll(tmp, &end, 10);
    if (errno || *end || end == tmp || tmp[0] == '+' || tmp[0] == ' ') return 0;
    *v = x;
    return 1;
}

static int parse_pair(const char *p, size_t n, long long *a, long long *b) {
    char tmp[48];
    if (n >= sizeof tmp) return 0;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (!((tmp[i] >= '0' && tmp[i] <= '9') || tmp[i] == ' ')) return 0;
    char *e1, *e2;
    errno = 0;
    *a = strtoll(tmp, &e1, 10);
    if (e1 == tmp || *e1 != ' ') return 0;
    *b = strtoll(e1 + 1, &e2, 10);
    if (e2 == e1 + 1 || *e2 || errno || e1[1] == ' ') return 0;
    return 1;
}

fb_status fb_tok_trained_from_buffer(fb_tokenizer **out, const char *buf, size_t n, const char *name,
                                     const char *spec) {
    *out = NULL;
    line_reader r = { 0 };
    r.buf = buf; r.len = n;
    if (!next_line(&r) || r.n != 16 || memcmp(r.p, "flashblock-bpe 1", 16) != 0)
        return fb_fail(FB_ERR_FORMAT, "%s: line %ld: not a flashblock-bpe vocabulary (expected first line "
                                      "\"flashblock-bpe 1\")", name, r.lineno ? r.lineno : 1);
    long long vocab = 0, merges = 0, special = -1;
    if (!next_line(&r) || !parse_kv(&r, "vocab_size", &vocab))
        return fb_fail(FB_ERR_FORMAT, "%s: line %ld: expected \"vocab_size N\"", name, r.lineno);
    if (vocab < 256 || vocab > (1LL << 30))
        return fb_fail(FB_ERR_FORMAT, "%s: line %ld: vocab_size %lld out of range [256, 2^30]", name, r.lineno, vocab);
    if (!next_line(&r)) return fb_fail(FB_ERR_FORMAT, "%s: line %ld: truncated after vocab_size", name, r.lineno);
    static const char sp_key[] = "special " FB_SPECIAL_TEXT;
    if (r.n > sizeof sp_key - 1 && memcmp(r.p, sp_key, sizeof sp_key - 1) == 0) {
        if (!parse_kv(&r, "special " FB_SPECIAL_TEXT, &special))
            return fb_fail(FB_ERR_FORMAT, "%s: line %ld: expected \"special %s ID\"", name, r.lineno, FB_SPECIAL_TEXT);
        if (!next_line(&r)) return fb_fail(FB_ERR_FORMAT, "%s: line %ld: truncated after special", name, r.lineno);
    }
    if (!parse_kv(&r, "merges", &merges))
        return fb_fail(FB_ERR_FORMAT, "%s: line %ld: expected \"merges M\"", name, r.lineno);
    long long want = 256 + merges + (special >= 0 ? 1 : 0);
    if (merges < 0 || want != vocab)
        return fb_fail(FB_ERR_FORMAT, "%s: line %ld: merges %lld inconsistent with vocab_size %lld (256 bytes + merges%s)",
                       name, r.lineno, merges, vocab, special >= 0 ? " + 1 special" : "");
    if (special >= 0 && special != 256 + merges)
        return fb_fail(FB_ERR_FORMAT, "%s: special id %lld must be %lld (the last id)", name, special, 256 + merges);
    int nv = (int)vocab;
    fb_tokenizer *t = fb_tok_alloc(FB_TOKENIZER_TRAINED, spec);
    if (!t) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory");
    fb_status st = FB_OK;
    t->n_vocab = nv;
    t->off = (uint32_t *)malloc((size_t)nv * sizeof *t->off);
    t->len = (uint32_t *)malloc((size_t)nv * sizeof *t->len);
    size_t bcap = 4096, bn = 0;
    t->bytes = (char *)malloc(bcap);
    if (!t->off || !t->len || !t->bytes) { st = fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); goto fail; }
    for (int b = 0; b < 256; b++) { t->off[b] = (uint32_t)b; t->len[b] = 1; t->bytes[b] = (char)b; t->byte_id[b] = b; }
    bn = 256;
    if ((st = fb_pairmap_init(&t->pairs, (size_t)merges)) != FB_OK) goto fail;
    for (long long i = 0; i < merges; i++) {
        long long a, b;
        if (!next_line(&r)) {
            st = fb_fail(FB_ERR_FORMAT, "%s: line %ld: truncated: %lld of %lld merges present", name, r.lineno + 1, i, merges);
            goto fail;
        }
        if (!parse_pair(r.p, r.n, &a, &b)) {
            st = fb_fail(FB_ERR_FORMAT, "%s: line %ld: expected a merge \"LEFT RIGHT\" (two decimal ids)", name, r.lineno);
            goto fail;
        }
        long long id = 256 + i;
        if (a >= id || b >= id) {
            st = fb_fail(FB_ERR_FORMAT, "%s: line %ld: merge %lld names unknown token %lld (only ids < %lld exist so far)",
                         name, r.lineno, i, a >= id ? a : b, id);
            goto fail;
        }
        size_t l = (size_t)t->len[a] + t->len[b];
        if (l > UINT32_MAX || bn + l > UINT32_MAX) { st = fb_fail(FB_ERR_FORMAT, "%s: tokens too long", name); goto fail; }
        if (bn + l + 16 > bcap) {
            while (bn + l + 16 > bcap) bcap *= 2;
            char *nb = (char *)realloc(t->bytes, bcap);
            if (!nb) { st = fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); goto fail; }
            t->bytes = nb;
        }
        memmove(t->bytes + bn, t->bytes + t->off[a], t->len[a]);
        memmove(t->bytes + bn + t->len[a], t->bytes + t->off[b], t->len[b]);
        t->off[id] = (uint32_t)bn; t->len[id] = (uint32_t)l;
        bn += l;
        if ((st = fb_pairmap_put(&t->pairs, (int32_t)a, (int32_t)b, (int32_t)i, (int32_t)id)) != FB_OK) goto fail;
    }
    if (special >= 0) {
        if (bn + 32 > bcap) {
            char *nb = (char *)realloc(t->bytes, bcap + 32);
            if (!nb) { st = fb_fail(FB_ERR_OOM, "tokenizer: out of memory"); goto fail; }
            t->bytes = nb;
        }
        memcpy(t->bytes + bn, FB_SPECIAL_TEXT, 13);
        t->off[special] = (uint32_t)bn; t->len[special] = 13;
        bn += 13;
        t->special_id = t->bos_id = t->eos_id = (int)special;
    }
    t->bytes[bn] = 0;
    t->bytes_size = bn;
    if (next_line(&r)) {
        st = fb_fail(FB_ERR_FORMAT, "%s: line %ld: unexpected data after the last merge", name, r.lineno);
        goto fail;
    }
    if ((st = fb_tok_build_strmap(t)) != FB_OK) goto fail;
    *out = t;
    return FB_OK;
fail:
    fb_tokenizer_free(t);
    return st;
}

/* ---- training ----------------------------------------------------------- */
typedef struct { uint64_t h; const unsigned char *k; uint32_t kl; int32_t idx; } wslot;

typedef struct {           /* per pair */
    int64_t count;
    int32_t a, b;
    int32_t mark;                     /* last merge step that queued it */
    int32_t *words; uint32_t nw, cw;  /* words that contain (or contained) the pair */
} pstat;

typedef struct { int64_t count; int32_t a, b; } hent;

typedef struct {
    pstat *p; size_t n, cap;
    fb_pairmap map;                    /* (a,b) -> index into p (in .merged) */
    hent *heap; size_t hn, hcap;
} pairs_t;

static int hless(const hent *x, const hent *y) {   /* x comes out first */
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static int hpush(pairs_t *P, hent e) {
    if (P->hn == P->hcap) {
        size_t nc = P->hcap ? P->hcap * 2 : 1024;
        hent *nh = (hent *)realloc(P->heap, nc * sizeof *nh);
        if (!nh) return 0;
        P->heap = nh; P->hcap = nc;
    }
    size_t i = P->hn++;
    while (i > 0) {
        size_t q = (i - 1) / 2;
        if (!hless(&e, &P->heap[q])) break;
        P->heap[i] = P->heap[q];
        i = q;
    }
    P->heap[i] = e;
    return 1;
}

static hent hpop(pairs_t *P) {
    hent top = P->heap[0], last = P->heap[--P->hn];
    size_t n = P->hn, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hless(&P->heap[c + 1], &P->heap[c])) c++;
        if (!hless(&P->heap[c], &last)) break;
        P->heap[i] = P->heap[c];
        i = c;
    }
    if (n) P->heap[i] = last;
    return top;
}

static int64_t pair_index(pairs_t *P, int32_t a, int32_t b) {
    const fb_pair_slot *s = fb_pairmap_get(&P->map, a, b);
    if (s) return s->merged;
    if (P->n == P->cap) {
        size_t nc = P->cap ? P->cap * 2 : 4096;
        pstat *np = (pstat *)realloc(P->p, nc * sizeof *np);
        if (!np) return -1;
        P->p = np; P->cap = nc;
    }
    pstat *ps = &P->p[P->n];
    memset(ps, 0, sizeof *ps);
    ps->a = a; ps->b = b; ps->mark = -1;
    if (fb_pairmap_put(&P->map, a, b, 0, (int32_t)P->n) != FB_OK) return -1;
    return (int64_t)P->n++;
}

static int add_word_to(pstat *ps, int32_t w) {
    if (ps->nw && ps->words[ps->nw - 1] == w) return 1;
    if (ps->nw == ps->cw) {
        uint32_t nc = ps->cw ? ps->cw * 2 : 4;
        int32_t *nw = (int32_t *)realloc(ps->words, nc * sizeof *nw);
        if (!nw) return 0;
        ps->words = nw; ps->cw = nc;
    }
    ps->words[ps->nw++] = w;
    return 1;
}

typedef struct {
    int32_t *sym;      /* all words' symbols */
    size_t *off;       /* start of word w */
    uint32_t *len;     /* current length */
    int64_t *cnt;      /* occurrences */
    size_t nwords;
} words_t;

static fb_status write_vocab(const char *out_path, const int32_t *ma, const int32_t *mb, int nm, size_t data_len) {
    /* temp file, fsync, rename (io/atomic_write): an old vocabulary at
     * out_path survives any failure; missing parent folders are made */
    fb_atomic_file af;
    FB_TRY(fb_atomic_open(&af, out_path));
    FILE *f = af.fp;
    fprintf(f, "flashblock-bpe 1\n# byte-level BPE, GPT-2 pre-tokenization, trained by flashblock on %zu bytes\n"
               "# ids 0-255 are the bytes; merge line i (0-based) creates id 256+i; the special token is last\n",
            data_len);
    fprintf(f, "vocab_size %d\nspecial %s %d\nmerges %d\n", 256 + nm + 1, FB_SPECIAL_TEXT, 256 + nm, nm);
    for (int i = 0; i < nm; i++) fprintf(f, "%d %d\n", (int)ma[i], (int)mb[i]);
    if (ferror(f)) {
        int e = errno;
        fb_atomic_abort(&af);
        return fb_fail(FB_ERR_IO, "%s: write failed: %s", out_path, strerror(e));
    }
    return fb_atomic_commit(&af);
}

fb_status fb_tokenizer_train_bpe(const char *data, size_t len, int vocab_size, const char *out_path,
                                 fb_bpe_progress_fn progress, void *user) {
    if ((!data && len) || !out_path) return fb_fail(FB_ERR_INVALID_ARG, "tokenizer train: NULL argument");
    if (vocab_size < 257 || vocab_size > (1 << 24))
        return fb_fail(FB_ERR_INVALID_ARG, "tokenizer train: vocab size %d out of range [257, 16777216]", vocab_size);
    fb_pretok_init();
    const unsigned char *s = (const unsigned char *)data;
    fb_status st = FB_OK;
    /* 1. unique pre-tokens with counts */
    size_t wcap = 1 << 14;
    wslot *ws = (wslot *)calloc(wcap, sizeof *ws);
    size_t nuniq = 0;
    int64_t *wcnt = NULL; size_t wcnt_cap = 0;
    const unsigned char **wk = NULL; uint32_t *wl = NULL;
    words_t W = { 0 };
    pairs_t P = { 0 };
    int32_t *ma = NULL, *mb = NULL;
    int32_t *stamp = NULL;
    int nm = 0, want = vocab_size - 257;
    if (!ws) { st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done; }
    for (size_t pos = 0; pos < len;) {
        size_t end = fb_pretok_next(s, len, pos);
        size_t kl = end - pos;
        uint64_t h = fb_tok_hash_bytes(s + pos, kl);
        size_t i = (size_t)h & (wcap - 1);
        while (ws[i].k && !(ws[i].h == h && ws[i].kl == kl && memcmp(ws[i].k, s + pos, kl) == 0)) i = (i + 1) & (wcap - 1);
        if (ws[i].k) {
            wcnt[ws[i].idx]++;
        } else {
            if (nuniq == wcnt_cap) {
                wcnt_cap = wcnt_cap ? wcnt_cap * 2 : 4096;
                int64_t *nc = (int64_t *)realloc(wcnt, wcnt_cap * sizeof *nc);
                const unsigned char **nk = (const unsigned char **)realloc(wk, wcnt_cap * sizeof *nk);
                if (nc) wcnt = nc;
                if (nk) wk = nk;
                uint32_t *nl = (uint32_t *)realloc(wl, wcnt_cap * sizeof *nl);
                if (nl) wl = nl;
                if (!nc || !nk || !nl) { st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done; }
            }
            if (kl > UINT32_MAX) { st = fb_fail(FB_ERR_INVALID_ARG, "tokenizer train: pre-token too long"); goto done; }
            ws[i].h = h; ws[i].k = s + pos; ws[i].kl = (uint32_t)kl; ws[i].idx = (int32_t)nuniq;
            wcnt[nuniq] = 1; wk[nuniq] = s + pos; wl[nuniq] = (uint32_t)kl;
            nuniq++;
            if (nuniq * 2 > wcap) {
                size_t nc = wcap * 2;
                wslot *nws = (wslot *)calloc(nc, sizeof *nws);
                if (!nws) { st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done; }
                for (size_t j = 0; j < wcap; j++) {
                    if (!ws[j].k) continue;
                    size_t q = (size_t)ws[j].h & (nc - 1);
                    while (nws[q].k) q = (q + 1) & (nc - 1);
                    nws[q] = ws[j];
                }
                free(ws);
                ws = nws; wcap = nc;
            }
        }
        pos = end;
    }
    /* 2. symbols and initial pair statistics */
    W.nwords = nuniq;
    W.off = (size_t *)malloc((nuniq + 1) * sizeof *W.off);
    W.len = (uint32_t *)malloc((nuniq + 1) * sizeof *W.len);
    W.cnt = wcnt;
    size_t total = 0;
    for (size_t w = 0; w < nuniq; w++) total += wl[w];
    W.sym = (int32_t *)malloc((total + 1) * sizeof *W.sym);
    ma = (int32_t *)malloc(((size_t)want + 1) * sizeof *ma);
    mb = (int32_t *)malloc(((size_t)want + 1) * sizeof *mb);
    stamp = (int32_t *)malloc((nuniq + 1) * sizeof *stamp);
    if (!W.off || !W.len || !W.sym || !ma || !mb || !stamp) { st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done; }
    if ((st = fb_pairmap_init(&P.map, 1 << 16)) != FB_OK) goto done;
    {
        size_t o = 0;
        for (size_t w = 0; w < nuniq; w++) {
            W.off[w] = o; W.len[w] = wl[w];
            stamp[w] = -1;
            for (uint32_t k = 0; k < wl[w]; k++) W.sym[o + k] = wk[w][k];
            for (uint32_t k = 0; k + 1 < wl[w]; k++) {
                int64_t pi = pair_index(&P, W.sym[o + k], W.sym[o + k + 1]);
                if (pi < 0 || !add_word_to(&P.p[pi], (int32_t)w)) { st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done; }
                P.p[pi].count += wcnt[w];
            }
            o += wl[w];
        }
    }
    for (size_t i = 0; i < P.n; i++) {
        hent e = { P.p[i].count, P.p[i].a, P.p[i].b };
        if (e.count > 0 && !hpush(&P, e)) { st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done; }
    }
    /* 3. merges */
    while (nm < want && P.hn) {
        hent top = hpop(&P);
        const fb_pair_slot *sl = fb_pairmap_get(&P.map, top.a, top.b);
        int64_t cur = P.p[sl->merged].count;
        if (cur != top.count) {          /* stale: re-queue with the current count */
            if (cur > 0) { hent e = { cur, top.a, top.b }; if (!hpush(&P, e)) { st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done; } }
            continue;
        }
        if (cur <= 0) break;
        int32_t a = top.a, b = top.b, nid = 256 + nm;
        ma[nm] = a; mb[nm] = b;
        int32_t pidx = sl->merged;
        /* words list may be reallocated while we add to other pairs: copy its length, re-read pointer each time */
        uint32_t nw = P.p[pidx].nw;
        for (uint32_t wi = 0; wi < nw; wi++) {
            int32_t w = P.p[pidx].words[wi];
            if (stamp[w] == nm) continue;
            stamp[w] = nm;
            int32_t *sy = W.sym + W.off[w];
            uint32_t L = W.len[w];
            int found = 0;
            for (uint32_t k = 0; k + 1 < L; k++) if (sy[k] == a && sy[k + 1] == b) { found = 1; break; }
            if (!found) continue;
            int64_t c = W.cnt[w];
            for (uint32_t k = 0; k + 1 < L; k++) {
                const fb_pair_slot *q = fb_pairmap_get(&P.map, sy[k], sy[k + 1]);
                P.p[q->merged].count -= c;
            }
            uint32_t o = 0;
            for (uint32_t k = 0; k < L;) {
                if (k + 1 < L && sy[k] == a && sy[k + 1] == b) { sy[o++] = nid; k += 2; }
                else sy[o++] = sy[k++];
            }
            W.len[w] = L = o;
            for (uint32_t k = 0; k + 1 < L; k++) {
                int64_t pi = pair_index(&P, sy[k], sy[k + 1]);
                if (pi < 0) { st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done; }
                P.p[pi].count += c;
                if ((sy[k] == nid || sy[k + 1] == nid) && !add_word_to(&P.p[pi], w)) {
                    st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done;
                }
            }
        }
        /* queue the pairs that involve the new token (their counts only grew) */
        for (uint32_t wi = 0; wi < nw; wi++) {
            int32_t w = P.p[pidx].words[wi];
            if (stamp[w] != nm) continue;
            stamp[w] = -2 - nm;   /* visit once */
            int32_t *sy = W.sym + W.off[w];
            for (uint32_t k = 0; k + 1 < W.len[w]; k++) {
                if (sy[k] != nid && sy[k + 1] != nid) continue;
                const fb_pair_slot *q = fb_pairmap_get(&P.map, sy[k], sy[k + 1]);
                pstat *ps = &P.p[q->merged];
                if (ps->count > 0 && ps->mark != nm) {
                    ps->mark = nm;
                    hent e = { ps->count, ps->a, ps->b };
                    if (!hpush(&P, e)) { st = fb_fail(FB_ERR_OOM, "tokenizer train: out of memory"); goto done; }
                }
            }
        }
        nm++;
        if (progress && (nm % 256 == 0 || nm == want)) progress(user, nm, want);
    }
    st = write_vocab(out_path, ma, mb, nm, len);
done:
    free(ws); free(wcnt); free(wk); free(wl);
    free(W.off); free(W.len); free(W.sym);
    for (size_t i = 0; i < P.n; i++) free(P.p[i].words);
    free(P.p); free(P.heap); fb_pairmap_free(&P.map);
    free(ma); free(mb); free(stamp);
    return st;
}
