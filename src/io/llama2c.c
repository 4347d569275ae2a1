#include "io/llama2c.h"
#include "core/error.h"

#include <stdlib.h>
#include <string.h>

void fb_llama2c_close(fb_llama2c *m) {
    if (!m) return;
    free(m->layers);
    fb_mapped_file_close(&m->file);
    memset(m, 0, sizeof *m);
}

/* Lays out tensors in order, checking each against the file size. */
typedef struct layout {
    const fb_mapped_file *f;
    uint64_t pos;
    int quant;        /* v2: matrices are int8 + scales */
    uint64_t gs;
    fb_status st;
} layout;

static void place_f32(layout *L, fb_llama2c_tensor *t, uint64_t rows, uint64_t cols, const char *what) {
    if (L->st != FB_OK) return;
    uint64_t n, nb;
    if (fb_mul_overflow_u64(rows, cols, &n) || fb_mul_overflow_u64(n, 4, &nb) || nb > L->f->size - L->pos) {
        L->st = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: %s (%llu x %llu floats) runs past the end of the file (%llu bytes)",
                        L->f->name, (unsigned long long)L->pos, what, (unsigned long long)rows, (unsigned long long)cols,
                        (unsigned long long)L->f->size);
        return;
    }
    memset(t, 0, sizeof *t);
    t->f32 = (const float *)(const void *)(L->f->data + L->pos);
    t->rows = rows;
    t->cols = cols;
    t->file_offset = L->pos;
    L->pos += nb;
}

static void place_q(layout *L, fb_llama2c_tensor *t, uint64_t rows, uint64_t cols, const char *what) {
    if (L->st != FB_OK) return;
    if (!L->quant) { place_f32(L, t, rows, cols, what); return; }
    uint64_t n, ns, nb;
    if (fb_mul_overflow_u64(rows, cols, &n) || n % L->gs) {
        L->st = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: %s has %llu x %llu elements, not a multiple of the group size %llu",
                        L->f->name, (unsigned long long)L->pos, what, (unsigned long long)rows, (unsigned long long)cols,
                        (unsigned long long)L->gs);
        return;
    }
    ns = n / L->gs;
    if (fb_add_overflow_u64(n, ns * 4, &nb) || nb > L->f->size - L->pos) {
        L->st = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: %s (%llu int8 values + %llu scales) runs past the end of the file (%llu bytes)",
                        L->f->name, (unsigned long long)L->pos, what, (unsigned long long)n, (unsigned long long)ns,
                        (unsigned long long)L->f->size);
        return;
    }
    if ((L->pos + n) % 4) {
        L->st = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: scales of %s are not 4-byte aligned (group size %llu); not supported",
                        L->f->name, (unsigned long long)(L->pos + n), what, (unsigned long long)L->gs);
        return;
    }
    memset(t, 0, sizeof *t);
    t->q = (const int8_t *)(L->f->data + L->pos);
    t->scales = (const float *)(const void *)(L->f->data + L->pos + n);
    t->rows = rows;
    t->cols = cols;
    t->file_offset = L->pos;
    L->pos += nb;
}

static void skip_f32(layout *L, uint64_t n, const char *what) {
    if (L->st != FB_OK) return;
    uint64_t nb;
    if (fb_mul_overflow_u64(n, 4, &nb) || nb > L->f->size - L->pos) {
        L->st = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: %s (%llu floats) runs past the end of the file (%llu bytes)",
                        L->f->name, (unsigned long long)L->pos, what, (unsigned long long)n, (unsigned long long)L->f->size);
        return;
    }
    L->pos += nb;
}

