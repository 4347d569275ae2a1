#include "train/data.h"
#include "core/error.h"
#include "io/atomic_write.h"
#include "io/mapped_file.h"
#include <stdlib.h>
#include <string.h>

static const char TOKENS_MAGIC[8] = {'F', 'B', 'T', 'O', 'K', 'E', 'N', 'S'};

fb_status fb_tokens_write(const char *path, const int32_t *ids, size_t n, int vocab_size) {
    if (!path || (!ids && n)) return fb_fail(FB_ERR_INVALID_ARG, "token file: NULL argument");
    const uint32_t dtype = vocab_size <= 65536 ? 2 : 4;
    uint8_t hdr[32] = {0};
    memcpy(hdr, TOKENS_MAGIC, 8);
    uint32_t version = 1, vs = (uint32_t)vocab_size;
    uint64_t count = n;
    memcpy(hdr + 8, &version, 4);
    memcpy(hdr + 12, &dtype, 4);
    memcpy(hdr + 16, &count, 8);
    memcpy(hdr + 24, &vs, 4);
    fb_atomic_file af;
    FB_TRY(fb_atomic_open(&af, path));
    fb_status s = fb_atomic_write(&af, hdr, sizeof hdr);
    enum { CHUNK = 16384 };
    uint8_t buf[CHUNK * 4];
    for (size_t i = 0; s == FB_OK && i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        for (size_t j = 0; j < k; j++) {
            uint32_t v = (uint32_t)ids[i + j];
            if (dtype == 2) { uint16_t h = (uint16_t)v; memcpy(buf + 2 * j, &h, 2); }
            else memcpy(buf + 4 * j, &v, 4);
        }
        s = fb_atomic_write(&af, buf, k * dtype);
    }
    if (s != FB_OK) { fb_atomic_abort(&af); return s; }
    return fb_atomic_commit(&af);
}

fb_status fb_data_load(const char *path, const fb_tokenizer *tok, int32_t **ids, size_t *n) {
    if (!path || !tok || !ids || !n) return fb_fail(FB_ERR_INVALID_ARG, "data: NULL argument");
    *ids = NULL;
    *n = 0;
    fb_mapped_file mf;
    FB_TRY(fb_mapped_file_open(&mf, path));
    const int V = fb_tokenizer_vocab_size(tok);
    fb_status s = FB_OK;
    if (mf.size >= 8 && memcmp(mf.data, TOKENS_MAGIC, 8) == 0) {
        uint32_t version, dtype, vs;
        uint64_t count;
        if (mf.size < 32) { s = fb_fail(FB_ERR_FORMAT, "%s: token file header truncated (%llu bytes)", path, (unsigned long long)mf.size); goto done; }
        memcpy(&version, mf.data + 8, 4);
        memcpy(&dtype, mf.data + 12, 4);
        memcpy(&count, mf.data + 16, 8);
        memcpy(&vs, mf.data + 24, 4);
        if (version != 1) { s = fb_fail(FB_ERR_FORMAT, "%s: offset 8: unsupported token file version %u", path, version); goto done; }
        if (dtype != 2 && dtype != 4) { s = fb_fail(FB_ERR_FORMAT, "%s: offset 12: dtype %u is not 2 or 4", path, dtype); goto done; }
        if (count > (mf.size - 32) / dtype || 32 + count * dtype != mf.size) {
            s = fb_fail(FB_ERR_FORMAT, "%s: offset 16: header says %llu tokens but the file holds %llu bytes of data", path,
                        (unsigned long long)count, (unsigned long long)(mf.size - 32));
            goto done;
        }
        if ((int64_t)vs > V) { s = fb_fail(FB_ERR_FORMAT, "%s: token file vocabulary %u exceeds the tokenizer's %d", path, vs, V); goto done; }
        *ids = malloc((count ? count : 1) * sizeof(int32_t));
        if (!*ids) { s = fb_fail(FB_ERR_OOM, "%s: cannot allocate %llu tokens", path, (unsigned long long)count); goto done; }
        for (uint64_t i = 0; i < count; i++) {
            uint32_t v;
            if (dtype == 2) { uint16_t h; memcpy(&h, mf.data + 32 + 2 * i, 2); v = h; }
            else memcpy(&v, mf.data + 32 + 4 * i, 4);
            if (v >= (uint32_t)V) {
                s = fb_fail(FB_ERR_FORMAT, "%s: token %llu has id %u outside the vocabulary [0, %d)", path, (unsigned long long)i, v, V);
                free(*ids); *ids = NULL; goto done;
            }
            (*ids)[i] = (int32_t)v;
        }
        *n = count;
    } else {
        size_t cap = 0;
        s = fb_tokenizer_encode(tok, (const char *)mf.data, (size_t)mf.size, 0, ids, n, &cap);
    }
done:
    fb_mapped_file_close(&mf);
    return s;
}

fb_status fb_data_split_make(const int32_t *ids, size_t n, double val_fraction, int T, fb_data_split *out) {
    size_t need = (size_t)T + 1;
    size_t n_val = (size_t)((double)n * val_fraction);
    if (n_val < need) n_val = need;
    if (n < n_val + need)
        return fb_fail(FB_ERR_INVALID_ARG, "data too short: %zu tokens, but training and validation each need at least one window of %zu tokens (--ctx %d)",
                       n, need, T);
    out->train = ids;
    out->n_train = n - n_val;
    out->val = ids + out->n_train;
    out->n_val = n_val;
    return FB_OK;
}

void fb_rng_seed(fb_rng *r, uint64_t seed) {
    r->s = seed * 0x9E3779B97F4A7C15ull ^ 0xD1B54A32D192ED03ull;
    if (!r->s) r->s = 1;
}

uint64_t fb_rng_next(fb_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void fb_data_window_starts(size_t n, int T, fb_rng *rng, int B, size_t *starts) {
    const size_t span = n - (size_t)T;   /* valid starts: [0, n - T - 1] */
    for (int b = 0; b < B; b++) starts[b] = (size_t)(fb_rng_next(rng) % span);
}

void fb_data_windows(const int32_t *tokens, int T, const size_t *starts, int B, int32_t *ids, int32_t *targets) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            ids[(size_t)b * T + t] = tokens[starts[b] + t];
            targets[(size_t)b * T + t] = tokens[starts[b] + t + 1];
        }
}
