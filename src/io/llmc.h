/* llm.c GPT-2 checkpoints (gpt2_124M.bin etc.): 256 x int32 header (magic
 * 20240326; version 3 = fp32, 5 = bf16), then the 16 parameter tensors in
 * llm.c's order. Pointers go into the mapping. See docs/FORMATS.md. */
#ifndef FB_IO_LLMC_H
#define FB_IO_LLMC_H
#include "flashblock.h"
#include "io/mapped_file.h"
#include <stdint.h>

#define FB_LLMC_MAGIC 20240326
#define FB_LLMC_HEADER_BYTES 1024

typedef enum fb_llmc_param {
    FB_LLMC_WTE = 0,   /* [Vp, C] */
    FB_LLMC_WPE,       /* [maxT, C] */
    FB_LLMC_LN1W,      /* [L, C] */
    FB_LLMC_LN1B,      /* [L, C] */
    FB_LLMC_QKVW,      /* [L, 3C, C] */
    FB_LLMC_QKVB,      /* [L, 3C] */
    FB_LLMC_ATTPROJW,  /* [L, C, C] */
    FB_LLMC_ATTPROJB,  /* [L, C] */
    FB_LLMC_LN2W,      /* [L, C] */
    FB_LLMC_LN2B,      /* [L, C] */
    FB_LLMC_FCW,       /* [L, 4C, C] */
    FB_LLMC_FCB,       /* [L, 4C] */
    FB_LLMC_FCPROJW,   /* [L, C, 4C] */
    FB_LLMC_FCPROJB,   /* [L, C] */
    FB_LLMC_LNFW,      /* [C] */
    FB_LLMC_LNFB,      /* [C] */
    FB_LLMC_NUM_PARAMS
} fb_llmc_param;

typedef enum fb_llmc_dtype { FB_LLMC_F32 = 0, FB_LLMC_BF16 = 1 } fb_llmc_dtype;

typedef struct fb_llmc_config {
    int version;             /* 3 (fp32) or 5 (bf16) */
    int max_seq_len, vocab_size, num_layers, num_heads, channels, padded_vocab_size;
} fb_llmc_config;

typedef struct fb_llmc_tensor {
    const void *data;        /* float* (F32) or uint16_t bf16 bits (BF16), in the mapping */
    uint64_t numel;
    int ndim;
    uint64_t shape[3];
    uint64_t file_offset;
} fb_llmc_tensor;

typedef struct fb_llmc {
    fb_mapped_file file;
    fb_llmc_config cfg;
    fb_llmc_dtype dtype;
    size_t elem_size;        /* 4 or 2 */
    fb_llmc_tensor params[FB_LLMC_NUM_PARAMS];
} fb_llmc;

const char *fb_llmc_param_name(fb_llmc_param p);   /* "wte", "wpe", ... */
fb_status fb_llmc_open(fb_llmc *m, const char *path);
/* In-memory variant; the buffer must be 4-byte aligned and outlive m. */
fb_status fb_llmc_open_buffer(fb_llmc *m, const void *data, size_t size, const char *name);
void      fb_llmc_close(fb_llmc *m);
/* Elements [start, start+n) of a parameter as f32. */
fb_status fb_llmc_read_f32(const fb_llmc *m, fb_llmc_param p, uint64_t start, uint64_t n, float *out);
#endif