static fb_status check_config(const fb_mapped_file *f, fb_llama2c_config *c) {
    const char *n = f->name;
#define POS(field) if (c->field <= 0) return fb_fail(FB_ERR_FORMAT, "%s: header: " #field " = %d must be positive", n, c->field)
    POS(dim); POS(hidden_dim); POS(n_layers); POS(n_heads); POS(n_kv_heads); POS(vocab_size); POS(seq_len);
#undef POS
    if (c->dim % c->n_heads)
        return fb_fail(FB_ERR_FORMAT, "%s: header: dim %d is not a multiple of n_heads %d", n, c->dim, c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return fb_fail(FB_ERR_FORMAT, "%s: header: n_heads %d is not a multiple of n_kv_heads %d", n, c->n_heads, c->n_kv_heads);
    c->head_size = c->dim / c->n_heads;
    c->kv_dim = c->head_size * c->n_kv_heads;
    return FB_OK;
}

static fb_status parse(fb_llama2c *m) {
    const fb_mapped_file *f = &m->file;
    fb_llama2c_config *c = &m->cfg;
    fb_reader r;
    fb_reader_init(&r, f->data, f->size, f->name);
    if (f->data && ((uintptr_t)f->data & 3u))
        return fb_fail(FB_ERR_INVALID_ARG, "%s: buffer is not 4-byte aligned", f->name);
    uint32_t magic = 0;
    if (f->size >= 4) magic = fb_load_u32le(f->data);
    int32_t h[7];
    layout L = {f, 0, 0, 0, FB_OK};
    if (magic == FB_LLAMA2C_MAGIC) {
        int32_t version;
        FB_TRY(fb_reader_u32(&r, &magic, "magic"));
        FB_TRY(fb_reader_i32(&r, &version, "version"));
        if (version != 1 && version != 2)
            return fb_fail(FB_ERR_UNSUPPORTED, "%s: offset 4: llama2.c export version %d is not supported (1 and 2 are)",
                           f->name, version);
        c->version = version;
        for (int i = 0; i < 7; i++) FB_TRY(fb_reader_i32(&r, &h[i], "header"));
        uint8_t shared;
        FB_TRY(fb_reader_u8(&r, &shared, "shared_classifier flag"));
        if (shared > 1)
            return fb_fail(FB_ERR_FORMAT, "%s: offset 36: shared_classifier flag is %u (must be 0 or 1)", f->name, shared);
        c->shared_classifier = shared;
        if (version == 2) {
            int32_t gs;
            FB_TRY(fb_reader_i32(&r, &gs, "group size"));
            if (gs <= 0) return fb_fail(FB_ERR_FORMAT, "%s: offset 37: group size %d must be positive", f->name, gs);
            c->group_size = gs;
        }
        if (f->size < 256) return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: truncated in the 256-byte header", f->name, (unsigned long long)f->size);
        L.pos = 256;
        L.quant = version == 2;
        L.gs = (uint64_t)c->group_size;
    } else {
        for (int i = 0; i < 7; i++) FB_TRY(fb_reader_i32(&r, &h[i], "legacy header"));
        c->version = 0;
        c->shared_classifier = h[5] > 0;
        if (h[5] == INT32_MIN) return fb_fail(FB_ERR_FORMAT, "%s: header: vocab_size %d is invalid", f->name, h[5]);
        if (h[5] < 0) h[5] = -h[5];
        L.pos = 28;
    }
    c->dim = h[0]; c->hidden_dim = h[1]; c->n_layers = h[2]; c->n_heads = h[3];
    c->n_kv_heads = h[4]; c->vocab_size = h[5]; c->seq_len = h[6];
    FB_TRY(check_config(f, c));

    const uint64_t D = (uint64_t)c->dim, H = (uint64_t)c->hidden_dim, NL = (uint64_t)c->n_layers;
    const uint64_t V = (uint64_t)c->vocab_size, KV = (uint64_t)c->kv_dim;
    /* a file holds >= 4*n_layers*dim bytes of norms: bound the layer table by the file size */
    if (NL > f->size / 4 / D + 1)
        return fb_fail(FB_ERR_FORMAT, "%s: header: n_layers %d cannot fit in a file of %llu bytes", f->name, c->n_layers,
                       (unsigned long long)f->size);
    m->layers = calloc((size_t)NL, sizeof *m->layers);
    if (!m->layers) return fb_fail(FB_ERR_OOM, "%s: out of memory", f->name);
    fb_llama2c_layer *ly = m->layers;

    if (c->version == 0) {
        /* run.c memory_map_weights order */
        place_f32(&L, &m->token_embedding, V, D, "token_embedding_table");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].rms_att, 1, D, "rms_att_weight");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].wq, D, D, "wq");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].wk, KV, D, "wk");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].wv, KV, D, "wv");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].wo, D, D, "wo");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].rms_ffn, 1, D, "rms_ffn_weight");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].w1, H, D, "w1");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].w2, D, H, "w2");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].w3, H, D, "w3");
        place_f32(&L, &m->rms_final, 1, D, "rms_final_weight");
        /* freq_cis_real and freq_cis_imag: seq_len * head_size / 2 floats each (as run.c skips them) */
        uint64_t fc = (uint64_t)c->seq_len * (uint64_t)c->head_size / 2;
        skip_f32(&L, fc, "freq_cis_real");
        skip_f32(&L, fc, "freq_cis_imag");
        if (c->shared_classifier) m->wcls = m->token_embedding;
        else place_f32(&L, &m->wcls, V, D, "wcls");
    } else {
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].rms_att, 1, D, "rms_att_weight");
        for (uint64_t l = 0; l < NL; l++) place_f32(&L, &ly[l].rms_ffn, 1, D, "rms_ffn_weight");
        place_f32(&L, &m->rms_final, 1, D, "rms_final_weight");
        place_q(&L, &m->token_embedding, V, D, "token_embedding_table");
        for (uint64_t l = 0; l < NL; l++) place_q(&L, &ly[l].wq, D, D, "wq");
        for (uint64_t l = 0; l < NL; l++) place_q(&L, &ly[l].wk, KV, D, "wk");
        for (uint64_t l = 0; l < NL; l++) place_q(&L, &ly[l].wv, KV, D, "wv");
        for (uint64_t l = 0; l < NL; l++) place_q(&L, &ly[l].wo, D, D, "wo");
        for (uint64_t l = 0; l < NL; l++) place_q(&L, &ly[l].w1, H, D, "w1");
        for (uint64_t l = 0; l < NL; l++) place_q(&L, &ly[l].w2, D, H, "w2");
        for (uint64_t l = 0; l < NL; l++) place_q(&L, &ly[l].w3, H, D, "w3");
        if (c->shared_classifier) m->wcls = m->token_embedding;
        else place_q(&L, &m->wcls, V, D, "wcls");
    }
    FB_TRY(L.st);
    if (L.pos != f->size)
        return fb_fail(FB_ERR_FORMAT,
                       "%s: offset %llu: file has %llu bytes but the v%d header (dim=%d hidden_dim=%d n_layers=%d n_heads=%d "
                       "n_kv_heads=%d vocab_size=%d seq_len=%d%s) describes %llu",
                       f->name, (unsigned long long)L.pos, (unsigned long long)f->size, c->version, c->dim, c->hidden_dim,
                       c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len,
                       c->shared_classifier ? "" : ", untied classifier", (unsigned long long)L.pos);
    return FB_OK;
}

