/* Synthetic llm.c GPT-2 checkpoints (fp32 v3 and bf16 v5). */
#include "core/error.h"
#include "io/llmc.h"
#include "io_test_common.h"

static void expect_fail(const io_buf *b, fb_status want, const char *needle, const char *what) {
    fb_llmc m;
    fb_status s = fb_llmc_open_buffer(&m, b->p, b->n, "bad.bin");
    FB_CHECK(s != FB_OK, "%s: accepted", what);
    if (s == FB_OK) { fb_llmc_close(&m); return; }
    if (want != FB_OK) FB_CHECK(s == want, "%s: status %s (%s)", what, fb_status_string(s), fb_last_error());
    if (needle) FB_CHECK(strstr(fb_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, fb_last_error(), needle);
}

int main(void) {
    io_tmp_init();
    const int maxT = 16, V = 50, L = 2, NH = 4, C = 32, Vp = 64;
    for (int version = 3; version <= 5; version += 2) {
        io_buf b = {0};
        io_llmc_write(&b, version, maxT, V, L, NH, C, Vp, 99);
        const char *path = io_tmp_path("gpt2.bin");
        io_write_file(path, b.p, b.n);
        fb_llmc m;
        fb_status s = fb_llmc_open(&m, path);
        FB_CHECK(s == FB_OK, "v%d: %s", version, fb_last_error());
        if (s != FB_OK) { free(b.p); continue; }
        FB_CHECK(m.cfg.version == version && m.cfg.max_seq_len == maxT && m.cfg.vocab_size == V && m.cfg.num_layers == L &&
                     m.cfg.num_heads == NH && m.cfg.channels == C && m.cfg.padded_vocab_size == Vp, "config");
        FB_CHECK(m.elem_size == (version == 3 ? 4u : 2u), "elem size");
        const uint64_t expect[FB_LLMC_NUM_PARAMS] = {
            (uint64_t)Vp * C, (uint64_t)maxT * C, (uint64_t)L * C, (uint64_t)L * C, (uint64_t)L * 3 * C * C, (uint64_t)L * 3 * C,
            (uint64_t)L * C * C, (uint64_t)L * C, (uint64_t)L * C, (uint64_t)L * C, (uint64_t)L * 4 * C * C, (uint64_t)L * 4 * C,
            (uint64_t)L * C * 4 * C, (uint64_t)L * C, (uint64_t)C, (uint64_t)C};
        uint64_t off = 1024;
        for (int p = 0; p < FB_LLMC_NUM_PARAMS; p++) {
            FB_CHECK(m.params[p].numel == expect[p], "%s numel %llu", fb_llmc_param_name((fb_llmc_param)p), (unsigned long long)m.params[p].numel);
            FB_CHECK(m.params[p].file_offset == off, "%s offset", fb_llmc_param_name((fb_llmc_param)p));
            off += expect[p] * m.elem_size;
        }
        FB_CHECK(m.params[FB_LLMC_QKVW].ndim == 3 && m.params[FB_LLMC_QKVW].shape[1] == 3 * (uint64_t)C, "qkvw shape");
        FB_CHECK(m.params[FB_LLMC_FCPROJW].shape[2] == 4 * (uint64_t)C, "fcprojw shape");
        /* values: regenerate the same stream */
        fb_test_rng r;
        fb_test_rng_seed(&r, 99);
        int bad = 0;
        float got[64];
        for (int p = 0; p < FB_LLMC_NUM_PARAMS && !bad; p++)
            for (uint64_t i = 0; i < m.params[p].numel && !bad; i += 64) {
                uint64_t n = m.params[p].numel - i < 64 ? m.params[p].numel - i : 64;
                fb_llmc_read_f32(&m, (fb_llmc_param)p, i, n, got);
                for (uint64_t k = 0; k < n; k++) {
                    float v = fb_test_rng_normal(&r);
                    if (version == 5) { uint32_t u; memcpy(&u, &v, 4); u &= 0xffff0000u; memcpy(&v, &u, 4); }
                    if (got[k] != v) bad = 1;
                }
            }
        FB_CHECK(!bad, "v%d values differ", version);
        FB_CHECK(fb_llmc_read_f32(&m, FB_LLMC_LNFB, 30, 3, got) == FB_ERR_INVALID_ARG, "range check");
        fb_llmc_close(&m);

        io_buf c = {0};
        io_put(&c, b.p, b.n);
        c.n -= 2;
        expect_fail(&c, FB_ERR_FORMAT, "lnfb", "short file");
        c.n += 2;
        io_put_zeros(&c, 2);
        expect_fail(&c, FB_ERR_FORMAT, "describes", "long file");
        c.n -= 2;
        int32_t v;
        v = 4; memcpy(c.p + 4, &v, 4);
        expect_fail(&c, FB_ERR_UNSUPPORTED, "version 4", "version 4");
        v = version; memcpy(c.p + 4, &v, 4);
        v = 1; memcpy(c.p, &v, 4);
        expect_fail(&c, FB_ERR_FORMAT, "magic", "magic");
        v = 20240326; memcpy(c.p, &v, 4);
        v = 40; memcpy(c.p + 28, &v, 4);
        expect_fail(&c, FB_ERR_FORMAT, "padded_vocab_size", "Vp < V");
        v = Vp; memcpy(c.p + 28, &v, 4);
        v = 0x7fffffff; memcpy(c.p + 16, &v, 4);
        expect_fail(&c, FB_ERR_FORMAT, NULL, "huge L");
        v = L; memcpy(c.p + 16, &v, 4);
        v = 5; memcpy(c.p + 20, &v, 4);
        expect_fail(&c, FB_ERR_FORMAT, "num_heads", "C mod NH");
        v = -1; memcpy(c.p + 8, &v, 4);
        expect_fail(&c, FB_ERR_FORMAT, "max_seq_len", "negative maxT");
        c.n = 500;
        expect_fail(&c, FB_ERR_FORMAT, NULL, "truncated header");
        free(c.p);
        free(b.p);
    }
    io_tmp_cleanup();
    return fb_test_finish("io_llmc");
}
