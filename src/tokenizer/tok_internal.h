/* Tokenizer internals shared by the loaders, encoders and trainer. */
#ifndef FB_TOKENIZER_INTERNAL_H
#define FB_TOKENIZER_INTERNAL_H
#include "flashblock_tokenizer.h"
#include "core/error.h"
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

/* ---- hashing ------------------------------------------------------------ */
static inline uint64_t fb_tok_hash_bytes(const void *p, size_t n) {
    /* FNV-1a over 8-byte words then bytes, with a final avalanche. */
    const unsigned char *s = (const unsigned char *)p;
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        __builtin_memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    h ^= h >> 32; h *= 0xd6e8feb86659fd93ull; h ^= h >> 32;
    return h;
}
static inline uint64_t fb_tok_hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

/* Pair map: (left id, right id) -> (priority, merged id). Open addressing. */
typedef struct { uint64_t key; int32_t prio; int32_t merged; } fb_pair_slot;
typedef struct { fb_pair_slot *slots; size_t mask; size_t count; } fb_pairmap;
#define FB_PAIR_EMPTY UINT64_MAX
fb_status fb_pairmap_init(fb_pairmap *m, size_t expected);
void fb_pairmap_free(fb_pairmap *m);
/* Insert or overwrite. */
fb_status fb_pairmap_put(fb_pairmap *m, int32_t a, int32_t b, int32_t prio, int32_t merged);
static inline const fb_pair_slot *fb_pairmap_get(const fb_pairmap *m, int32_t a, int32_t b) {
    if (!m->slots) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = (size_t)fb_tok_hash_u64(key) & m->mask;
    for (;;) {
        const fb_pair_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == FB_PAIR_EMPTY) return NULL;
        i = (i + 1) & m->mask;
    }
}

/* String map over the token byte strings of a tokenizer: bytes -> lowest id. */
typedef struct { uint64_t hash; int32_t id; } fb_str_slot;
typedef struct { fb_str_slot *slots; size_t mask; } fb_strmap;

/* ---- the tokenizer ------------------------------------------------------ */
struct fb_tokenizer {
    fb_tokenizer_kind kind;
    char *spec;
    int n_vocab;
    int bos_id, eos_id;
    int special_id;           /* "<|endoftext|>" for byte-level BPE kinds, -1 if none */
    /* Token bytes: id i is bytes[off[i] .. off[i]+len[i]). For GPT-2 these
     * are the raw bytes (byte-to-unicode undone); for llama2c the piece as
     * stored (byte pieces are "<0xHH>" text; dec_byte[] holds their value). */
    uint32_t *off, *len;
    char *bytes;
    size_t bytes_size;
    fb_strmap strmap;         /* token bytes -> lowest id */
    /* byte-level BPE (gpt2, trained) */
    int32_t byte_id[256];     /* id of the single-byte token for each byte */
    fb_pairmap pairs;         /* (a,b) -> (rank, merged id) */
    /* llama2c */
    float *scores;
    int16_t *dec_byte;        /* -1, or the byte a piece decodes to (sscanf "<0x%02hhX>") */
    int32_t fallback[256];    /* byte fallback id of each byte */
    int32_t space_id;         /* id of " " (dummy prefix), -1 if absent */
};

fb_tokenizer *fb_tok_alloc(fb_tokenizer_kind kind, const char *spec);
/* Build the string map from off/len/bytes. */
fb_status fb_tok_build_strmap(fb_tokenizer *t);
int32_t fb_tok_lookup(const fb_tokenizer *t, const void *s, size_t n);

/* Loaders from memory (the file loaders and fuzz targets use these). name is
 * used in error messages. */
fb_status fb_tok_gpt2_from_buffers(fb_tokenizer **out, const char *json, size_t json_len,
                                   const char *json_name, const char *bpe, size_t bpe_len,
                                   const char *bpe_name, const char *spec);
fb_status fb_tok_llama2c_from_buffer(fb_tokenizer **out, const unsigned char *buf, size_t n,
                                     int vocab_size, const char *name, const char *spec);
fb_status fb_tok_trained_from_buffer(fb_tokenizer **out, const char *buf, size_t n,
                                     const char *name, const char *spec);
/* Finish a llama2c/sentencepiece tokenizer whose off/len/bytes/scores are set. */
fb_status fb_tok_spm_finish(fb_tokenizer *t);

/* ---- GPT-2 pre-tokenizer ------------------------------------------------ */
void fb_pretok_init(void);
/* End (exclusive) of the pre-token starting at pos (pos < n). */
size_t fb_pretok_next(const unsigned char *s, size_t n, size_t pos);

/* ---- merge engine ------------------------------------------------------- */
typedef struct fb_merge_ws fb_merge_ws;   /* reusable scratch */
fb_merge_ws *fb_merge_ws_new(void);
void fb_merge_ws_free(fb_merge_ws *w);
/* In-place BPE over syms[0..n): GPT-2 rules (lowest rank; every occurrence
 * of it left to right, then the next rank). Returns the new length, or
 * (size_t)-1 on allocation failure. */
size_t fb_merge_bpe(fb_merge_ws *w, const fb_pairmap *pairs, int32_t *syms, size_t n);
/* In-place llama2.c merging: repeatedly the adjacent pair whose merged
 * piece has the highest score, leftmost on ties. */
size_t fb_merge_spm(fb_merge_ws *w, const fb_tokenizer *t, int32_t *syms, size_t n);

/* growable id buffer */
typedef struct { int32_t *v; size_t n, cap; } fb_idbuf;
static inline fb_status fb_idbuf_reserve(fb_idbuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return FB_OK;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + extra) nc *= 2;
    int32_t *nv = (int32_t *)realloc(b->v, nc * sizeof *nv);
    if (!nv) return fb_fail(FB_ERR_OOM, "tokenizer: out of memory (%zu ids)", nc);
    b->v = nv; b->cap = nc;
    return FB_OK;
}
fb_status fb_tok_encode_bpe(const fb_tokenizer *t, const unsigned char *s, size_t n,
                            unsigned flags, fb_idbuf *out);
fb_status fb_tok_encode_spm(const fb_tokenizer *t, const unsigned char *s, size_t n,
                            unsigned flags, fb_idbuf *out);

/* file helper: read a whole file (malloc'd, NUL-terminated). */
fb_status fb_tok_read_file(const char *path, char **data, size_t *len);

#endif
