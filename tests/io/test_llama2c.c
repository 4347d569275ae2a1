/* Synthetic llama2.c checkpoints written as export.py writes them (v0 legacy,
 * v1 fp32, v2 int8), tied and untied; plus header lies. */
#include "core/error.h"
#include "io/llama2c.h"
#include "io_test_common.h"
#include <math.h>

static void check_f32(const fb_llama2c_tensor *t, const float *ref, uint64_t rows, uint64_t cols, const char *what) {
    FB_CHECK(t->f32 && !t->q, "%s: expected fp32", what);
    FB_CHECK(t->rows == rows && t->cols == cols, "%s: shape %llux%llu", what, (unsigned long long)t->rows, (unsigned long long)t->cols);
    if (t->f32) FB_CHECK(memcmp(t->f32, ref, rows * cols * 4) == 0, "%s: values differ", what);
}

static void check_q(const fb_llama2c_tensor *t, const float *ref, uint64_t rows, uint64_t cols, int gs, const char *what) {
    FB_CHECK(t->q && t->scales && !t->f32, "%s: expected int8", what);
    FB_CHECK(t->rows == rows && t->cols == cols, "%s: shape", what);
    if (!t->q) return;
    float *row = malloc(cols * sizeof(float));
    double maxerr = 0;
    for (uint64_t r = 0; r < rows; r++) {
        fb_llama2c_row_f32(t, r, row, gs);
        for (uint64_t c = 0; c < cols; c++) maxerr = fmax(maxerr, fabs(row[c] - ref[r * cols + c]));
    }
    free(row);
    /* |w| <= ~2.5 with scale 0.5 normal: error <= max/127/2 */
    FB_CHECK(maxerr < 0.02, "%s: dequantized error %g", what, maxerr);
}

static void check_model(const fb_llama2c *m, const io_l2c_model *ref, int version, int gs) {
    const fb_llama2c_config *c = &m->cfg;
    FB_CHECK(c->version == version && c->dim == ref->dim && c->hidden_dim == ref->hidden && c->n_layers == ref->layers &&
                 c->n_heads == ref->heads && c->n_kv_heads == ref->kv_heads && c->vocab_size == ref->vocab &&
                 c->seq_len == ref->seq_len && c->shared_classifier == ref->shared && c->group_size == (version == 2 ? gs : 0),
             "config mismatch (version %d)", version);
    uint64_t D = (uint64_t)ref->dim, H = (uint64_t)ref->hidden, KV = (uint64_t)(ref->dim / ref->heads * ref->kv_heads);
    for (int l = 0; l < ref->layers; l++) {
        check_f32(&m->layers[l].rms_att, ref->rms_att + l * D, 1, D, "rms_att");
        check_f32(&m->layers[l].rms_ffn, ref->rms_ffn + l * D, 1, D, "rms_ffn");
        if (version < 2) {
            check_f32(&m->layers[l].wq, ref->wq + l * D * D, D, D, "wq");
            check_f32(&m->layers[l].wk, ref->wk + l * KV * D, KV, D, "wk");
            check_f32(&m->layers[l].wv, ref->wv + l * KV * D, KV, D, "wv");
            check_f32(&m->layers[l].wo, ref->wo + l * D * D, D, D, "wo");
            check_f32(&m->layers[l].w1, ref->w1 + l * H * D, H, D, "w1");
            check_f32(&m->layers[l].w2, ref->w2 + l * D * H, D, H, "w2");
            check_f32(&m->layers[l].w3, ref->w3 + l * H * D, H, D, "w3");
        } else {
            check_q(&m->layers[l].wq, ref->wq + l * D * D, D, D, gs, "wq");
            check_q(&m->layers[l].wk, ref->wk + l * KV * D, KV, D, gs, "wk");
            check_q(&m->layers[l].wv, ref->wv + l * KV * D, KV, D, gs, "wv");
            check_q(&m->layers[l].wo, ref->wo + l * D * D, D, D, gs, "wo");
            check_q(&m->layers[l].w1, ref->w1 + l * H * D, H, D, gs, "w1");
            check_q(&m->layers[l].w2, ref->w2 + l * D * H, D, H, gs, "w2");
            check_q(&m->layers[l].w3, ref->w3 + l * H * D, H, D, gs, "w3");
        }
    }
    check_f32(&m->rms_final, ref->rms_final, 1, D, "rms_final");
    if (version < 2) {
        check_f32(&m->token_embedding, ref->emb, (uint64_t)ref->vocab, D, "emb");
        check_f32(&m->wcls, ref->wcls, (uint64_t)ref->vocab, D, "wcls");
    } else {
        check_q(&m->token_embedding, ref->emb, (uint64_t)ref->vocab, D, gs, "emb");
        check_q(&m->wcls, ref->wcls, (uint64_t)ref->vocab, D, gs, "wcls");
    }
    if (ref->shared) FB_CHECK(m->wcls.f32 == m->token_embedding.f32 && m->wcls.q == m->token_embedding.q, "shared wcls");
    else FB_CHECK(m->wcls.file_offset != m->token_embedding.file_offset, "untied wcls");
}

