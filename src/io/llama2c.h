/* llama2.c checkpoints: legacy v0 (run.c), and the "ak42" v1 (fp32) and v2
 * (int8, group-quantized) exports of llama2.c's export.py. Weights point into
 * the mapping (no copies). See docs/FORMATS.md for the exact layouts. */
#ifndef FB_IO_LLAMA2C_H
#define FB_IO_LLAMA2C_H
#include "flashblock.h"
#include "io/mapped_file.h"
#include <stdint.h>

#define FB_LLAMA2C_MAGIC 0x616b3432u /* "ak42" */

typedef struct fb_llama2c_config {
    int version;            /* 0, 1 or 2 */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared_classifier;  /* 1: wcls is the token embedding */
    int group_size;         /* v2 quantization group; 0 otherwise */
    int head_size;          /* dim / n_heads */
    int kv_dim;             /* head_size * n_kv_heads */
} fb_llama2c_config;

/* One weight matrix/vector: fp32 in place (v0/v1, and all norms), or int8
 * values + one float scale per group of group_size consecutive elements
 * (v2 matrices): value[i] = q[i] * scales[i / group_size]. */
typedef struct fb_llama2c_tensor {
    const float *f32;       /* NULL for quantized tensors */
    const int8_t *q;        /* NULL for fp32 tensors */
    const float *scales;
    uint64_t rows, cols;    /* [out, in] row-major; vectors: rows = 1 */
    uint64_t file_offset;   /* of f32 or q */
} fb_llama2c_tensor;

typedef struct fb_llama2c_layer {
    fb_llama2c_tensor rms_att;  /* [dim] */
    fb_llama2c_tensor wq;       /* [dim, dim] */
    fb_llama2c_tensor wk, wv;   /* [kv_dim, dim] */
    fb_llama2c_tensor wo;       /* [dim, dim] */
    fb_llama2c_tensor rms_ffn;  /* [dim] */
    fb_llama2c_tensor w1, w3;   /* [hidden_dim, dim] (gate, up) */
    fb_llama2c_tensor w2;       /* [dim, hidden_dim] (down) */
} fb_llama2c_layer;

typedef struct fb_llama2c {
    fb_mapped_file file;
    fb_llama2c_config cfg;
    fb_llama2c_tensor token_embedding;  /* [vocab, dim] */
    fb_llama2c_tensor rms_final;        /* [dim] */
    fb_llama2c_tensor wcls;             /* [vocab, dim]; == token_embedding when shared */
    fb_llama2c_layer *layers;           /* n_layers entries */
} fb_llama2c;

/* Detects the version (ak42 magic -> v1/v2, else legacy v0), validates the
 * header and the exact file size, and sets all pointers. */
fb_status fb_llama2c_open(fb_llama2c *m, const char *path);
/* In-memory variant; the buffer must be 4-byte aligned and outlive m. */
fb_status fb_llama2c_open_buffer(fb_llama2c *m, const void *data, size_t size, const char *name);
void      fb_llama2c_close(fb_llama2c *m);

/* Row r of a tensor as f32 (dequantized for v2; cols values). */
fb_status fb_llama2c_row_f32(const fb_llama2c_tensor *t, uint64_t row, float *out, int group_size);
#endif
