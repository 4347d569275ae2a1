/* Paged KV cache: block pool, per-sequence tables, reference counts, copy on
 * write and the prefix cache. See kv_cache.h for the layout and the rules. */
#include "infer/kv_cache.h"
#include "core/error.h"
#include "core/runtime.h"
#include <stdlib.h>
#include <string.h>

static size_t block_floats(const fb_kv_cache *kv) { return (size_t)kv->block_size * (size_t)kv->row; }

static float *pool_of(const fb_kv_cache *kv, int layer, int which) {
    return kv->pool + ((size_t)layer * 2 + (size_t)which) * (size_t)kv->n_blocks * block_floats(kv);
}

size_t fb_kv_block_bytes(const fb_kv_cache_config *c) {
    const int bs = c->block_size > 0 ? c->block_size : 16;
    return (size_t)c->n_layers * 2 * (size_t)bs * (size_t)c->n_kv_heads * (size_t)c->head_dim * sizeof(float);
}

fb_status fb_kv_cache_init(fb_kv_cache *kv, const fb_kv_cache_config *c) {
    memset(kv, 0, sizeof *kv);
    if (!c || c->n_seqs <= 0 || c->n_layers <= 0 || c->max_T <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->block_size < 0 || c->n_blocks < 0)
        return fb_fail(FB_ERR_INVALID_ARG, "kv cache: sizes must be > 0");
    const int bs = c->block_size > 0 ? c->block_size : 16;
    const int width = (c->max_T + bs - 1) / bs;
    size_t n_blocks = c->n_blocks > 0 ? (size_t)c->n_blocks : (size_t)c->n_seqs * (size_t)width;
    if (n_blocks > INT32_MAX / 2) return fb_fail(FB_ERR_OOM, "kv cache: %zu blocks is too many", n_blocks);
    size_t floats, bytes;
    if (!fb_mul_size(n_blocks * (size_t)c->n_layers * 2, (size_t)bs, &floats) ||
        !fb_mul_size(floats, (size_t)c->n_kv_heads * (size_t)c->head_dim, &floats) || !fb_mul_size(floats, 4, &bytes))
        return fb_fail(FB_ERR_OOM, "kv cache: size overflows");
    kv->n_seqs = c->n_seqs;
    kv->n_layers = c->n_layers;
    kv->max_T = c->max_T;
    kv->row = c->n_kv_heads * c->head_dim;
    kv->block_size = bs;
    kv->table_width = width;
    kv->n_blocks = (int)n_blocks;
    kv->prefix_cache = c->prefix_cache != 0;
    const size_t S = (size_t)c->n_seqs, NB = n_blocks;
    kv->pool = fb_aligned_alloc(bytes);   /* not touched: pages become resident as blocks fill */
    kv->table = malloc(sizeof(int32_t) * S * (size_t)width);
    kv->len = calloc(S, sizeof(int));
    kv->held = calloc(S, sizeof(int));
    kv->published = calloc(S, sizeof(int));
    kv->ref = calloc(NB, sizeof(int));
    kv->free_list = malloc(sizeof(int32_t) * NB);
    int ok = kv->pool && kv->table && kv->len && kv->held && kv->published && kv->ref && kv->free_list;
    if (ok && kv->prefix_cache) {
        kv->n_buckets = 1;
        while ((size_t)kv->n_buckets < 2 * NB) kv->n_buckets *= 2;
        kv->hash = calloc(NB, sizeof(uint64_t));
        kv->parent = malloc(sizeof(int32_t) * NB);
        kv->tokens = malloc(sizeof(int32_t) * NB * (size_t)bs);
        kv->next = malloc(sizeof(int32_t) * NB);
        kv->bucket = malloc(sizeof(int32_t) * (size_t)kv->n_buckets);
        kv->last_use = calloc(NB, sizeof(uint64_t));
        kv->cached = calloc(NB, 1);
        ok = kv->hash && kv->parent && kv->tokens && kv->next && kv->bucket && kv->last_use && kv->cached;
        if (ok) for (int i = 0; i < kv->n_buckets; i++) kv->bucket[i] = -1;
    }
    if (!ok) {
        fb_kv_cache_free(kv);
        return fb_fail(FB_ERR_OOM, "kv cache: cannot allocate %.1f MiB (%zu blocks of %d tokens)", (double)bytes / 1048576.0,
                       n_blocks, bs);
    }
    /* Free list as a stack: block 0 is taken first. */
    for (size_t i = 0; i < NB; i++) kv->free_list[i] = (int32_t)(NB - 1 - i);
    kv->n_free = (int)NB;
    return FB_OK;
}

