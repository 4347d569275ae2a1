/* Bodies of the io fuzz targets, shared by the libFuzzer entry points, the
 * corpus replay driver and the CTest mutation test. Each opens an in-memory
 * buffer and, when it parses, touches every byte the reader points at, so
 * ASan catches any pointer that escapes the buffer. Returns the status. */
#ifndef FB_IO_FUZZ_COMMON_H
#define FB_IO_FUZZ_COMMON_H
#include "core/error.h"
#include "io/gguf.h"
#include "io/llama2c.h"
#include "io/llmc.h"
#include "io/safetensors.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile uint32_t fb_fuzz_sink;

static inline void fb_fuzz_touch(const void *p, uint64_t n) {
    const uint8_t *b = (const uint8_t *)p;
    uint32_t h = 0;
    for (uint64_t i = 0; i < n; i++) h = h * 31u + b[i];
    fb_fuzz_sink += h;
}

/* Copy into a fresh 8-aligned allocation of exactly size bytes (ASan-visible end). */
static inline uint8_t *fb_fuzz_copy(const uint8_t *data, size_t size) {
    uint8_t *b = (uint8_t *)malloc(size ? size : 1);
    if (b && size) memcpy(b, data, size);
    return b;
}

static inline int fb_fuzz_check_error(fb_status s) {
    /* every failure must come with a message */
    if (s != FB_OK && fb_last_error()[0] == '\0') abort();
    return (int)s;
}

static inline int fb_fuzz_safetensors(const uint8_t *data, size_t size) {
    uint8_t *b = fb_fuzz_copy(data, size);
    if (!b) return 0;
    fb_clear_error();
    fb_safetensors st;
    fb_status s = fb_safetensors_open_buffer(&st, b, size, "fuzz.safetensors");
    if (s == FB_OK) {
        for (size_t i = 0; i < st.n_tensors; i++) {
            const fb_st_tensor *t = &st.tensors[i];
            fb_fuzz_touch(t->data, t->nbytes);
            if (fb_safetensors_find(&st, t->name) == NULL) abort();
            if (t->numel <= 4096 && (t->dtype == FB_ST_F32 || t->dtype == FB_ST_F16 || t->dtype == FB_ST_BF16 || t->dtype == FB_ST_F64)) {
                float *f = (float *)malloc((size_t)t->numel * sizeof(float) + 4);
                if (f) { fb_st_tensor_to_f32(t, f); free(f); }
            }
        }
        for (size_t i = 0; i < st.n_meta; i++) fb_fuzz_touch(st.meta_values[i], strlen(st.meta_values[i]));
        (void)fb_safetensors_meta(&st, "format");
        fb_safetensors_close(&st);
    }
    free(b);
    return fb_fuzz_check_error(s);
}

static inline void fb_fuzz_gguf_value(const fb_gguf_value *v, int depth) {
    if (v->type == FB_GGUF_STRING) fb_fuzz_touch(v->v.str.ptr, v->v.str.len);
    if (v->type != FB_GGUF_ARRAY) return;
    fb_fuzz_touch(v->v.arr.data, v->v.arr.nbytes);
    uint64_t n = v->v.arr.count < 64 ? v->v.arr.count : 64;
    for (uint64_t i = 0; i < n; i++) {
        fb_gguf_value e;
        if (fb_gguf_array_get(v, i, &e) != FB_OK) abort(); /* validated at open: must not fail */
        if (depth < 4) fb_fuzz_gguf_value(&e, depth + 1);
    }
    if (v->v.arr.count) {
        fb_gguf_value e;
        if (fb_gguf_array_get(v, v->v.arr.count - 1, &e) != FB_OK) abort();
    }
}

static inline int fb_fuzz_gguf(const uint8_t *data, size_t size) {
    uint8_t *b = fb_fuzz_copy(data, size);
    if (!b) return 0;
    fb_clear_error();
    fb_gguf g;
    fb_status s = fb_gguf_open_buffer(&g, b, size, "fuzz.gguf");
    if (s == FB_OK) {
        for (uint64_t i = 0; i < g.n_kv; i++) {
            fb_fuzz_touch(g.kvs[i].key, g.kvs[i].key_len);
            fb_fuzz_gguf_value(&g.kvs[i].value, 0);
        }
        uint32_t u; float f; const char *sp; uint64_t sl;
        (void)fb_gguf_get_u32(&g, "llama.context_length", &u);
        (void)fb_gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &f);
        (void)fb_gguf_get_string(&g, "general.architecture", &sp, &sl);
        for (uint64_t i = 0; i < g.n_tensors; i++) {
            const fb_gguf_tensor *t = &g.tensors[i];
            fb_fuzz_touch(t->data, t->nbytes);
            if (fb_gguf_find_tensor(&g, t->name) != t) abort();
            if (t->n_rows && t->ne[0] <= 4096) {
                float *row = (float *)malloc((size_t)t->ne[0] * sizeof(float) + 4);
                if (row) {
                    fb_gguf_tensor_row_f32(t, 0, row);
                    fb_gguf_tensor_row_f32(t, t->n_rows - 1, row);
                    free(row);
                }
            }
        }
        fb_gguf_close(&g);
    }
    free(b);
    return fb_fuzz_check_error(s);
}

static inline void fb_fuzz_l2c_tensor(const fb_llama2c_tensor *t, int gs) {
    uint64_t n = t->rows * t->cols;
    if (t->f32) fb_fuzz_touch(t->f32, n * 4);
    if (t->q) { fb_fuzz_touch(t->q, n); fb_fuzz_touch(t->scales, n / (uint64_t)gs * 4); }
}

static inline int fb_fuzz_llama2c(const uint8_t *data, size_t size) {
    uint8_t *b = fb_fuzz_copy(data, size);
    if (!b) return 0;
    fb_clear_error();
    fb_llama2c m;
    fb_status s = fb_llama2c_open_buffer(&m, b, size, "fuzz.bin");
    if (s == FB_OK) {
        int gs = m.cfg.group_size;
        fb_fuzz_l2c_tensor(&m.token_embedding, gs);
        fb_fuzz_l2c_tensor(&m.rms_final, gs);
        fb_fuzz_l2c_tensor(&m.wcls, gs);
        for (int l = 0; l < m.cfg.n_layers; l++) {
            const fb_llama2c_layer *ly = &m.layers[l];
            const fb_llama2c_tensor *ts[] = {&ly->rms_att, &ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->rms_ffn, &ly->w1, &ly->w2, &ly->w3};
            for (int k = 0; k < 9; k++) fb_fuzz_l2c_tensor(ts[k], gs);
        }
        fb_llama2c_close(&m);
    }
    free(b);
    return fb_fuzz_check_error(s);
}

static inline int fb_fuzz_llmc(const uint8_t *data, size_t size) {
    uint8_t *b = fb_fuzz_copy(data, size);
    if (!b) return 0;
    fb_clear_error();
    fb_llmc m;
    fb_status s = fb_llmc_open_buffer(&m, b, size, "fuzz.bin");
    if (s == FB_OK) {
        for (int p = 0; p < FB_LLMC_NUM_PARAMS; p++) {
            fb_fuzz_touch(m.params[p].data, m.params[p].numel * m.elem_size);
            float f[4];
            uint64_t n = m.params[p].numel < 4 ? m.params[p].numel : 4;
            fb_llmc_read_f32(&m, (fb_llmc_param)p, m.params[p].numel - n, n, f);
        }
        fb_llmc_close(&m);
    }
    free(b);
    return fb_fuzz_check_error(s);
}
#endif
