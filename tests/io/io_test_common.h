/* Helpers shared by the io tests: temp dirs, whole-file reads, and small
 * synthetic model writers that follow the reference exporters. */
#ifndef FB_IO_TEST_COMMON_H
#define FB_IO_TEST_COMMON_H
#include "test_util.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

static char io_tmpdir[256];

static inline const char *io_tmp_init(void) {
    const char *base = getenv("TMPDIR");
    snprintf(io_tmpdir, sizeof io_tmpdir, "%s/fbio.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(io_tmpdir)) { perror("mkdtemp"); exit(1); }
    return io_tmpdir;
}

static inline const char *io_tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", io_tmpdir, name);
    return buf[k];
}

static inline void io_tmp_cleanup(void) {
    DIR *d = opendir(io_tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[800];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", io_tmpdir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(io_tmpdir);
}

/* Whole file into a malloc'd buffer (8-byte aligned); exits on failure. */
static inline uint8_t *io_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n ? (size_t)n : 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "cannot read %s\n", path); exit(1); }
    fclose(f);
    *size = (size_t)n;
    return b;
}

static inline void io_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
}

/* ---- a growable byte buffer for synthetic files ---- */
typedef struct { uint8_t *p; size_t n, cap; } io_buf;
static inline void io_put(io_buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 1024;
        while (c < b->n + n) c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p) exit(1);
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void io_put_i32(io_buf *b, int32_t v) { io_put(b, &v, 4); }
static inline void io_put_u32(io_buf *b, uint32_t v) { io_put(b, &v, 4); }
static inline void io_put_u64(io_buf *b, uint64_t v) { io_put(b, &v, 8); }
static inline void io_put_f32s(io_buf *b, const float *x, size_t n) { io_put(b, x, n * 4); }
static inline void io_put_zeros(io_buf *b, size_t n) { while (n--) { uint8_t z = 0; io_put(b, &z, 1); } }

/* ---- llama2.c synthetic model following export.py ---- */
typedef struct {
    int dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared;
    float *emb, *rms_att, *rms_ffn, *rms_final, *wq, *wk, *wv, *wo, *w1, *w2, *w3, *wcls;
} io_l2c_model;

static inline void io_l2c_model_init(io_l2c_model *m, int dim, int hidden, int layers, int heads, int kv, int vocab,
                                     int seq, int shared, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->dim = dim; m->hidden = hidden; m->layers = layers; m->heads = heads; m->kv_heads = kv;
    m->vocab = vocab; m->seq_len = seq; m->shared = shared;
    fb_test_rng r;
    fb_test_rng_seed(&r, seed);
    int kvd = dim / heads * kv;
#define ALLOC(f, n) do { m->f = malloc(sizeof(float) * (size_t)(n)); fb_test_fill_normal(&r, m->f, (size_t)(n), 0.5f); } while (0)
    ALLOC(emb, vocab * dim); ALLOC(rms_att, layers * dim); ALLOC(rms_ffn, layers * dim); ALLOC(rms_final, dim);
    ALLOC(wq, layers * dim * dim); ALLOC(wk, layers * kvd * dim); ALLOC(wv, layers * kvd * dim);
    ALLOC(wo, layers * dim * dim); ALLOC(w1, layers * hidden * dim); ALLOC(w2, layers * dim * hidden);
    ALLOC(w3, layers * hidden * dim); ALLOC(wcls, vocab * dim);
#undef ALLOC
    if (shared) memcpy(m->wcls, m->emb, sizeof(float) * (size_t)vocab * dim);
}

static inline void io_l2c_model_free(io_l2c_model *m) {
    free(m->emb); free(m->rms_att); free(m->rms_ffn); free(m->rms_final); free(m->wq); free(m->wk);
    free(m->wv); free(m->wo); free(m->w1); free(m->w2); free(m->w3); free(m->wcls);
}

/* legacy_export */
static inline void io_l2c_write_v0(const io_l2c_model *m, io_buf *b) {
    int hs = m->dim / m->heads, kvd = hs * m->kv_heads, L = m->layers, D = m->dim, H = m->hidden;
    int32_t h[7] = {m->dim, m->hidden, m->layers, m->heads, m->kv_heads, m->shared ? m->vocab : -m->vocab, m->seq_len};
    io_put(b, h, sizeof h);
    io_put_f32s(b, m->emb, (size_t)m->vocab * D);
    io_put_f32s(b, m->rms_att, (size_t)L * D);
    io_put_f32s(b, m->wq, (size_t)L * D * D);
    io_put_f32s(b, m->wk, (size_t)L * kvd * D);
    io_put_f32s(b, m->wv, (size_t)L * kvd * D);
    io_put_f32s(b, m->wo, (size_t)L * D * D);
    io_put_f32s(b, m->rms_ffn, (size_t)L * D);
    io_put_f32s(b, m->w1, (size_t)L * H * D);
    io_put_f32s(b, m->w2, (size_t)L * D * H);
    io_put_f32s(b, m->w3, (size_t)L * H * D);
    io_put_f32s(b, m->rms_final, (size_t)D);
    for (int k = 0; k < 2; k++) /* freqs_cos, freqs_sin [seq_len, hs/2] */
        for (int i = 0; i < m->seq_len * hs / 2; i++) { float v = (float)(k * 1000 + i); io_put_f32s(b, &v, 1); }
    if (!m->shared) io_put_f32s(b, m->wcls, (size_t)m->vocab * D);
}