void fb_kv_cache_free(fb_kv_cache *kv) {
    if (!kv) return;
    free(kv->pool);
    free(kv->table);
    free(kv->len);
    free(kv->held);
    free(kv->published);
    free(kv->ref);
    free(kv->free_list);
    free(kv->hash);
    free(kv->parent);
    free(kv->tokens);
    free(kv->next);
    free(kv->bucket);
    free(kv->last_use);
    free(kv->cached);
    memset(kv, 0, sizeof *kv);
}

size_t fb_kv_cache_bytes(const fb_kv_cache *kv) {
    return (size_t)kv->n_layers * 2 * (size_t)kv->n_blocks * block_floats(kv) * sizeof(float);
}

/* ---- prefix cache index ---- */

static uint64_t mix_block(uint64_t h, const int32_t *t, int n) {
    for (int i = 0; i < n; i++) {   /* FNV-1a over the ids, then a splitmix finaliser */
        h ^= (uint32_t)t[i];
        h *= 0x100000001B3ull;
    }
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}
#define HASH_SEED 0xCBF29CE484222325ull

static void uncache(fb_kv_cache *kv, int32_t b) {
    int32_t *p = &kv->bucket[kv->hash[b] & (uint64_t)(kv->n_buckets - 1)];
    while (*p != b) p = &kv->next[*p];
    *p = kv->next[b];
    kv->cached[b] = 0;
    kv->ref[b]--;
}

static int32_t find_cached(const fb_kv_cache *kv, uint64_t h, int32_t parent, const int32_t *tokens) {
    for (int32_t b = kv->bucket[h & (uint64_t)(kv->n_buckets - 1)]; b >= 0; b = kv->next[b])
        if (kv->hash[b] == h && kv->parent[b] == parent &&
            !memcmp(kv->tokens + (size_t)b * (size_t)kv->block_size, tokens, sizeof(int32_t) * (size_t)kv->block_size))
            return b;
    return -1;
}

/* ---- blocks ---- */

static int32_t take_block(fb_kv_cache *kv) {
    int32_t b = -1;
    if (kv->n_free) b = kv->free_list[--kv->n_free];
    else if (kv->prefix_cache) {   /* evict the least recently used block only the cache holds */
        for (int32_t i = 0; i < kv->n_blocks; i++)
            if (kv->cached[i] && kv->ref[i] == 1 && (b < 0 || kv->last_use[i] < kv->last_use[b])) b = i;
        if (b < 0) return -1;
        uncache(kv, b);
        kv->stats.evictions++;
    }
    if (b >= 0) kv->ref[b] = 1;
    return b;
}

static void release_block(fb_kv_cache *kv, int32_t b) {
    if (--kv->ref[b] == 0) kv->free_list[kv->n_free++] = b;
}

static void copy_rows(fb_kv_cache *kv, int32_t dst, int32_t src, int rows) {
    const size_t bf = block_floats(kv), n = (size_t)rows * (size_t)kv->row * sizeof(float);
    for (int l = 0; l < kv->n_layers; l++)
        for (int w = 0; w < 2; w++) {
            float *p = pool_of(kv, l, w);
            memcpy(p + (size_t)dst * bf, p + (size_t)src * bf, n);
        }
}