static void expect_fail(const io_buf *b, fb_status want, const char *needle, const char *what) {
    fb_llama2c m;
    fb_status s = fb_llama2c_open_buffer(&m, b->p, b->n, "bad.bin");
    FB_CHECK(s != FB_OK, "%s: accepted", what);
    if (s == FB_OK) { fb_llama2c_close(&m); return; }
    if (want != FB_OK) FB_CHECK(s == want, "%s: status %s (%s)", what, fb_status_string(s), fb_last_error());
    FB_CHECK(fb_last_error()[0] != '\0', "%s: no message", what);
    if (needle) FB_CHECK(strstr(fb_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, fb_last_error(), needle);
}

int main(void) {
    io_tmp_init();
    for (int shared = 0; shared <= 1; shared++) {
        io_l2c_model ref;
        /* GQA, hidden_dim not a multiple of 64 like stories260K */
        io_l2c_model_init(&ref, 64, 96, 2, 8, 4, 40, 16, shared, 1234 + (uint64_t)shared);
        for (int version = 0; version <= 2; version++) {
            int gs = 32;
            io_buf b = {0};
            if (version == 0) io_l2c_write_v0(&ref, &b);
            else if (version == 1) io_l2c_write_v1(&ref, &b);
            else io_l2c_write_v2(&ref, &b, gs);
            const char *path = io_tmp_path("model.bin");
            io_write_file(path, b.p, b.n);
            fb_llama2c m;
            fb_status s = fb_llama2c_open(&m, path);
            FB_CHECK(s == FB_OK, "v%d shared=%d: %s", version, shared, fb_last_error());
            if (s == FB_OK) { check_model(&m, &ref, version, gs); fb_llama2c_close(&m); }
            /* buffer variant */
            s = fb_llama2c_open_buffer(&m, b.p, b.n, "mem");
            FB_CHECK(s == FB_OK, "buffer v%d: %s", version, fb_last_error());
            if (s == FB_OK) fb_llama2c_close(&m);

            /* one byte more or less: exact size check */
            io_buf c = {0};
            io_put(&c, b.p, b.n);
            io_put_zeros(&c, 4);
            expect_fail(&c, FB_ERR_FORMAT, "describes", "4 trailing bytes");
            c.n = b.n - 4;
            expect_fail(&c, FB_ERR_FORMAT, "bad.bin: offset", "4 bytes short");
            free(c.p);
            /* tied <-> untied flag flip makes the size wrong */
            c = (io_buf){0};
            io_put(&c, b.p, b.n);
            if (version == 0) { int32_t v; memcpy(&v, c.p + 20, 4); v = -v; memcpy(c.p + 20, &v, 4); }
            else c.p[36] ^= 1;
            expect_fail(&c, FB_ERR_FORMAT, NULL, "flipped shared flag");
            free(c.p);
            free(b.p);
        }
        io_l2c_model_free(&ref);
    }

    /* header lies */
    io_l2c_model ref;
    io_l2c_model_init(&ref, 32, 48, 1, 4, 2, 16, 8, 1, 7);
    io_buf good = {0};
    io_l2c_write_v0(&ref, &good);
    struct { int field; int32_t value; const char *needle; } lies[] = {
        {0, 0, "dim = 0"}, {0, -32, "dim = -32"}, {1, 0, "hidden_dim"}, {2, 0, "n_layers"}, {3, 0, "n_heads"},
        {3, 5, "not a multiple of n_heads"}, {4, 0, "n_kv_heads"}, {4, 3, "n_kv_heads 3"}, {4, 8, "n_kv_heads 8"},
        {5, 0, "vocab_size"}, {5, INT32_MIN, "vocab_size"}, {6, 0, "seq_len"},
        {2, 0x7fffffff, "n_layers"}, {0, 0x40000000, NULL}, {1, 0x7fffffff, NULL}, {5, 0x7fffffff, NULL},
        {6, 0x7fffffff, NULL}};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        io_buf c = {0};
        io_put(&c, good.p, good.n);
        memcpy(c.p + 4 * lies[i].field, &lies[i].value, 4);
        char what[64];
        snprintf(what, sizeof what, "v0 header field %d = %d", lies[i].field, lies[i].value);
        expect_fail(&c, FB_ERR_FORMAT, lies[i].needle, what);
        free(c.p);
    }
    /* v1/v2 header lies */
    io_buf v2 = {0};
    io_l2c_write_v2(&ref, &v2, 16);
    {
        io_buf c = {0};
        io_put(&c, v2.p, v2.n);
        int32_t bad = 3; memcpy(c.p + 4, &bad, 4);
        expect_fail(&c, FB_ERR_UNSUPPORTED, "version 3", "ak42 version 3");
        bad = 2; memcpy(c.p + 4, &bad, 4);
        int32_t gs = 0; memcpy(c.p + 37, &gs, 4);
        expect_fail(&c, FB_ERR_FORMAT, "group size", "group size 0");
        gs = 24; memcpy(c.p + 37, &gs, 4);
        expect_fail(&c, FB_ERR_FORMAT, "group size", "group size 24");
        gs = 16; memcpy(c.p + 37, &gs, 4);
        c.p[36] = 7;
        expect_fail(&c, FB_ERR_FORMAT, "shared_classifier", "flag 7");
        c.n = 100;
        expect_fail(&c, FB_ERR_FORMAT, NULL, "truncated header");
        free(c.p);
    }
    /* file errors */
    fb_llama2c m;
    FB_CHECK(fb_llama2c_open(&m, io_tmp_path("missing.bin")) == FB_ERR_IO, "missing file -> FB_ERR_IO");
    FB_CHECK(strstr(fb_last_error(), "missing.bin") != NULL, "message names the file: %s", fb_last_error());
    io_write_file(io_tmp_path("empty.bin"), "", 0);
    FB_CHECK(fb_llama2c_open(&m, io_tmp_path("empty.bin")) == FB_ERR_FORMAT, "empty file");
    free(good.p);
    free(v2.p);
    io_l2c_model_free(&ref);
    io_tmp_cleanup();
    return fb_test_finish("io_llama2c");
}