static inline void io_l2c_header_v12(const io_l2c_model *m, io_buf *b, int version, int gs) {
    io_put_u32(b, 0x616b3432u);
    io_put_i32(b, version);
    int32_t h[7] = {m->dim, m->hidden, m->layers, m->heads, m->kv_heads, m->vocab, m->seq_len};
    io_put(b, h, sizeof h);
    uint8_t sc = (uint8_t)m->shared;
    io_put(b, &sc, 1);
    if (version == 2) io_put_i32(b, gs);
    io_put_zeros(b, 256 - b->n);
}

/* the matrices in export order: emb, wq.., wk.., wv.., wo.., w1.., w2.., w3.., [wcls] */
static inline int io_l2c_matrices(const io_l2c_model *m, const float **ptr, size_t *n) {
    int hs = m->dim / m->heads, kvd = hs * m->kv_heads, L = m->layers, D = m->dim, H = m->hidden, k = 0;
    ptr[k] = m->emb; n[k++] = (size_t)m->vocab * D;
    for (int l = 0; l < L; l++) { ptr[k] = m->wq + (size_t)l * D * D; n[k++] = (size_t)D * D; }
    for (int l = 0; l < L; l++) { ptr[k] = m->wk + (size_t)l * kvd * D; n[k++] = (size_t)kvd * D; }
    for (int l = 0; l < L; l++) { ptr[k] = m->wv + (size_t)l * kvd * D; n[k++] = (size_t)kvd * D; }
    for (int l = 0; l < L; l++) { ptr[k] = m->wo + (size_t)l * D * D; n[k++] = (size_t)D * D; }
    for (int l = 0; l < L; l++) { ptr[k] = m->w1 + (size_t)l * H * D; n[k++] = (size_t)H * D; }
    for (int l = 0; l < L; l++) { ptr[k] = m->w2 + (size_t)l * D * H; n[k++] = (size_t)D * H; }
    for (int l = 0; l < L; l++) { ptr[k] = m->w3 + (size_t)l * H * D; n[k++] = (size_t)H * D; }
    if (!m->shared) { ptr[k] = m->wcls; n[k++] = (size_t)m->vocab * D; }
    return k;
}

/* version1_export */
static inline void io_l2c_write_v1(const io_l2c_model *m, io_buf *b) {
    io_l2c_header_v12(m, b, 1, 0);
    io_put_f32s(b, m->rms_att, (size_t)m->layers * m->dim);
    io_put_f32s(b, m->rms_ffn, (size_t)m->layers * m->dim);
    io_put_f32s(b, m->rms_final, (size_t)m->dim);
    const float *p[256]; size_t n[256];
    int k = io_l2c_matrices(m, p, n);
    for (int i = 0; i < k; i++) io_put_f32s(b, p[i], n[i]);
}

/* quantize_q80 of export.py: scale = max|w| / 127 per group, q = round(w / scale) */
static inline void io_l2c_q80(const float *w, size_t n, int gs, int8_t *q, float *s) {
    for (size_t g = 0; g < n / (size_t)gs; g++) {
        float wmax = 0;
        for (int i = 0; i < gs; i++) { float a = w[g * gs + i]; if (a < 0) a = -a; if (a > wmax) wmax = a; }
        float scale = wmax / 127.0f;
        s[g] = scale;
        for (int i = 0; i < gs; i++) {
            float v = scale != 0.0f ? w[g * gs + i] / scale : 0.0f;
            /* torch.round: half to even */
            float r = __builtin_nearbyintf(v);
            q[g * gs + i] = (int8_t)r;
        }
    }
}

/* version2_export (current export.py: int8 values then scales, per tensor) */
static inline void io_l2c_write_v2(const io_l2c_model *m, io_buf *b, int gs) {
    io_l2c_header_v12(m, b, 2, gs);
    io_put_f32s(b, m->rms_att, (size_t)m->layers * m->dim);
    io_put_f32s(b, m->rms_ffn, (size_t)m->layers * m->dim);
    io_put_f32s(b, m->rms_final, (size_t)m->dim);
    const float *p[256]; size_t n[256];
    int k = io_l2c_matrices(m, p, n);
    for (int i = 0; i < k; i++) {
        int8_t *q = malloc(n[i]);
        float *s = malloc(n[i] / (size_t)gs * sizeof(float));
        io_l2c_q80(p[i], n[i], gs, q, s);
        io_put(b, q, n[i]);
        io_put_f32s(b, s, n[i] / (size_t)gs);
        free(q); free(s);
    }
}

/* ---- llm.c synthetic checkpoint (write_model in train_gpt2.py) ---- */
static inline void io_llmc_write(io_buf *b, int version, int maxT, int V, int L, int NH, int C, int Vp, uint64_t seed) {
    int32_t h[256] = {0};
    h[0] = 20240326; h[1] = version; h[2] = maxT; h[3] = V; h[4] = L; h[5] = NH; h[6] = C; h[7] = Vp;
    io_put(b, h, sizeof h);
    size_t total = (size_t)Vp * C + (size_t)maxT * C + (size_t)L * (12 * (size_t)C * C + 13 * (size_t)C) + 2 * (size_t)C;
    fb_test_rng r;
    fb_test_rng_seed(&r, seed);
    for (size_t i = 0; i < total; i++) {
        float v = fb_test_rng_normal(&r);
        if (version == 3) io_put_f32s(b, &v, 1);
        else { uint32_t u; memcpy(&u, &v, 4); uint16_t hb = (uint16_t)(u >> 16); io_put(b, &hb, 2); }
    }
}
#endif
