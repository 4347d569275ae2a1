/* BPE merge engine: a doubly linked list over the symbols plus a binary heap
 * of candidate pairs keyed by (priority, position). Stale heap entries are
 * detected by re-checking both ids, so each merge costs O(log n) instead of
 * the O(n) rescan of the reference implementations, with identical results:
 *
 *  - GPT-2 (OpenAI encoder.py, gpt-3-encoder): take the lowest-ranked pair,
 *    merge every occurrence of it left to right (non-overlapping), repeat.
 *    Pairs created during a pass enter the heap only after the pass.
 *  - llama2.c run.c: merge the single pair whose merged piece has the highest
 *    score (first/leftmost on ties), repeat.
 * Node indices are original positions and merges only delete right nodes, so
 * "position" order always equals left-to-right order. */
#include "tokenizer/tok_internal.h"
#include <string.h>

typedef struct { uint64_t key; int32_t pos, lid, rid, merged; } fb_heap_ent;

struct fb_merge_ws {
    int32_t *next, *prev;
    size_t cap;
    fb_heap_ent *heap, *defer;
    size_t hn, hcap, dn, dcap;
};

fb_merge_ws *fb_merge_ws_new(void) { return (fb_merge_ws *)calloc(1, sizeof(fb_merge_ws)); }

void fb_merge_ws_free(fb_merge_ws *w) {
    if (!w) return;
    free(w->next); free(w->prev); free(w->heap); free(w->defer);
    free(w);
}

static int ws_reserve(fb_merge_ws *w, size_t n) {
    if (n > w->cap) {
        size_t nc = w->cap ? w->cap : 64;
        while (nc < n) nc *= 2;
        int32_t *a = (int32_t *)realloc(w->next, nc * sizeof *a);
        if (!a) return 0;
        w->next = a;
        a = (int32_t *)realloc(w->prev, nc * sizeof *a);
        if (!a) return 0;
        w->prev = a;
        w->cap = nc;
    }
    return 1;
}

static int push_ent(fb_heap_ent **arr, size_t *n, size_t *cap, fb_heap_ent e) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        fb_heap_ent *a = (fb_heap_ent *)realloc(*arr, nc * sizeof *a);
        if (!a) return 0;
        *arr = a; *cap = nc;
    }
    (*arr)[(*n)++] = e;
    return 1;
}

static int heap_push(fb_merge_ws *w, fb_heap_ent e) {
    if (!push_ent(&w->heap, &w->hn, &w->hcap, e)) return 0;
    fb_heap_ent *h = w->heap;
    size_t i = w->hn - 1;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].key <= e.key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
    return 1;
}

static fb_heap_ent heap_pop(fb_merge_ws *w) {
    fb_heap_ent *h = w->heap;
    fb_heap_ent top = h[0], last = h[--w->hn];
    size_t n = w->hn, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1].key < h[c].key) c++;
        if (last.key <= h[c].key) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