fb_status fb_llama2c_open(fb_llama2c *m, const char *path) {
    if (!m || !path) return fb_fail(FB_ERR_INVALID_ARG, "fb_llama2c_open: NULL argument");
    memset(m, 0, sizeof *m);
    FB_TRY(fb_mapped_file_open(&m->file, path));
    fb_status s = parse(m);
    if (s != FB_OK) fb_llama2c_close(m);
    return s;
}

fb_status fb_llama2c_open_buffer(fb_llama2c *m, const void *data, size_t size, const char *name) {
    if (!m) return fb_fail(FB_ERR_INVALID_ARG, "fb_llama2c_open_buffer: NULL argument");
    memset(m, 0, sizeof *m);
    FB_TRY(fb_mapped_file_from_buffer(&m->file, data, size, name));
    fb_status s = parse(m);
    if (s != FB_OK) fb_llama2c_close(m);
    return s;
}

fb_status fb_llama2c_row_f32(const fb_llama2c_tensor *t, uint64_t row, float *out, int group_size) {
    if (!t || !out || row >= t->rows) return fb_fail(FB_ERR_INVALID_ARG, "fb_llama2c_row_f32: bad row %llu", (unsigned long long)row);
    uint64_t base = row * t->cols;
    if (t->f32) {
        memcpy(out, t->f32 + base, (size_t)t->cols * sizeof(float));
        return FB_OK;
    }
    if (group_size <= 0) return fb_fail(FB_ERR_INVALID_ARG, "fb_llama2c_row_f32: quantized tensor needs the group size");
    for (uint64_t i = 0; i < t->cols; i++) out[i] = (float)t->q[base + i] * t->scales[(base + i) / (uint64_t)group_size];
    return FB_OK;
}