fb_status fb_kv_reserve(fb_kv_cache *kv, int seq, int n_tokens) {
    if (n_tokens > kv->max_T)
        return fb_fail(FB_ERR_SHAPE, "kv cache: sequence %d would hold %d tokens, the context is %d", seq, n_tokens, kv->max_T);
    const int len = kv->len[seq], bs = kv->block_size;
    if (n_tokens <= len) return FB_OK;
    int32_t *t = kv->table + (size_t)seq * (size_t)kv->table_width;
    for (int i = len / bs; i <= (n_tokens - 1) / bs; i++) {
        if (i < kv->held[seq]) {
            const int32_t b = t[i];
            if (kv->ref[b] == 1) continue;
            const int32_t nb = take_block(kv);   /* shared: copy on write */
            if (nb < 0) goto full;
            if (i == len / bs) copy_rows(kv, nb, b, len - i * bs);
            t[i] = nb;
            release_block(kv, b);
        } else {
            const int32_t nb = take_block(kv);
            if (nb < 0) goto full;
            t[kv->held[seq]++] = nb;
        }
    }
    return FB_OK;
full:
    return fb_fail(FB_ERR_KV_FULL, "out of KV cache blocks: sequence %d needs room for %d tokens, all %d blocks of %d tokens are in use",
                   seq, n_tokens, kv->n_blocks, bs);
}

void fb_kv_write(fb_kv_cache *kv, int seq, int layer, int pos, int n, const float *k, const float *v, int64_t src_stride) {
    const int32_t *t = kv->table + (size_t)seq * (size_t)kv->table_width;
    float *K = pool_of(kv, layer, 0), *V = pool_of(kv, layer, 1);
    const size_t row = (size_t)kv->row, bs = (size_t)kv->block_size;
    for (int i = 0; i < n; i++) {
        const size_t p = (size_t)pos + (size_t)i, at = ((size_t)t[p / bs] * bs + p % bs) * row;
        memcpy(K + at, k + (size_t)i * (size_t)src_stride, row * sizeof(float));
        memcpy(V + at, v + (size_t)i * (size_t)src_stride, row * sizeof(float));
    }
}

void fb_kv_set_len(fb_kv_cache *kv, int seq, int n_tokens) { kv->len[seq] = n_tokens; }

fb_kv_view fb_kv_layer_view(const fb_kv_cache *kv, int seq, int layer) {
    return (fb_kv_view){pool_of(kv, layer, 0), pool_of(kv, layer, 1), kv->table + (size_t)seq * (size_t)kv->table_width,
                        kv->block_size, kv->n_blocks};
}

void fb_kv_reset(fb_kv_cache *kv, int seq) {
    const int32_t *t = kv->table + (size_t)seq * (size_t)kv->table_width;
    for (int i = 0; i < kv->held[seq]; i++) release_block(kv, t[i]);
    kv->held[seq] = kv->len[seq] = kv->published[seq] = 0;
}

fb_status fb_kv_fork(fb_kv_cache *kv, int src, int dst) {
    if (src == dst) return fb_fail(FB_ERR_INVALID_ARG, "kv fork: source and destination are the same sequence");
    fb_kv_reset(kv, dst);
    const int n = (kv->len[src] + kv->block_size - 1) / kv->block_size;
    const int32_t *s = kv->table + (size_t)src * (size_t)kv->table_width;
    int32_t *d = kv->table + (size_t)dst * (size_t)kv->table_width;
    for (int i = 0; i < n; i++) { d[i] = s[i]; kv->ref[s[i]]++; }
    kv->held[dst] = n;
    kv->len[dst] = kv->len[src];
    kv->published[dst] = kv->published[src] < n ? kv->published[src] : n;
    return FB_OK;
}

/* ---- prefix cache ---- */

int fb_kv_prefix_attach(fb_kv_cache *kv, int seq, const int32_t *tokens, int n) {
    if (!kv->prefix_cache || kv->len[seq] != 0 || kv->held[seq] != 0 || n <= 1) return kv->len[seq];
    const int bs = kv->block_size, max_blocks = (n - 1) / bs;   /* leave one token to compute */
    int32_t *t = kv->table + (size_t)seq * (size_t)kv->table_width;
    uint64_t h = HASH_SEED;
    int32_t prev = -1;
    kv->stats.prefix_queries++;
    int i = 0;
    for (; i < max_blocks; i++) {
        h = mix_block(h, tokens + (size_t)i * (size_t)bs, bs);
        const int32_t b = find_cached(kv, h, prev, tokens + (size_t)i * (size_t)bs);
        if (b < 0) break;
        t[i] = b;
        kv->ref[b]++;
        kv->last_use[b] = ++kv->clock;
        prev = b;
    }
    kv->held[seq] = kv->published[seq] = i;
    kv->len[seq] = i * bs;
    kv->stats.prefix_hit_blocks += i;
    return kv->len[seq];
}

