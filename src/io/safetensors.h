/* safetensors reader and writer (https://github.com/huggingface/safetensors
 * format): u64 LE header length N, N bytes of JSON, then the data buffer.
 * The reader maps the file and points into it; see docs/FORMATS.md for the
 * validation rules and our checkpoint conventions. */
#ifndef FB_IO_SAFETENSORS_H
#define FB_IO_SAFETENSORS_H
#include "flashblock.h"
#include "io/mapped_file.h"
#include <stddef.h>
#include <stdint.h>

typedef enum fb_st_dtype {
    FB_ST_BOOL = 0, FB_ST_U8, FB_ST_I8, FB_ST_I16, FB_ST_U16, FB_ST_F16, FB_ST_BF16,
    FB_ST_I32, FB_ST_U32, FB_ST_F32, FB_ST_I64, FB_ST_U64, FB_ST_F64,
    FB_ST_DTYPE_COUNT
} fb_st_dtype;

#define FB_ST_MAX_DIMS 8
#define FB_ST_MAX_HEADER (100u * 1000u * 1000u) /* same limit as the reference implementation */

const char *fb_st_dtype_name(fb_st_dtype t);        /* "F32", ... */
size_t      fb_st_dtype_size(fb_st_dtype t);        /* bytes per element */
fb_status   fb_st_dtype_from_name(const char *name, fb_st_dtype *out);

typedef struct fb_st_tensor {
    const char *name;          /* NUL-terminated, owned by the fb_safetensors */
    fb_st_dtype dtype;
    int ndim;                  /* 0 = scalar */
    uint64_t shape[FB_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t nbytes;
    uint64_t file_offset;      /* absolute offset of the data in the file */
    const void *data;          /* into the mapping; may be unaligned for files
                                  written by other tools (ours are aligned) */
} fb_st_tensor;

typedef struct fb_safetensors {
    fb_mapped_file file;
    fb_st_tensor *tensors;     /* sorted by name */
    size_t n_tensors;
    const char **meta_keys;    /* __metadata__, sorted by key */
    const char **meta_values;
    size_t n_meta;
    void *json_root;           /* json-c object owning the strings above */
} fb_safetensors;

fb_status fb_safetensors_open(fb_safetensors *st, const char *path);
/* In-memory variant (the buffer must outlive st). */
fb_status fb_safetensors_open_buffer(fb_safetensors *st, const void *data, size_t size, const char *name);
void      fb_safetensors_close(fb_safetensors *st);

/* NULL when absent. */
const fb_st_tensor *fb_safetensors_find(const fb_safetensors *st, const char *name);
/* FB_ERR_FORMAT naming the file and tensor when absent. */
fb_status fb_safetensors_get(const fb_safetensors *st, const char *name, const fb_st_tensor **out);
/* __metadata__ value, NULL when absent. */
const char *fb_safetensors_meta(const fb_safetensors *st, const char *key);
/* Converts an F32/F16/BF16/F64 tensor into n = t->numel floats. */
fb_status fb_st_tensor_to_f32(const fb_st_tensor *t, float *out);
/* Elements [start, start + n) of it (the same conversion), into n floats. */
fb_status fb_st_tensor_range_f32(const fb_st_tensor *t, uint64_t start, uint64_t n, float *out);

/* ---- writer ---------------------------------------------------------------- */
typedef struct fb_st_write_tensor {
    const char *name;
    fb_st_dtype dtype;
    int ndim;
    const uint64_t *shape;     /* ndim entries (may be NULL when ndim == 0) */
    const void *data;          /* numel * dtype size bytes, little-endian */
} fb_st_write_tensor;

typedef struct fb_st_kv { const char *key; const char *value; } fb_st_kv;

/* Writes atomically. The JSON header is padded with spaces to a multiple of
 * 8 bytes; tensors are stored by descending element size, then by name, so
 * every tensor is naturally aligned in the file. Names must be unique and
 * not "__metadata__". */
fb_status fb_safetensors_write(const char *path, const fb_st_write_tensor *tensors, size_t n_tensors,
                               const fb_st_kv *meta, size_t n_meta);
#endif
