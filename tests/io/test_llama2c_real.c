/* The real pretrained stories260K.bin (legacy v0 llama2.c checkpoint). */
#include "core/error.h"
#include "io/llama2c.h"
#include "io_test_common.h"
#include <math.h>

int main(void) {
    const char *path = fb_test_data_path("llama2c/stories260K.bin");
    fb_llama2c m;
    fb_status s = fb_llama2c_open(&m, path);
    FB_CHECK(s == FB_OK, "open: %s", fb_last_error());
    if (s != FB_OK) return fb_test_finish("io_llama2c_real");
    const fb_llama2c_config *c = &m.cfg;
    FB_CHECK(c->version == 0, "version %d", c->version);
    FB_CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5 && c->n_heads == 8 && c->n_kv_heads == 4 &&
                 c->vocab_size == 512 && c->seq_len == 512,
             "config %d %d %d %d %d %d %d", c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len);
    FB_CHECK(c->shared_classifier == 1 && c->head_size == 8 && c->kv_dim == 32 && c->group_size == 0, "derived fields");
    FB_CHECK(m.file.size == 1056540, "size %llu", (unsigned long long)m.file.size);
    /* offsets from SOURCES.md: 28-byte header, then embedding [512,64] ... */
    FB_CHECK(m.token_embedding.file_offset == 28, "emb offset");
    FB_CHECK(m.layers[0].rms_att.file_offset == 28 + 4ull * 512 * 64, "rms_att offset");
    FB_CHECK(m.layers[4].wq.file_offset == 28 + 4ull * (512 * 64 + 5 * 64 + 4 * 64 * 64), "wq[4] offset");
    FB_CHECK(m.layers[1].wk.rows == 32 && m.layers[1].wk.cols == 64, "wk shape");
    FB_CHECK(m.layers[2].w2.rows == 64 && m.layers[2].w2.cols == 172, "w2 shape");
    uint64_t final_off = 28 + 4ull * (512 * 64 + 5 * 64 + 5 * 64 * 64 + 2 * 5 * 32 * 64 + 5 * 64 * 64 + 5 * 64 + 3 * 5 * 172 * 64);
    FB_CHECK(m.rms_final.file_offset == final_off, "rms_final offset %llu vs %llu",
             (unsigned long long)m.rms_final.file_offset, (unsigned long long)final_off);
    FB_CHECK(m.wcls.f32 == m.token_embedding.f32, "tied classifier");
    /* The skipped tables right after rms_final are RoPE's cos/sin: checks the layout independently. */
    const float *fcr = m.rms_final.f32 + 64, *fci = fcr + 512 * 4;
    double maxerr = 0;
    for (int pos = 0; pos < 512; pos++)
        for (int i = 0; i < 4; i++) {
            double freq = 1.0 / pow(10000.0, (2.0 * i) / 8.0);
            maxerr = fmax(maxerr, fabs(fcr[pos * 4 + i] - cos(pos * freq)));
            maxerr = fmax(maxerr, fabs(fci[pos * 4 + i] - sin(pos * freq)));
        }
    FB_CHECK(maxerr < 1e-3, "freq_cis tables do not match RoPE (max err %g): layout is off", maxerr);
    /* RMSNorm gains are finite and mostly positive */
    int pos = 0;
    for (int i = 0; i < 64; i++) pos += m.rms_final.f32[i] > 0;
    FB_CHECK(pos > 48, "rms_final looks wrong (%d positive)", pos);
    /* all weights finite */
    for (uint64_t i = 0; i < 512 * 64; i++)
        if (!isfinite(m.token_embedding.f32[i])) { FB_CHECK(0, "non-finite embedding %llu", (unsigned long long)i); break; }
    float row[172];
    FB_CHECK(fb_llama2c_row_f32(&m.layers[0].w1, 171, row, 0) == FB_OK && row[63] == m.layers[0].w1.f32[171 * 64 + 63], "row_f32");
    fb_llama2c_close(&m);
    return fb_test_finish("io_llama2c_real");
}
