/* GGUF v3 (and v2) reader and writer. Little-endian only. The reader maps
 * the file, validates every header field against the file size and points
 * into the mapping; see docs/FORMATS.md. */
#ifndef FB_IO_GGUF_H
#define FB_IO_GGUF_H
#include "flashblock.h"
#include "io/mapped_file.h"
#include <stddef.h>
#include <stdint.h>

typedef enum fb_gguf_vtype {
    FB_GGUF_U8 = 0, FB_GGUF_I8 = 1, FB_GGUF_U16 = 2, FB_GGUF_I16 = 3, FB_GGUF_U32 = 4, FB_GGUF_I32 = 5,
    FB_GGUF_F32 = 6, FB_GGUF_BOOL = 7, FB_GGUF_STRING = 8, FB_GGUF_ARRAY = 9, FB_GGUF_U64 = 10,
    FB_GGUF_I64 = 11, FB_GGUF_F64 = 12, FB_GGUF_VTYPE_COUNT
} fb_gguf_vtype;

/* ggml tensor types we read (others are rejected with their name). */
typedef enum fb_ggml_type {
    FB_GGML_F32 = 0, FB_GGML_F16 = 1, FB_GGML_Q8_0 = 8, FB_GGML_BF16 = 30
} fb_ggml_type;

#define FB_GGUF_MAX_DIMS 4
#define FB_GGUF_DEFAULT_ALIGNMENT 32
#define FB_GGUF_MAX_ARRAY_DEPTH 8

const char *fb_gguf_vtype_name(uint32_t t);   /* "uint32", ... */
const char *fb_ggml_type_name(uint32_t t);    /* "F32", "Q4_K", ... or "unknown" */

typedef struct fb_gguf_value {
    fb_gguf_vtype type;
    union {
        uint64_t u;           /* U8, U16, U32, U64, BOOL (0/1) */
        int64_t i;            /* I8, I16, I32, I64 */
        double f;             /* F32, F64 */
        struct { const char *ptr; uint64_t len; } str;   /* not NUL-terminated */
        struct {
            fb_gguf_vtype elem_type;
            uint64_t count;
            const uint8_t *data;     /* first element's encoding */
            uint64_t nbytes;
            const uint64_t *index;   /* byte offset of each element for STRING/ARRAY
                                        elements of top-level arrays; else NULL */
        } arr;
    } v;
} fb_gguf_value;

typedef struct fb_gguf_kv {
    const char *key;   /* not NUL-terminated */
    uint64_t key_len;
    fb_gguf_value value;
} fb_gguf_kv;

typedef struct fb_gguf_tensor {
    const char *name;           /* NUL-terminated copy */
    fb_ggml_type type;
    uint32_t n_dims;
    uint64_t ne[FB_GGUF_MAX_DIMS]; /* ne[0] = innermost (row length); unused dims = 1 */
    uint64_t numel;
    uint64_t nbytes;
    uint64_t row_bytes;          /* bytes of one row of ne[0] elements */
    uint64_t n_rows;             /* numel / ne[0] */
    uint64_t offset;             /* relative to the data section, as stored */
    uint64_t file_offset;        /* absolute */
    const void *data;            /* into the mapping */
} fb_gguf_tensor;

typedef struct fb_gguf {
    fb_mapped_file file;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;        /* absolute start of the tensor data section */
    fb_gguf_kv *kvs;             /* in file order */
    uint64_t n_kv;
    fb_gguf_tensor *tensors;     /* in file order */
    uint64_t n_tensors;
    uint64_t *kv_sorted;         /* indices sorted by key, for lookup */
    uint64_t *tensor_sorted;     /* indices sorted by name */
    uint64_t *index_pool;        /* element offsets of string/array arrays */
    char *name_pool;             /* NUL-terminated tensor names */
} fb_gguf;

fb_status fb_gguf_open(fb_gguf *g, const char *path);
fb_status fb_gguf_open_buffer(fb_gguf *g, const void *data, size_t size, const char *name);
void      fb_gguf_close(fb_gguf *g);

/* ---- metadata ------------------------------------------------------------ */
const fb_gguf_kv *fb_gguf_find_kv(const fb_gguf *g, const char *key);   /* NULL when absent */
/* Typed getters: FB_ERR_FORMAT (message names file and key) when the key is
 * missing, has another type, or the value does not fit. Integer getters accept
 * any integer type whose value fits; get_f32 accepts F32 and F64. */