static inline uint32_t sortable_float(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* key for the pair starting at node i (whose right neighbour is j) */
static int make_ent(const fb_pairmap *pairs, const fb_tokenizer *spm, const int32_t *syms,
                    int32_t i, int32_t j, fb_heap_ent *e) {
    const fb_pair_slot *s = fb_pairmap_get(pairs, syms[i], syms[j]);
    if (!s) return 0;
    uint32_t hi;
    if (spm) hi = ~sortable_float(spm->scores[s->merged]);   /* highest score first */
    else hi = (uint32_t)s->prio;                               /* lowest rank first */
    e->key = ((uint64_t)hi << 32) | (uint32_t)i;
    e->pos = i; e->lid = syms[i]; e->rid = syms[j]; e->merged = s->merged;
    return 1;
}

static size_t merge_core(fb_merge_ws *w, const fb_pairmap *pairs, const fb_tokenizer *spm,
                         int32_t *syms, size_t n) {
    if (n < 2) return n;
    if (!ws_reserve(w, n)) return (size_t)-1;
    int32_t *next = w->next, *prev = w->prev;
    int32_t N = (int32_t)n;
    for (int32_t i = 0; i < N; i++) { next[i] = i + 1; prev[i] = i - 1; }
    w->hn = 0; w->dn = 0;
    fb_heap_ent e;
    for (int32_t i = 0; i + 1 < N; i++)
        if (make_ent(pairs, spm, syms, i, i + 1, &e) && !heap_push(w, e)) return (size_t)-1;
    size_t len = n;
    while (w->hn) {
        uint32_t pass = (uint32_t)(w->heap[0].key >> 32);
        do {
            fb_heap_ent top = heap_pop(w);
            int32_t i = top.pos, j = next[i];
            if (j >= N || syms[i] != top.lid || syms[j] != top.rid) continue;   /* stale */
            syms[i] = top.merged;
            syms[j] = -1;
            int32_t k = next[j];
            next[i] = k;
            if (k < N) prev[k] = i;
            len--;
            int32_t p = prev[i];
            if (spm) {
                if (p >= 0 && make_ent(pairs, spm, syms, p, i, &e) && !heap_push(w, e)) return (size_t)-1;
                if (k < N && make_ent(pairs, spm, syms, i, k, &e) && !heap_push(w, e)) return (size_t)-1;
            } else {
                if (p >= 0 && make_ent(pairs, spm, syms, p, i, &e) &&
                    !push_ent(&w->defer, &w->dn, &w->dcap, e)) return (size_t)-1;
                if (k < N && make_ent(pairs, spm, syms, i, k, &e) &&
                    !push_ent(&w->defer, &w->dn, &w->dcap, e)) return (size_t)-1;
            }
        } while (!spm && w->hn && (uint32_t)(w->heap[0].key >> 32) == pass);
        for (size_t d = 0; d < w->dn; d++)
            if (!heap_push(w, w->defer[d])) return (size_t)-1;
        w->dn = 0;
    }
    /* compact */
    size_t o = 0;
    for (int32_t i = 0; i < N; i = next[i]) syms[o++] = syms[i];
    (void)len;
    return o;
}

size_t fb_merge_bpe(fb_merge_ws *w, const fb_pairmap *pairs, int32_t *syms, size_t n) {
    return merge_core(w, pairs, NULL, syms, n);
}

size_t fb_merge_spm(fb_merge_ws *w, const fb_tokenizer *t, int32_t *syms, size_t n) {
    return merge_core(w, &t->pairs, t, syms, n);
}

/* ---- pair map ----------------------------------------------------------- */
fb_status fb_pairmap_init(fb_pairmap *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 16) cap *= 2;
    m->slots = (fb_pair_slot *)malloc(cap * sizeof *m->slots);
    if (!m->slots) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory (pair map)");
    for (size_t i = 0; i < cap; i++) m->slots[i].key = FB_PAIR_EMPTY;
    m->mask = cap - 1;
    m->count = 0;
    return FB_OK;
}

void fb_pairmap_free(fb_pairmap *m) { free(m->slots); m->slots = NULL; m->count = 0; }

fb_status fb_pairmap_put(fb_pairmap *m, int32_t a, int32_t b, int32_t prio, int32_t merged) {
    if ((m->count + 1) * 2 > m->mask + 1) {
        fb_pairmap nm;
        FB_TRY(fb_pairmap_init(&nm, (m->mask + 1)));
        for (size_t i = 0; i <= m->mask; i++) {
            fb_pair_slot *s = &m->slots[i];
            if (s->key == FB_PAIR_EMPTY) continue;
            size_t j = (size_t)fb_tok_hash_u64(s->key) & nm.mask;
            while (nm.slots[j].key != FB_PAIR_EMPTY) j = (j + 1) & nm.mask;
            nm.slots[j] = *s;
            nm.count++;
        }
        free(m->slots);
        *m = nm;
    }
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = (size_t)fb_tok_hash_u64(key) & m->mask;
    while (m->slots[i].key != FB_PAIR_EMPTY && m->slots[i].key != key) i = (i + 1) & m->mask;
    if (m->slots[i].key == FB_PAIR_EMPTY) m->count++;
    m->slots[i].key = key;
    m->slots[i].prio = prio;
    m->slots[i].merged = merged;
    return FB_OK;
}
