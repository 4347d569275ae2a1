#include "infer/kv_cache.h"
#include "core/error.h"
#include "core/runtime.h"
#include <stdlib.h>
#include <string.h>

fb_status fb_kv_cache_init(fb_kv_cache *kv, int n_seqs, int n_layers, int max_T, int n_kv_heads, int head_dim) {
    memset(kv, 0, sizeof *kv);
    if (n_seqs <= 0 || n_layers <= 0 || max_T <= 0 || n_kv_heads <= 0 || head_dim <= 0)
        return fb_fail(FB_ERR_INVALID_ARG, "kv cache: sizes must be > 0");
    size_t floats, bytes;
    if (!fb_mul_size((size_t)n_seqs * (size_t)n_layers * 2, (size_t)max_T, &floats) ||
        !fb_mul_size(floats, (size_t)n_kv_heads * (size_t)head_dim, &floats) || !fb_mul_size(floats, 4, &bytes))
        return fb_fail(FB_ERR_OOM, "kv cache: size overflows");
    kv->data = fb_aligned_alloc(bytes);
    kv->len = calloc((size_t)n_seqs, sizeof(int));
    if (!kv->data || !kv->len) {
        fb_kv_cache_free(kv);
        return fb_fail(FB_ERR_OOM, "kv cache: cannot allocate %.1f MiB for %d sequence(s) x %d positions", (double)bytes / 1048576.0,
                       n_seqs, max_T);
    }
    kv->n_seqs = n_seqs;
    kv->n_layers = n_layers;
    kv->max_T = max_T;
    kv->row = n_kv_heads * head_dim;
    return FB_OK;
}

void fb_kv_cache_free(fb_kv_cache *kv) {
    free(kv->data);
    free(kv->len);
    memset(kv, 0, sizeof *kv);
}

size_t fb_kv_cache_bytes(const fb_kv_cache *kv) {
    return (size_t)kv->n_seqs * kv->n_layers * 2 * (size_t)kv->max_T * (size_t)kv->row * sizeof(float);
}

static float *slab(fb_kv_cache *kv, int seq, int layer, int which) {
    size_t idx = ((size_t)seq * kv->n_layers + (size_t)layer) * 2 + (size_t)which;
    return kv->data + idx * (size_t)kv->max_T * (size_t)kv->row;
}

float *fb_kv_keys(fb_kv_cache *kv, int seq, int layer) { return slab(kv, seq, layer, 0); }
float *fb_kv_values(fb_kv_cache *kv, int seq, int layer) { return slab(kv, seq, layer, 1); }
void fb_kv_reset(fb_kv_cache *kv, int seq) { kv->len[seq] = 0; }
