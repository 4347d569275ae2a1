#include "io/llmc.h"
#include "core/error.h"
#include "core/half.h"

#include <string.h>

static const char *k_names[FB_LLMC_NUM_PARAMS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

const char *fb_llmc_param_name(fb_llmc_param p) { return (unsigned)p < FB_LLMC_NUM_PARAMS ? k_names[p] : "?"; }

void fb_llmc_close(fb_llmc *m) {
    if (!m) return;
    fb_mapped_file_close(&m->file);
    memset(m, 0, sizeof *m);
}

static fb_status parse(fb_llmc *m) {
    const fb_mapped_file *f = &m->file;
    fb_reader r;
    fb_reader_init(&r, f->data, f->size, f->name);
    if (f->data && ((uintptr_t)f->data & 3u)) return fb_fail(FB_ERR_INVALID_ARG, "%s: buffer is not 4-byte aligned", f->name);
    int32_t h[8];
    for (int i = 0; i < 8; i++) FB_TRY(fb_reader_i32(&r, &h[i], "llm.c header"));
    if (h[0] != FB_LLMC_MAGIC)
        return fb_fail(FB_ERR_FORMAT, "%s: offset 0: bad magic %d (llm.c checkpoints start with %d)", f->name, h[0], FB_LLMC_MAGIC);
    if (h[1] == 3) { m->dtype = FB_LLMC_F32; m->elem_size = 4; }
    else if (h[1] == 5) { m->dtype = FB_LLMC_BF16; m->elem_size = 2; }
    else return fb_fail(FB_ERR_UNSUPPORTED, "%s: offset 4: llm.c checkpoint version %d is not supported (3 = fp32, 5 = bf16)", f->name, h[1]);
    FB_TRY(fb_reader_seek(&r, FB_LLMC_HEADER_BYTES, "end of the 1024-byte header"));
    fb_llmc_config *c = &m->cfg;
    c->version = h[1];
    c->max_seq_len = h[2]; c->vocab_size = h[3]; c->num_layers = h[4];
    c->num_heads = h[5]; c->channels = h[6]; c->padded_vocab_size = h[7];
#define POS(field) if (c->field <= 0) return fb_fail(FB_ERR_FORMAT, "%s: header: " #field " = %d must be positive", f->name, c->field)
    POS(max_seq_len); POS(vocab_size); POS(num_layers); POS(num_heads); POS(channels); POS(padded_vocab_size);
#undef POS
    if (c->padded_vocab_size < c->vocab_size)
        return fb_fail(FB_ERR_FORMAT, "%s: header: padded_vocab_size %d < vocab_size %d", f->name, c->padded_vocab_size, c->vocab_size);
    if (c->channels % c->num_heads)
        return fb_fail(FB_ERR_FORMAT, "%s: header: channels %d not a multiple of num_heads %d", f->name, c->channels, c->num_heads);
    const uint64_t Vp = (uint64_t)c->padded_vocab_size, C = (uint64_t)c->channels, T = (uint64_t)c->max_seq_len,
                   L = (uint64_t)c->num_layers;
    /* all values < 2^31: 2-factor products fit in 64 bits; 3-factor ones are checked */
    const uint64_t shapes[FB_LLMC_NUM_PARAMS][4] = {
        {2, Vp, C, 0}, {2, T, C, 0},     {2, L, C, 0},     {2, L, C, 0},     {3, L, 3 * C, C}, {2, L, 3 * C, 0},
        {3, L, C, C},  {2, L, C, 0},     {2, L, C, 0},     {2, L, C, 0},     {3, L, 4 * C, C}, {2, L, 4 * C, 0},
        {3, L, C, 4 * C}, {2, L, C, 0},  {1, C, 0, 0},     {1, C, 0, 0}};
    uint64_t pos = FB_LLMC_HEADER_BYTES;
    for (int p = 0; p < FB_LLMC_NUM_PARAMS; p++) {
        fb_llmc_tensor *t = &m->params[p];
        t->ndim = (int)shapes[p][0];
        uint64_t n = 1, nb;
        for (int d = 0; d < t->ndim; d++) {
            t->shape[d] = shapes[p][1 + d];
            if (fb_mul_overflow_u64(n, t->shape[d], &n))
                return fb_fail(FB_ERR_FORMAT, "%s: header: size of %s overflows", f->name, k_names[p]);
        }
        if (fb_mul_overflow_u64(n, m->elem_size, &nb) || nb > f->size - pos)
            return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: parameter %s (%llu values) runs past the end of the file (%llu bytes)",
                           f->name, (unsigned long long)pos, k_names[p], (unsigned long long)n, (unsigned long long)f->size);
        t->numel = n;
        t->file_offset = pos;
        t->data = f->data + pos;
        pos += nb;
    }
    if (pos != f->size)
        return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: file has %llu bytes but the header (maxT=%d V=%d Vp=%d L=%d NH=%d C=%d, %s) describes %llu",
                       f->name, (unsigned long long)pos, (unsigned long long)f->size, c->max_seq_len, c->vocab_size,
                       c->padded_vocab_size, c->num_layers, c->num_heads, c->channels, c->version == 3 ? "fp32" : "bf16",
                       (unsigned long long)pos);
    return FB_OK;
}

fb_status fb_llmc_open(fb_llmc *m, const char *path) {
    if (!m || !path) return fb_fail(FB_ERR_INVALID_ARG, "fb_llmc_open: NULL argument");
    memset(m, 0, sizeof *m);
    FB_TRY(fb_mapped_file_open(&m->file, path));
    fb_status s = parse(m);
    if (s != FB_OK) fb_llmc_close(m);
    return s;
}

fb_status fb_llmc_open_buffer(fb_llmc *m, const void *data, size_t size, const char *name) {
    if (!m) return fb_fail(FB_ERR_INVALID_ARG, "fb_llmc_open_buffer: NULL argument");
    memset(m, 0, sizeof *m);
    FB_TRY(fb_mapped_file_from_buffer(&m->file, data, size, name));
    fb_status s = parse(m);
    if (s != FB_OK) fb_llmc_close(m);
    return s;
}

fb_status fb_llmc_read_f32(const fb_llmc *m, fb_llmc_param p, uint64_t start, uint64_t n, float *out) {
    if (!m || (unsigned)p >= FB_LLMC_NUM_PARAMS || !out) return fb_fail(FB_ERR_INVALID_ARG, "fb_llmc_read_f32: bad argument");
    const fb_llmc_tensor *t = &m->params[p];
    if (start > t->numel || n > t->numel - start)
        return fb_fail(FB_ERR_INVALID_ARG, "fb_llmc_read_f32: range [%llu, +%llu) outside %s (%llu values)",
                       (unsigned long long)start, (unsigned long long)n, k_names[p], (unsigned long long)t->numel);
    const uint8_t *src = (const uint8_t *)t->data + start * m->elem_size;
    if (m->dtype == FB_LLMC_F32) { if (n) memcpy(out, src, (size_t)n * 4); }
    else for (uint64_t i = 0; i < n; i++) out[i] = fb_bf16_to_f32(fb_load_u16le(src + 2 * i));
    return FB_OK;
}