void fb_kv_prefix_publish(fb_kv_cache *kv, int seq, const int32_t *tokens, int n) {
    if (!kv->prefix_cache) return;
    const int bs = kv->block_size, full = (n < kv->len[seq] ? n : kv->len[seq]) / bs;
    int32_t *t = kv->table + (size_t)seq * (size_t)kv->table_width;
    int i = kv->published[seq];
    if (i >= full) return;
    uint64_t h = i > 0 ? kv->hash[t[i - 1]] : HASH_SEED;   /* blocks before `published` are cached */
    for (; i < full; i++) {
        const int32_t *bt = tokens + (size_t)i * (size_t)bs, parent = i > 0 ? t[i - 1] : -1;
        h = mix_block(h, bt, bs);
        const int32_t b = t[i], e = find_cached(kv, h, parent, bt);
        if (e >= 0 && e != b) {          /* the same block is cached already: share it */
            kv->ref[e]++;
            release_block(kv, b);
            t[i] = e;
        } else if (e < 0) {
            kv->hash[b] = h;
            kv->parent[b] = parent;
            memcpy(kv->tokens + (size_t)b * (size_t)bs, bt, sizeof(int32_t) * (size_t)bs);
            const size_t k = h & (uint64_t)(kv->n_buckets - 1);
            kv->next[b] = kv->bucket[k];
            kv->bucket[k] = b;
            kv->cached[b] = 1;
            kv->ref[b]++;
        }
        kv->last_use[t[i]] = ++kv->clock;
    }
    kv->published[seq] = full;
}

fb_kv_stats fb_kv_get_stats(const fb_kv_cache *kv) {
    fb_kv_stats s = kv->stats;
    s.blocks_total = kv->n_blocks;
    s.blocks_free = kv->n_free;
    s.blocks_cached = 0;
    if (kv->prefix_cache)
        for (int b = 0; b < kv->n_blocks; b++) s.blocks_cached += kv->cached[b] && kv->ref[b] == 1;
    s.blocks_used = kv->n_blocks - kv->n_free - s.blocks_cached;
    return s;
}

fb_status fb_kv_check(const fb_kv_cache *kv) {
    int *count = calloc((size_t)kv->n_blocks, sizeof(int));
    if (!count) return fb_fail(FB_ERR_OOM, "kv check: out of memory");
    fb_status st = FB_OK;
    for (int s = 0; s < kv->n_seqs && st == FB_OK; s++) {
        if (kv->held[s] * kv->block_size < kv->len[s])
            st = fb_fail(FB_ERR_INVALID_ARG, "kv check: sequence %d holds %d blocks for %d tokens", s, kv->held[s], kv->len[s]);
        for (int i = 0; i < kv->held[s]; i++) count[kv->table[(size_t)s * (size_t)kv->table_width + (size_t)i]]++;
    }
    for (int b = 0; b < kv->n_blocks && st == FB_OK; b++) {
        const int want = count[b] + (kv->prefix_cache && kv->cached[b]);
        if (want != kv->ref[b]) st = fb_fail(FB_ERR_INVALID_ARG, "kv check: block %d has ref %d but %d holders", b, kv->ref[b], want);
    }
    memset(count, 0, sizeof(int) * (size_t)kv->n_blocks);
    for (int i = 0; i < kv->n_free && st == FB_OK; i++) {
        const int32_t b = kv->free_list[i];
        if (kv->ref[b] != 0 || count[b]++)
            st = fb_fail(FB_ERR_INVALID_ARG, "kv check: block %d is on the free list with ref %d (seen %d times)", b, kv->ref[b], count[b]);
    }
    int live = 0;
    for (int b = 0; b < kv->n_blocks; b++) live += kv->ref[b] > 0;
    if (st == FB_OK && live + kv->n_free != kv->n_blocks)
        st = fb_fail(FB_ERR_INVALID_ARG, "kv check: %d blocks in use + %d free != %d (leak)", live, kv->n_free, kv->n_blocks);
    free(count);
    return st;
}