fb_status fb_gguf_get_u32(const fb_gguf *g, const char *key, uint32_t *out);
fb_status fb_gguf_get_u64(const fb_gguf *g, const char *key, uint64_t *out);
fb_status fb_gguf_get_i64(const fb_gguf *g, const char *key, int64_t *out);
fb_status fb_gguf_get_f32(const fb_gguf *g, const char *key, float *out);
fb_status fb_gguf_get_bool(const fb_gguf *g, const char *key, int *out);
fb_status fb_gguf_get_string(const fb_gguf *g, const char *key, const char **ptr, uint64_t *len);
/* Array with the given element type (FB_GGUF_VTYPE_COUNT: any). */
fb_status fb_gguf_get_array(const fb_gguf *g, const char *key, fb_gguf_vtype elem_type, const fb_gguf_value **out);
/* Element i of an array value (bounds-checked; nested arrays walk). */
fb_status fb_gguf_array_get(const fb_gguf_value *arr, uint64_t i, fb_gguf_value *out);
fb_status fb_gguf_array_string(const fb_gguf_value *arr, uint64_t i, const char **ptr, uint64_t *len);
fb_status fb_gguf_array_f32(const fb_gguf_value *arr, uint64_t i, float *out);   /* F32/F64 elements */
fb_status fb_gguf_array_i64(const fb_gguf_value *arr, uint64_t i, int64_t *out); /* any integer elements */

/* ---- tensors ------------------------------------------------------------- */
const fb_gguf_tensor *fb_gguf_find_tensor(const fb_gguf *g, const char *name);
fb_status fb_gguf_get_tensor(const fb_gguf *g, const char *name, const fb_gguf_tensor **out);
/* Row r (ne[0] values) as f32, any supported type. */
fb_status fb_gguf_tensor_row_f32(const fb_gguf_tensor *t, uint64_t row, float *out);
/* Whole tensor (numel values) as f32. */
fb_status fb_gguf_tensor_to_f32(const fb_gguf_tensor *t, float *out);

/* Decoders usable on any buffer. Q8_0: n must be a multiple of 32. */
void fb_dequant_f16(const void *src, float *dst, uint64_t n);
void fb_dequant_bf16(const void *src, float *dst, uint64_t n);
void fb_dequant_q8_0(const void *src, float *dst, uint64_t n);
/* Encoders (ggml's reference rounding). */
void fb_quant_f16(const float *src, void *dst, uint64_t n);
void fb_quant_bf16(const float *src, void *dst, uint64_t n);
void fb_quant_q8_0(const float *src, void *dst, uint64_t n);
/* Bytes for n elements of a supported type (0 with an error otherwise, or
 * when n is not a whole number of blocks). */
fb_status fb_ggml_type_nbytes(uint32_t type, uint64_t n, uint64_t *out);

/* ---- writer -------------------------------------------------------------- */
typedef struct fb_gguf_writer fb_gguf_writer;

fb_status fb_gguf_writer_init(fb_gguf_writer **out);
void      fb_gguf_writer_free(fb_gguf_writer *w);
/* Metadata, written in call order. Keys must be unique. */
fb_status fb_gguf_writer_add_string(fb_gguf_writer *w, const char *key, const char *value);
fb_status fb_gguf_writer_add_u32(fb_gguf_writer *w, const char *key, uint32_t value);
fb_status fb_gguf_writer_add_i32(fb_gguf_writer *w, const char *key, int32_t value);
fb_status fb_gguf_writer_add_u64(fb_gguf_writer *w, const char *key, uint64_t value);
fb_status fb_gguf_writer_add_f32(fb_gguf_writer *w, const char *key, float value);
fb_status fb_gguf_writer_add_bool(fb_gguf_writer *w, const char *key, int value);
/* lens may be NULL (then strlen is used); strings may contain any bytes when lens is given. */
fb_status fb_gguf_writer_add_string_array(fb_gguf_writer *w, const char *key, const char *const *strs,
                                          const uint64_t *lens, uint64_t n);
fb_status fb_gguf_writer_add_f32_array(fb_gguf_writer *w, const char *key, const float *v, uint64_t n);
fb_status fb_gguf_writer_add_i32_array(fb_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* A tensor whose data is already encoded in `type` (F32, F16, BF16, Q8_0).
 * ne[0] is the row length (PyTorch [out, in] -> ne = {in, out}). The data
 * pointer must stay valid until fb_gguf_writer_write. */
fb_status fb_gguf_writer_add_tensor(fb_gguf_writer *w, const char *name, fb_ggml_type type, uint32_t n_dims,
                                    const uint64_t *ne, const void *data);
/* Same from f32 data, encoded into `type` now (the writer keeps the copy). */
fb_status fb_gguf_writer_add_tensor_f32(fb_gguf_writer *w, const char *name, fb_ggml_type type, uint32_t n_dims,
                                        const uint64_t *ne, const float *data);
/* Writes GGUF v3, alignment 32, atomically. The writer can be reused/freed after. */
fb_status fb_gguf_writer_write(fb_gguf_writer *w, const char *path);
#endif
