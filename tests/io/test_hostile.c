/* Every reader on truncated and corrupted copies of small valid files:
 * every prefix length, and every byte set to 0x00 / 0xff / flipped. Each
 * must either parse (and then all pointers stay in the buffer: the fuzz
 * bodies touch every byte) or fail with a message; never crash. With a
 * directory argument, also writes the samples there as fuzz seed corpora
 * (DIR/safetensors, DIR/gguf, DIR/llama2c, DIR/llmc). */
#include "fuzz/fuzz_common.h"
#include "io_test_common.h"
#include <sys/stat.h>

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static void hammer(const char *what, fuzz_fn fn, const uint8_t *data, size_t n, size_t must_fail_below) {
    FB_CHECK(fn(data, n) == 0, "%s: the intact sample does not parse: %s", what, fb_last_error());
    int accepted = 0;
    for (size_t k = 0; k < n; k++) {
        int s = fn(data, k);
        if (k < must_fail_below && s == 0) accepted++;
    }
    FB_CHECK(accepted == 0, "%s: %d truncated prefixes were accepted", what, accepted);
    uint8_t *m = malloc(n);
    for (size_t i = 0; i < n; i++) {
        static const int ops[3] = {0, 1, 2};
        for (int o = 0; o < 3; o++) {
            memcpy(m, data, n);
            m[i] = ops[o] == 0 ? 0x00 : ops[o] == 1 ? 0xff : (uint8_t)(m[i] ^ 0x80);
            fn(m, n);
        }
    }
    free(m);
}

static void save_seed(const char *dir, const char *fmt, const char *name, const uint8_t *d, size_t n) {
    if (!dir) return;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, fmt);
    mkdir(dir, 0755);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s", dir, fmt, name);
    io_write_file(p, d, n);
}

int main(int argc, char **argv) {
    const char *seed_dir = argc > 1 ? argv[1] : NULL;
    io_tmp_init();
    size_t n;
    uint8_t *d;

    /* safetensors */
    {
        float w[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        uint16_t h[3] = {0x3c00, 0x4000, 0xc000};
        uint64_t s34[2] = {3, 4}, s3[1] = {3};
        fb_st_write_tensor ts[] = {{"token_embd.weight", FB_ST_F32, 2, s34, w}, {"h", FB_ST_F16, 1, s3, h}};
        fb_st_kv meta[] = {{"format", "pt"}, {"flashblock.preset", "llama"}};
        const char *p = io_tmp_path("s.safetensors");
        FB_CHECK(fb_safetensors_write(p, ts, 2, meta, 2) == FB_OK, "write st");
        d = io_read_file(p, &n);
        hammer("safetensors", fb_fuzz_safetensors, d, n, n);
        save_seed(seed_dir, "safetensors", "small.safetensors", d, n);
        free(d);
    }
    /* gguf */
    {
        fb_gguf_writer *w;
        fb_gguf_writer_init(&w);
        const char *toks[] = {"a", "b", "ab"};
        float sc[] = {0, -1, -2};
        fb_gguf_writer_add_string(w, "general.architecture", "llama");
        fb_gguf_writer_add_u32(w, "llama.context_length", 8);
        fb_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
        fb_gguf_writer_add_bool(w, "x.flag", 1);
        fb_gguf_writer_add_string_array(w, "tokenizer.ggml.tokens", toks, NULL, 3);
        fb_gguf_writer_add_f32_array(w, "tokenizer.ggml.scores", sc, 3);
        float a[64];
        for (int i = 0; i < 64; i++) a[i] = (float)i / 7.0f - 3.0f;
        uint64_t ne32x2[2] = {32, 2}, ne4[1] = {4};
        fb_gguf_writer_add_tensor_f32(w, "blk.0.attn_q.weight", FB_GGML_Q8_0, 2, ne32x2, a);
        fb_gguf_writer_add_tensor_f32(w, "blk.0.attn_k.weight", FB_GGML_F16, 1, ne4, a);
        fb_gguf_writer_add_tensor_f32(w, "output_norm.weight", FB_GGML_F32, 1, ne4, a);
        const char *p = io_tmp_path("g.gguf");
        FB_CHECK(fb_gguf_writer_write(w, p) == FB_OK, "write gguf");
        fb_gguf_writer_free(w);
        d = io_read_file(p, &n);
        fb_gguf g;
        size_t need = n;
        if (fb_gguf_open_buffer(&g, d, n, "g") == FB_OK) {
            need = 0;
            for (uint64_t i = 0; i < g.n_tensors; i++)
                if (g.tensors[i].file_offset + g.tensors[i].nbytes > need) need = (size_t)(g.tensors[i].file_offset + g.tensors[i].nbytes);
            fb_gguf_close(&g);
        }
        hammer("gguf", fb_fuzz_gguf, d, n, need);
        save_seed(seed_dir, "gguf", "small.gguf", d, n);
        free(d);
    }
    /* llama2c v0 (tied and untied), v1, v2 */
    for (int v = 0; v < 4; v++) {
        io_l2c_model m;
        io_l2c_model_init(&m, 8, 12, 1, 2, 1, 6, 4, v != 1, 3);
        io_buf b = {0};
        if (v <= 1) io_l2c_write_v0(&m, &b);
        else if (v == 2) io_l2c_write_v1(&m, &b);
        else io_l2c_write_v2(&m, &b, 4);
        char what[32], name[32];
        snprintf(what, sizeof what, "llama2c sample %d", v);
        snprintf(name, sizeof name, "tiny%d.bin", v);
        hammer(what, fb_fuzz_llama2c, b.p, b.n, b.n);
        save_seed(seed_dir, "llama2c", name, b.p, b.n);
        free(b.p);
        io_l2c_model_free(&m);
    }
    /* llm.c fp32 and bf16 */
    for (int v = 3; v <= 5; v += 2) {
        io_buf b = {0};
        io_llmc_write(&b, v, 2, 3, 1, 2, 4, 4, 1);
        char what[32], name[32];
        snprintf(what, sizeof what, "llmc v%d", v);
        snprintf(name, sizeof name, "tiny_v%d.bin", v);
        hammer(what, fb_fuzz_llmc, b.p, b.n, b.n);
        save_seed(seed_dir, "llmc", name, b.p, b.n);
        free(b.p);
    }
    io_tmp_cleanup();
    return fb_test_finish("io_hostile");
}
