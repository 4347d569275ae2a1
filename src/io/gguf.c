#include "io/gguf.h"
#include "core/error.h"
#include "core/half.h"
#include "core/q8_0.h"
#include "io/atomic_write.h"

#include <stdlib.h>
#include <string.h>

#define MAX_KEY_LEN 65535u
#define MAX_TENSOR_NAME 256u

const char *fb_gguf_vtype_name(uint32_t t) {
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    return t < FB_GGUF_VTYPE_COUNT ? names[t] : "unknown";
}

const char *fb_ggml_type_name(uint32_t t) {
    static const char *names[] = {
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
        "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",
        "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8",
        "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

static int type_supported(uint32_t t) {
    return t == FB_GGML_F32 || t == FB_GGML_F16 || t == FB_GGML_BF16 || t == FB_GGML_Q8_0;
}

fb_status fb_ggml_type_nbytes(uint32_t type, uint64_t n, uint64_t *out) {
    uint64_t r;
    switch (type) {
    case FB_GGML_F32: if (fb_mul_overflow_u64(n, 4, &r)) goto ovf; break;
    case FB_GGML_F16:
    case FB_GGML_BF16: if (fb_mul_overflow_u64(n, 2, &r)) goto ovf; break;
    case FB_GGML_Q8_0:
        if (n % FB_Q8_0_BLOCK) return fb_fail(FB_ERR_SHAPE, "Q8_0 needs a multiple of 32 elements, got %llu", (unsigned long long)n);
        r = n / FB_Q8_0_BLOCK * FB_Q8_0_BLOCK_BYTES;
        break;
    default:
        return fb_fail(FB_ERR_UNSUPPORTED, "ggml type %s (%u) is not supported (F32, F16, BF16, Q8_0 are)",
                       fb_ggml_type_name(type), type);
    }
    *out = r;
    return FB_OK;
ovf:
    return fb_fail(FB_ERR_SHAPE, "tensor byte size overflows");
}

static size_t fixed_size(uint32_t t) {
    switch (t) {
    case FB_GGUF_U8: case FB_GGUF_I8: case FB_GGUF_BOOL: return 1;
    case FB_GGUF_U16: case FB_GGUF_I16: return 2;
    case FB_GGUF_U32: case FB_GGUF_I32: case FB_GGUF_F32: return 4;
    case FB_GGUF_U64: case FB_GGUF_I64: case FB_GGUF_F64: return 8;
    default: return 0;
    }
}

/* ---- parsing ---------------------------------------------------------------- */

typedef struct parse_ctx {
    fb_reader r;
    uint64_t **allocs;  /* element indexes to free */
    uint64_t n_allocs;
} parse_ctx;

/* Decode one fixed-size scalar at p. */
static void decode_scalar(uint32_t type, const uint8_t *p, fb_gguf_value *v) {
    v->type = (fb_gguf_vtype)type;
    switch (type) {
    case FB_GGUF_U8: v->v.u = p[0]; break;
    case FB_GGUF_I8: v->v.i = (int8_t)p[0]; break;
    case FB_GGUF_BOOL: v->v.u = p[0]; break;
    case FB_GGUF_U16: v->v.u = fb_load_u16le(p); break;
    case FB_GGUF_I16: v->v.i = (int16_t)fb_load_u16le(p); break;
    case FB_GGUF_U32: v->v.u = fb_load_u32le(p); break;
    case FB_GGUF_I32: v->v.i = (int32_t)fb_load_u32le(p); break;
    case FB_GGUF_F32: { uint32_t b = fb_load_u32le(p); float f; memcpy(&f, &b, 4); v->v.f = f; break; }
    case FB_GGUF_U64: v->v.u = fb_load_u64le(p); break;
    case FB_GGUF_I64: v->v.i = (int64_t)fb_load_u64le(p); break;
    case FB_GGUF_F64: { uint64_t b = fb_load_u64le(p); memcpy(&v->v.f, &b, 8); break; }
    default: break;
    }
}

static fb_status parse_value(parse_ctx *c, uint32_t type, int depth, int want_index, fb_gguf_value *out);

static fb_status parse_array(parse_ctx *c, int depth, int want_index, fb_gguf_value *out) {
    fb_reader *r = &c->r;
    uint64_t at = r->pos;
    if (depth >= FB_GGUF_MAX_ARRAY_DEPTH)
        return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: arrays nested deeper than %d", r->name, (unsigned long long)at,
                       FB_GGUF_MAX_ARRAY_DEPTH);
    uint32_t et;
    uint64_t count;
    FB_TRY(fb_reader_u32(r, &et, "array element type"));
    FB_TRY(fb_reader_u64(r, &count, "array length"));
    if (et >= FB_GGUF_VTYPE_COUNT)
        return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: unknown array element type %u", r->name, (unsigned long long)at, et);
    out->type = FB_GGUF_ARRAY;
    out->v.arr.elem_type = (fb_gguf_vtype)et;
    out->v.arr.count = count;
    out->v.arr.index = NULL;
    out->v.arr.data = r->data ? r->data + r->pos : NULL;
    size_t fs = fixed_size(et);
    uint64_t start = r->pos;
    if (fs) {
        uint64_t nb;
        if (fb_mul_overflow_u64(count, fs, &nb) || nb > fb_reader_remaining(r))
            return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: array of %llu %s values runs past the end of the file",
                           r->name, (unsigned long long)at, (unsigned long long)count, fb_gguf_vtype_name(et));
        if (et == FB_GGUF_BOOL)
            for (uint64_t i = 0; i < count; i++)
                if (r->data[r->pos + i] > 1)
                    return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: bool array element is %u (must be 0 or 1)", r->name,
                                   (unsigned long long)(r->pos + i), r->data[r->pos + i]);
        r->pos += nb;
    } else {
        uint64_t min_elem = et == FB_GGUF_STRING ? 8 : 12;
        if (count > fb_reader_remaining(r) / min_elem)
            return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: array of %llu %s values cannot fit in the %llu bytes left",
                           r->name, (unsigned long long)at, (unsigned long long)count, fb_gguf_vtype_name(et),
                           (unsigned long long)fb_reader_remaining(r));
        uint64_t *index = NULL;
        if (want_index && count) {
            index = malloc(count * sizeof *index);
            uint64_t **na = realloc(c->allocs, (c->n_allocs + 1) * sizeof *na);
            if (!index || !na) { free(index); if (na) c->allocs = na; return fb_fail(FB_ERR_OOM, "%s: out of memory", r->name); }
            c->allocs = na;
            c->allocs[c->n_allocs++] = index;
        }
        for (uint64_t i = 0; i < count; i++) {
            if (index) index[i] = r->pos - start;
            fb_gguf_value tmp;
            FB_TRY(parse_value(c, et, depth + 1, 0, &tmp));
        }
        out->v.arr.index = index;
    }
    out->v.arr.nbytes = r->pos - start;
    return FB_OK;
}

static fb_status parse_value(parse_ctx *c, uint32_t type, int depth, int want_index, fb_gguf_value *out) {
    fb_reader *r = &c->r;
    uint64_t at = r->pos;
    size_t fs = fixed_size(type);
    if (fs) {
        const uint8_t *p;
        FB_TRY(fb_reader_bytes(r, fs, &p, fb_gguf_vtype_name(type)));
        decode_scalar(type, p, out);
        if (type == FB_GGUF_BOOL && out->v.u > 1)
            return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: bool value is %u (must be 0 or 1)", r->name,
                           (unsigned long long)at, (unsigned)out->v.u);
        return FB_OK;
    }
    if (type == FB_GGUF_STRING) {
        out->type = FB_GGUF_STRING;
        return fb_reader_string_u64(r, UINT64_MAX, &out->v.str.ptr, &out->v.str.len, "string");
    }
    if (type == FB_GGUF_ARRAY) return parse_array(c, depth, want_index, out);
    return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: unknown metadata value type %u", r->name, (unsigned long long)at, type);
}

static int key_cmp(const char *a, uint64_t la, const char *b, uint64_t lb) {
    uint64_t n = la < lb ? la : lb;
    int c = n ? memcmp(a, b, (size_t)n) : 0;
    if (c) return c;
    return la < lb ? -1 : la > lb;
}

static _Thread_local const fb_gguf *tl_sort;
static int cmp_kv_idx(const void *a, const void *b) {
    const fb_gguf_kv *x = &tl_sort->kvs[*(const uint64_t *)a], *y = &tl_sort->kvs[*(const uint64_t *)b];
    return key_cmp(x->key, x->key_len, y->key, y->key_len);
}
static int cmp_tensor_idx(const void *a, const void *b) {
    return strcmp(tl_sort->tensors[*(const uint64_t *)a].name, tl_sort->tensors[*(const uint64_t *)b].name);
}
static int cmp_tensor_off(const void *a, const void *b) {
    const fb_gguf_tensor *x = &tl_sort->tensors[*(const uint64_t *)a], *y = &tl_sort->tensors[*(const uint64_t *)b];
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return 0;
}

void fb_gguf_close(fb_gguf *g) {
    if (!g) return;
    /* index arrays were registered in index_pool as a list of pointers */
    if (g->index_pool) {
        uint64_t **allocs = (uint64_t **)g->index_pool;
        for (uint64_t i = 0; allocs[i]; i++) free(allocs[i]);
        free(allocs);
    }
    free(g->kvs);
    free(g->tensors);
    free(g->kv_sorted);
    free(g->tensor_sorted);
    free(g->name_pool);
    fb_mapped_file_close(&g->file);
    memset(g, 0, sizeof *g);
}

static fb_status parse(fb_gguf *g, parse_ctx *c) {
    fb_reader *r = &c->r;
    const char *fname = g->file.name;
    fb_reader_init(r, g->file.data, g->file.size, fname);
    const uint8_t *magic;
    FB_TRY(fb_reader_bytes(r, 4, &magic, "GGUF magic"));
    if (memcmp(magic, "GGUF", 4) != 0)
        return fb_fail(FB_ERR_FORMAT, "%s: offset 0: not a GGUF file (magic %02x %02x %02x %02x)", fname, magic[0],
                       magic[1], magic[2], magic[3]);
    FB_TRY(fb_reader_u32(r, &g->version, "GGUF version"));
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return fb_fail(FB_ERR_UNSUPPORTED, "%s: offset 4: big-endian GGUF files are not supported", fname);
    if (g->version == 1)
        return fb_fail(FB_ERR_UNSUPPORTED, "%s: offset 4: GGUF version 1 is not supported (only 2 and 3)", fname);
    if (g->version != 2 && g->version != 3)
        return fb_fail(FB_ERR_FORMAT, "%s: offset 4: unknown GGUF version %u (2 and 3 are supported)", fname, g->version);
    FB_TRY(fb_reader_u64(r, &g->n_tensors, "tensor count"));
    FB_TRY(fb_reader_u64(r, &g->n_kv, "metadata count"));
    /* every kv needs >= 13 bytes, every tensor info >= 24: refuse counts the file cannot hold */
    if (g->n_kv > fb_reader_remaining(r) / 13)
        return fb_fail(FB_ERR_FORMAT, "%s: offset 16: metadata count %llu cannot fit in the %llu bytes left", fname,
                       (unsigned long long)g->n_kv, (unsigned long long)fb_reader_remaining(r));
    if (g->n_tensors > fb_reader_remaining(r) / 24)
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: tensor count %llu cannot fit in the %llu bytes left", fname,
                       (unsigned long long)g->n_tensors, (unsigned long long)fb_reader_remaining(r));
    g->kvs = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kvs);
    g->kv_sorted = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv_sorted);
    if (!g->kvs || !g->kv_sorted) return fb_fail(FB_ERR_OOM, "%s: out of memory", fname);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        fb_gguf_kv *kv = &g->kvs[i];
        uint64_t at = r->pos;
        FB_TRY(fb_reader_string_u64(r, MAX_KEY_LEN, &kv->key, &kv->key_len, "metadata key"));
        uint32_t type;
        FB_TRY(fb_reader_u32(r, &type, "metadata value type"));
        if (type >= FB_GGUF_VTYPE_COUNT)
            return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: key \"%.*s\" has unknown value type %u", fname,
                           (unsigned long long)at, (int)kv->key_len, kv->key, type);
        FB_TRY(parse_value(c, type, 0, 1, &kv->value));
        g->kv_sorted[i] = i;
    }
    tl_sort = g;
    qsort(g->kv_sorted, g->n_kv, sizeof *g->kv_sorted, cmp_kv_idx);
    for (uint64_t i = 1; i < g->n_kv; i++) {
        const fb_gguf_kv *a = &g->kvs[g->kv_sorted[i - 1]], *b = &g->kvs[g->kv_sorted[i]];
        if (key_cmp(a->key, a->key_len, b->key, b->key_len) == 0)
            return fb_fail(FB_ERR_FORMAT, "%s: duplicate metadata key \"%.*s\"", fname, (int)b->key_len, b->key);
    }
    g->alignment = FB_GGUF_DEFAULT_ALIGNMENT;
    const fb_gguf_kv *al = fb_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->value.type != FB_GGUF_U32)
            return fb_fail(FB_ERR_FORMAT, "%s: general.alignment has type %s (must be uint32)", fname,
                           fb_gguf_vtype_name(al->value.type));
        uint64_t a = al->value.v.u;
        if (a == 0 || (a & (a - 1)) != 0)
            return fb_fail(FB_ERR_FORMAT, "%s: general.alignment %llu is not a power of two", fname, (unsigned long long)a);
        g->alignment = (uint32_t)a;
    }

    /* tensor infos */
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    g->tensor_sorted = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensor_sorted);
    if (!g->tensors || !g->tensor_sorted) return fb_fail(FB_ERR_OOM, "%s: out of memory", fname);
    const char **raw_names = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *raw_names);
    if (!raw_names) return fb_fail(FB_ERR_OOM, "%s: out of memory", fname);
    uint64_t pool_size = 0;
    fb_status s = FB_OK;
    for (uint64_t i = 0; i < g->n_tensors && s == FB_OK; i++) {
        fb_gguf_tensor *t = &g->tensors[i];
        uint64_t at = r->pos, nlen;
        const char *nm;
        if ((s = fb_reader_string_u64(r, MAX_TENSOR_NAME, &nm, &nlen, "tensor name")) != FB_OK) break;
        if (memchr(nm, 0, (size_t)nlen)) { s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: tensor name contains a NUL byte", fname, (unsigned long long)at); break; }
        raw_names[i] = nm;
        t->name = NULL;
        t->row_bytes = nlen; /* temporarily: name length */
        pool_size += nlen + 1;
        if ((s = fb_reader_u32(r, &t->n_dims, "tensor n_dims")) != FB_OK) break;
        if (t->n_dims > FB_GGUF_MAX_DIMS) {
            s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: tensor \"%.*s\" has %u dimensions (at most %d)", fname,
                        (unsigned long long)at, (int)nlen, nm, t->n_dims, FB_GGUF_MAX_DIMS);
            break;
        }
        uint64_t numel = 1;
        for (int d = 0; d < FB_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims && s == FB_OK; d++) {
            if ((s = fb_reader_u64(r, &t->ne[d], "tensor dimension")) != FB_OK) break;
            if (t->ne[d] > (uint64_t)INT64_MAX || fb_mul_overflow_u64(numel, t->ne[d], &numel) || numel > (uint64_t)INT64_MAX)
                s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: tensor \"%.*s\": element count overflows", fname,
                            (unsigned long long)at, (int)nlen, nm);
        }
        if (s != FB_OK) break;
        t->numel = numel;
        uint32_t type;
        if ((s = fb_reader_u32(r, &type, "tensor type")) != FB_OK) break;
        if (!type_supported(type)) {
            if (strcmp(fb_ggml_type_name(type), "unknown") == 0)
                s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: tensor \"%.*s\" has unknown ggml type %u", fname,
                            (unsigned long long)at, (int)nlen, nm, type);
            else
                s = fb_fail(FB_ERR_UNSUPPORTED,
                            "%s: offset %llu: tensor \"%.*s\" has type %s (%u), which is not supported (F32, F16, BF16, Q8_0 are)",
                            fname, (unsigned long long)at, (int)nlen, nm, fb_ggml_type_name(type), type);
            break;
        }
        t->type = (fb_ggml_type)type;
        if (type == FB_GGML_Q8_0 && t->ne[0] % FB_Q8_0_BLOCK) {
            s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: Q8_0 tensor \"%.*s\" has row length %llu, not a multiple of 32",
                        fname, (unsigned long long)at, (int)nlen, nm, (unsigned long long)t->ne[0]);
            break;
        }
        if ((s = fb_ggml_type_nbytes(type, numel, &t->nbytes)) != FB_OK) break;
        if ((s = fb_reader_u64(r, &t->offset, "tensor data offset")) != FB_OK) break;
        if (t->offset % g->alignment) {
            s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: tensor \"%.*s\" data offset %llu is not a multiple of the alignment %u",
                        fname, (unsigned long long)at, (int)nlen, nm, (unsigned long long)t->offset, g->alignment);
            break;
        }
        g->tensor_sorted[i] = i;
    }
    if (s == FB_OK) {
        g->name_pool = malloc(pool_size ? pool_size : 1);
        if (!g->name_pool) s = fb_fail(FB_ERR_OOM, "%s: out of memory", fname);
    }
    if (s == FB_OK) {
        char *p = g->name_pool;
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            fb_gguf_tensor *t = &g->tensors[i];
            uint64_t nlen = t->row_bytes;
            if (nlen) memcpy(p, raw_names[i], (size_t)nlen);
            p[nlen] = '\0';
            t->name = p;
            p += nlen + 1;
        }
    }
    free(raw_names);
    FB_TRY(s);

    uint64_t data_off;
    if (fb_align_up_u64(r->pos, g->alignment, &data_off))
        return fb_fail(FB_ERR_FORMAT, "%s: data section offset overflows", fname);
    g->data_offset = data_off;
    uint64_t data_size = data_off <= g->file.size ? g->file.size - data_off : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        fb_gguf_tensor *t = &g->tensors[i];
        if (data_off > g->file.size || t->offset > data_size || t->nbytes > data_size - t->offset)
            return fb_fail(FB_ERR_FORMAT,
                           "%s: offset %llu: tensor \"%s\" (%llu bytes at data offset %llu) runs past the end of the file (%llu bytes)",
                           fname, (unsigned long long)(data_off + t->offset), t->name, (unsigned long long)t->nbytes,
                           (unsigned long long)t->offset, (unsigned long long)g->file.size);
        t->file_offset = data_off + t->offset;
        t->data = g->file.data + t->file_offset;
        FB_TRY(fb_ggml_type_nbytes(t->type, t->ne[0], &t->row_bytes));
        t->n_rows = t->ne[0] ? t->numel / t->ne[0] : 0;
    }
    tl_sort = g;
    qsort(g->tensor_sorted, g->n_tensors, sizeof *g->tensor_sorted, cmp_tensor_idx);
    for (uint64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(g->tensors[g->tensor_sorted[i - 1]].name, g->tensors[g->tensor_sorted[i]].name) == 0)
            return fb_fail(FB_ERR_FORMAT, "%s: duplicate tensor name \"%s\"", fname, g->tensors[g->tensor_sorted[i]].name);
    /* overlap check on a temporary order by offset */
    uint64_t *by_off = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *by_off);
    if (!by_off) return fb_fail(FB_ERR_OOM, "%s: out of memory", fname);
    for (uint64_t i = 0; i < g->n_tensors; i++) by_off[i] = i;
    tl_sort = g;
    qsort(by_off, g->n_tensors, sizeof *by_off, cmp_tensor_off);
    for (uint64_t i = 1; i < g->n_tensors && s == FB_OK; i++) {
        const fb_gguf_tensor *a = &g->tensors[by_off[i - 1]], *b = &g->tensors[by_off[i]];
        if (a->nbytes && b->nbytes && b->offset < a->offset + a->nbytes)
            s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: tensor \"%s\" overlaps tensor \"%s\"", fname,
                        (unsigned long long)b->file_offset, b->name, a->name);
    }
    free(by_off);
    return s;
}

static fb_status open_common(fb_gguf *g) {
    parse_ctx c;
    memset(&c, 0, sizeof c);
    fb_status s = parse(g, &c);
    /* keep the index allocations as a NULL-terminated list in index_pool */
    uint64_t **list = realloc(c.allocs, (c.n_allocs + 1) * sizeof *list);
    if (!list) {
        for (uint64_t i = 0; i < c.n_allocs; i++) free(c.allocs[i]);
        free(c.allocs);
        fb_gguf_close(g);
        return fb_fail(FB_ERR_OOM, "out of memory");
    }
    list[c.n_allocs] = NULL;
    g->index_pool = (uint64_t *)list;
    if (s != FB_OK) fb_gguf_close(g);
    return s;
}

fb_status fb_gguf_open(fb_gguf *g, const char *path) {
    if (!g || !path) return fb_fail(FB_ERR_INVALID_ARG, "fb_gguf_open: NULL argument");
    memset(g, 0, sizeof *g);
    FB_TRY(fb_mapped_file_open(&g->file, path));
    return open_common(g);
}

fb_status fb_gguf_open_buffer(fb_gguf *g, const void *data, size_t size, const char *name) {
    if (!g) return fb_fail(FB_ERR_INVALID_ARG, "fb_gguf_open_buffer: NULL argument");
    memset(g, 0, sizeof *g);
    FB_TRY(fb_mapped_file_from_buffer(&g->file, data, size, name));
    return open_common(g);
}

/* ---- lookups ------------------------------------------------------------------ */

const fb_gguf_kv *fb_gguf_find_kv(const fb_gguf *g, const char *key) {
    if (!g || !key || !g->kv_sorted) return NULL;
    uint64_t klen = strlen(key), lo = 0, hi = g->n_kv;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        const fb_gguf_kv *kv = &g->kvs[g->kv_sorted[mid]];
        int c = key_cmp(kv->key, kv->key_len, key, klen);
        if (c == 0) return kv;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

static fb_status need_kv(const fb_gguf *g, const char *key, const fb_gguf_kv **out) {
    *out = fb_gguf_find_kv(g, key);
    if (!*out) return fb_fail(FB_ERR_FORMAT, "%s: metadata key \"%s\" is missing", g->file.name, key);
    return FB_OK;
}

static int is_uint(fb_gguf_vtype t) { return t == FB_GGUF_U8 || t == FB_GGUF_U16 || t == FB_GGUF_U32 || t == FB_GGUF_U64; }
static int is_sint(fb_gguf_vtype t) { return t == FB_GGUF_I8 || t == FB_GGUF_I16 || t == FB_GGUF_I32 || t == FB_GGUF_I64; }

static fb_status wrong_type(const fb_gguf *g, const char *key, fb_gguf_vtype t, const char *want) {
    return fb_fail(FB_ERR_FORMAT, "%s: metadata key \"%s\" has type %s, expected %s", g->file.name, key,
                   fb_gguf_vtype_name(t), want);
}

fb_status fb_gguf_get_u64(const fb_gguf *g, const char *key, uint64_t *out) {
    const fb_gguf_kv *kv;
    FB_TRY(need_kv(g, key, &kv));
    if (is_uint(kv->value.type)) { *out = kv->value.v.u; return FB_OK; }
    if (is_sint(kv->value.type)) {
        if (kv->value.v.i < 0) return fb_fail(FB_ERR_FORMAT, "%s: metadata key \"%s\" is negative", g->file.name, key);
        *out = (uint64_t)kv->value.v.i;
        return FB_OK;
    }
    return wrong_type(g, key, kv->value.type, "an integer");
}

fb_status fb_gguf_get_u32(const fb_gguf *g, const char *key, uint32_t *out) {
    uint64_t v = 0;
    FB_TRY(fb_gguf_get_u64(g, key, &v));
    if (v > UINT32_MAX) return fb_fail(FB_ERR_FORMAT, "%s: metadata key \"%s\" = %llu does not fit in 32 bits", g->file.name, key, (unsigned long long)v);
    *out = (uint32_t)v;
    return FB_OK;
}

fb_status fb_gguf_get_i64(const fb_gguf *g, const char *key, int64_t *out) {
    const fb_gguf_kv *kv;
    FB_TRY(need_kv(g, key, &kv));
    if (is_sint(kv->value.type)) { *out = kv->value.v.i; return FB_OK; }
    if (is_uint(kv->value.type)) {
        if (kv->value.v.u > (uint64_t)INT64_MAX) return fb_fail(FB_ERR_FORMAT, "%s: metadata key \"%s\" is too large", g->file.name, key);
        *out = (int64_t)kv->value.v.u;
        return FB_OK;
    }
    return wrong_type(g, key, kv->value.type, "an integer");
}

fb_status fb_gguf_get_f32(const fb_gguf *g, const char *key, float *out) {
    const fb_gguf_kv *kv;
    FB_TRY(need_kv(g, key, &kv));
    if (kv->value.type != FB_GGUF_F32 && kv->value.type != FB_GGUF_F64) return wrong_type(g, key, kv->value.type, "float32");
    *out = (float)kv->value.v.f;
    return FB_OK;
}

fb_status fb_gguf_get_bool(const fb_gguf *g, const char *key, int *out) {
    const fb_gguf_kv *kv;
    FB_TRY(need_kv(g, key, &kv));
    if (kv->value.type != FB_GGUF_BOOL) return wrong_type(g, key, kv->value.type, "bool");
    *out = (int)kv->value.v.u;
    return FB_OK;
}

fb_status fb_gguf_get_string(const fb_gguf *g, const char *key, const char **ptr, uint64_t *len) {
    const fb_gguf_kv *kv;
    FB_TRY(need_kv(g, key, &kv));
    if (kv->value.type != FB_GGUF_STRING) return wrong_type(g, key, kv->value.type, "string");
    *ptr = kv->value.v.str.ptr;
    *len = kv->value.v.str.len;
    return FB_OK;
}

fb_status fb_gguf_get_array(const fb_gguf *g, const char *key, fb_gguf_vtype elem_type, const fb_gguf_value **out) {
    const fb_gguf_kv *kv;
    FB_TRY(need_kv(g, key, &kv));
    if (kv->value.type != FB_GGUF_ARRAY) return wrong_type(g, key, kv->value.type, "array");
    if (elem_type != FB_GGUF_VTYPE_COUNT && kv->value.v.arr.elem_type != elem_type)
        return fb_fail(FB_ERR_FORMAT, "%s: metadata key \"%s\" is an array of %s, expected %s", g->file.name, key,
                       fb_gguf_vtype_name(kv->value.v.arr.elem_type), fb_gguf_vtype_name(elem_type));
    *out = &kv->value;
    return FB_OK;
}

fb_status fb_gguf_array_get(const fb_gguf_value *arr, uint64_t i, fb_gguf_value *out) {
    if (!arr || arr->type != FB_GGUF_ARRAY) return fb_fail(FB_ERR_INVALID_ARG, "not an array value");
    if (i >= arr->v.arr.count)
        return fb_fail(FB_ERR_INVALID_ARG, "array index %llu out of range (%llu elements)", (unsigned long long)i,
                       (unsigned long long)arr->v.arr.count);
    uint32_t et = arr->v.arr.elem_type;
    size_t fs = fixed_size(et);
    if (fs) { decode_scalar(et, arr->v.arr.data + i * fs, out); return FB_OK; }
    /* variable-size elements: already validated by the parser */
    parse_ctx c;
    memset(&c, 0, sizeof c);
    fb_reader_init(&c.r, arr->v.arr.data, arr->v.arr.nbytes, "array");
    if (arr->v.arr.index) c.r.pos = arr->v.arr.index[i];
    else
        for (uint64_t k = 0; k < i; k++) { fb_gguf_value tmp; FB_TRY(parse_value(&c, et, 1, 0, &tmp)); }
    return parse_value(&c, et, 1, 0, out);
}

fb_status fb_gguf_array_string(const fb_gguf_value *arr, uint64_t i, const char **ptr, uint64_t *len) {
    fb_gguf_value v;
    memset(&v, 0, sizeof v);
    FB_TRY(fb_gguf_array_get(arr, i, &v));
    if (v.type != FB_GGUF_STRING) return fb_fail(FB_ERR_FORMAT, "array element is %s, expected string", fb_gguf_vtype_name(v.type));
    *ptr = v.v.str.ptr;
    *len = v.v.str.len;
    return FB_OK;
}

fb_status fb_gguf_array_f32(const fb_gguf_value *arr, uint64_t i, float *out) {
    fb_gguf_value v;
    memset(&v, 0, sizeof v);
    FB_TRY(fb_gguf_array_get(arr, i, &v));
    if (v.type != FB_GGUF_F32 && v.type != FB_GGUF_F64) return fb_fail(FB_ERR_FORMAT, "array element is %s, expected float32", fb_gguf_vtype_name(v.type));
    *out = (float)v.v.f;
    return FB_OK;
}

fb_status fb_gguf_array_i64(const fb_gguf_value *arr, uint64_t i, int64_t *out) {
    fb_gguf_value v;
    memset(&v, 0, sizeof v);
    FB_TRY(fb_gguf_array_get(arr, i, &v));
    if (is_sint(v.type)) *out = v.v.i;
    else if (is_uint(v.type) && v.v.u <= (uint64_t)INT64_MAX) *out = (int64_t)v.v.u;
    else return fb_fail(FB_ERR_FORMAT, "array element is %s, expected an integer", fb_gguf_vtype_name(v.type));
    return FB_OK;
}

const fb_gguf_tensor *fb_gguf_find_tensor(const fb_gguf *g, const char *name) {
    if (!g || !name || !g->tensor_sorted) return NULL;
    uint64_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        const fb_gguf_tensor *t = &g->tensors[g->tensor_sorted[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

fb_status fb_gguf_get_tensor(const fb_gguf *g, const char *name, const fb_gguf_tensor **out) {
    *out = fb_gguf_find_tensor(g, name);
    if (!*out) return fb_fail(FB_ERR_FORMAT, "%s: tensor \"%s\" not found", g && g->file.name ? g->file.name : "?", name);
    return FB_OK;
}

/* ---- (de)quantization ------------------------------------------------------------ */

void fb_dequant_f16(const void *src, float *dst, uint64_t n) {
    const uint8_t *p = src;
    for (uint64_t i = 0; i < n; i++) dst[i] = fb_f16_to_f32(fb_load_u16le(p + 2 * i));
}
void fb_dequant_bf16(const void *src, float *dst, uint64_t n) {
    const uint8_t *p = src;
    for (uint64_t i = 0; i < n; i++) dst[i] = fb_bf16_to_f32(fb_load_u16le(p + 2 * i));
}
void fb_dequant_q8_0(const void *src, float *dst, uint64_t n) { fb_q8_0_dequantize_row(dst, src, (int64_t)n); }
void fb_quant_f16(const float *src, void *dst, uint64_t n) {
    uint8_t *p = dst;
    for (uint64_t i = 0; i < n; i++) fb_store_u16le(p + 2 * i, fb_f32_to_f16(src[i]));
}
void fb_quant_bf16(const float *src, void *dst, uint64_t n) {
    uint8_t *p = dst;
    for (uint64_t i = 0; i < n; i++) fb_store_u16le(p + 2 * i, fb_f32_to_bf16(src[i]));
}
/* The project's one Q8_0 quantiser (core/q8_0.h: ggml's rounding). */
void fb_quant_q8_0(const float *src, void *dst, uint64_t n) { fb_q8_0_quantize_row(dst, src, (int64_t)n); }

static void decode_n(fb_ggml_type type, const uint8_t *src, float *dst, uint64_t n) {
    switch (type) {
    case FB_GGML_F32: if (n) memcpy(dst, src, (size_t)n * 4); break;
    case FB_GGML_F16: fb_dequant_f16(src, dst, n); break;
    case FB_GGML_BF16: fb_dequant_bf16(src, dst, n); break;
    case FB_GGML_Q8_0: fb_dequant_q8_0(src, dst, n); break;
    }
}

fb_status fb_gguf_tensor_row_f32(const fb_gguf_tensor *t, uint64_t row, float *out) {
    if (!t || !out) return fb_fail(FB_ERR_INVALID_ARG, "fb_gguf_tensor_row_f32: NULL argument");
    if (row >= t->n_rows)
        return fb_fail(FB_ERR_INVALID_ARG, "tensor \"%s\": row %llu out of range (%llu rows)", t->name,
                       (unsigned long long)row, (unsigned long long)t->n_rows);
    decode_n(t->type, (const uint8_t *)t->data + row * t->row_bytes, out, t->ne[0]);
    return FB_OK;
}

fb_status fb_gguf_tensor_to_f32(const fb_gguf_tensor *t, float *out) {
    if (!t || !out) return fb_fail(FB_ERR_INVALID_ARG, "fb_gguf_tensor_to_f32: NULL argument");
    if (t->numel) decode_n(t->type, t->data, out, t->numel);
    return FB_OK;
}

/* ---- writer ------------------------------------------------------------------------ */

typedef struct wtensor {
    char *name;
    fb_ggml_type type;
    uint32_t n_dims;
    uint64_t ne[FB_GGUF_MAX_DIMS];
    uint64_t nbytes;
    const void *data;
    void *owned;
} wtensor;

struct fb_gguf_writer {
    uint8_t *kv;            /* encoded metadata */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys;
    wtensor *tensors;
    uint64_t n_tensors, cap_tensors;
};

fb_status fb_gguf_writer_init(fb_gguf_writer **out) {
    if (!out) return fb_fail(FB_ERR_INVALID_ARG, "fb_gguf_writer_init: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out) return fb_fail(FB_ERR_OOM, "out of memory");
    return FB_OK;
}

void fb_gguf_writer_free(fb_gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (uint64_t i = 0; i < w->n_tensors; i++) { free(w->tensors[i].name); free(w->tensors[i].owned); }
    free(w->keys);
    free(w->tensors);
    free(w->kv);
    free(w);
}

static fb_status put(fb_gguf_writer *w, const void *p, size_t n) {
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 256;
        while (cap < w->kv_len + n) cap *= 2;
        uint8_t *nk = realloc(w->kv, cap);
        if (!nk) return fb_fail(FB_ERR_OOM, "out of memory");
        w->kv = nk;
        w->kv_cap = cap;
    }
    if (n) memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return FB_OK;
}
static fb_status put_u32(fb_gguf_writer *w, uint32_t v) { uint8_t b[4]; fb_store_u32le(b, v); return put(w, b, 4); }
static fb_status put_u64(fb_gguf_writer *w, uint64_t v) { uint8_t b[8]; fb_store_u64le(b, v); return put(w, b, 8); }
static fb_status put_str(fb_gguf_writer *w, const char *s, uint64_t n) { FB_TRY(put_u64(w, n)); return put(w, s, (size_t)n); }

static fb_status begin_kv(fb_gguf_writer *w, const char *key, uint32_t type) {
    if (!w || !key || !*key) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: empty key");
    size_t kl = strlen(key);
    if (kl > MAX_KEY_LEN) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: key too long");
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: duplicate key \"%s\"", key);
    char **nk = realloc(w->keys, (w->n_kv + 1) * sizeof *nk);
    if (!nk) return fb_fail(FB_ERR_OOM, "out of memory");
    w->keys = nk;
    w->keys[w->n_kv] = malloc(kl + 1);
    if (!w->keys[w->n_kv]) return fb_fail(FB_ERR_OOM, "out of memory");
    memcpy(w->keys[w->n_kv], key, kl + 1);
    w->n_kv++;
    FB_TRY(put_str(w, key, kl));
    return put_u32(w, type);
}

fb_status fb_gguf_writer_add_string(fb_gguf_writer *w, const char *key, const char *value) {
    if (!value) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: NULL string");
    FB_TRY(begin_kv(w, key, FB_GGUF_STRING));
    return put_str(w, value, strlen(value));
}
fb_status fb_gguf_writer_add_u32(fb_gguf_writer *w, const char *key, uint32_t value) {
    FB_TRY(begin_kv(w, key, FB_GGUF_U32));
    return put_u32(w, value);
}
fb_status fb_gguf_writer_add_i32(fb_gguf_writer *w, const char *key, int32_t value) {
    FB_TRY(begin_kv(w, key, FB_GGUF_I32));
    return put_u32(w, (uint32_t)value);
}
fb_status fb_gguf_writer_add_u64(fb_gguf_writer *w, const char *key, uint64_t value) {
    FB_TRY(begin_kv(w, key, FB_GGUF_U64));
    return put_u64(w, value);
}
fb_status fb_gguf_writer_add_f32(fb_gguf_writer *w, const char *key, float value) {
    uint32_t b;
    memcpy(&b, &value, 4);
    FB_TRY(begin_kv(w, key, FB_GGUF_F32));
    return put_u32(w, b);
}
fb_status fb_gguf_writer_add_bool(fb_gguf_writer *w, const char *key, int value) {
    uint8_t b = value ? 1 : 0;
    FB_TRY(begin_kv(w, key, FB_GGUF_BOOL));
    return put(w, &b, 1);
}
fb_status fb_gguf_writer_add_string_array(fb_gguf_writer *w, const char *key, const char *const *strs,
                                          const uint64_t *lens, uint64_t n) {
    if (n && !strs) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: NULL array");
    FB_TRY(begin_kv(w, key, FB_GGUF_ARRAY));
    FB_TRY(put_u32(w, FB_GGUF_STRING));
    FB_TRY(put_u64(w, n));
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: NULL string in array");
        FB_TRY(put_str(w, strs[i], lens ? lens[i] : strlen(strs[i])));
    }
    return FB_OK;
}
fb_status fb_gguf_writer_add_f32_array(fb_gguf_writer *w, const char *key, const float *v, uint64_t n) {
    if (n && !v) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: NULL array");
    FB_TRY(begin_kv(w, key, FB_GGUF_ARRAY));
    FB_TRY(put_u32(w, FB_GGUF_F32));
    FB_TRY(put_u64(w, n));
    for (uint64_t i = 0; i < n; i++) { uint32_t b; memcpy(&b, &v[i], 4); FB_TRY(put_u32(w, b)); }
    return FB_OK;
}
fb_status fb_gguf_writer_add_i32_array(fb_gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    if (n && !v) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: NULL array");
    FB_TRY(begin_kv(w, key, FB_GGUF_ARRAY));
    FB_TRY(put_u32(w, FB_GGUF_I32));
    FB_TRY(put_u64(w, n));
    for (uint64_t i = 0; i < n; i++) FB_TRY(put_u32(w, (uint32_t)v[i]));
    return FB_OK;
}

static fb_status add_tensor_common(fb_gguf_writer *w, const char *name, fb_ggml_type type, uint32_t n_dims,
                                   const uint64_t *ne, wtensor **out) {
    if (!w || !name || !*name || (n_dims && !ne) || n_dims > FB_GGUF_MAX_DIMS)
        return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: bad tensor arguments for \"%s\"", name ? name : "(null)");
    size_t nl = strlen(name);
    if (nl > MAX_TENSOR_NAME) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: tensor name \"%s\" too long", name);
    if (!type_supported(type)) return fb_fail(FB_ERR_UNSUPPORTED, "gguf writer: tensor type %s not supported", fb_ggml_type_name(type));
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: duplicate tensor \"%s\"", name);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        if (fb_mul_overflow_u64(numel, ne[d], &numel)) return fb_fail(FB_ERR_SHAPE, "gguf writer: tensor \"%s\" too large", name);
    if (type == FB_GGML_Q8_0 && (n_dims == 0 || ne[0] % FB_Q8_0_BLOCK))
        return fb_fail(FB_ERR_SHAPE, "gguf writer: Q8_0 tensor \"%s\" needs a row length that is a multiple of 32", name);
    uint64_t nbytes;
    FB_TRY(fb_ggml_type_nbytes(type, numel, &nbytes));
    if (w->n_tensors == w->cap_tensors) {
        uint64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        wtensor *nt = realloc(w->tensors, cap * sizeof *nt);
        if (!nt) return fb_fail(FB_ERR_OOM, "out of memory");
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = malloc(nl + 1);
    if (!t->name) return fb_fail(FB_ERR_OOM, "out of memory");
    memcpy(t->name, name, nl + 1);
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < FB_GGUF_MAX_DIMS; d++) t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t->nbytes = nbytes;
    w->n_tensors++;
    *out = t;
    return FB_OK;
}

fb_status fb_gguf_writer_add_tensor(fb_gguf_writer *w, const char *name, fb_ggml_type type, uint32_t n_dims,
                                    const uint64_t *ne, const void *data) {
    wtensor *t = NULL;
    FB_TRY(add_tensor_common(w, name, type, n_dims, ne, &t));
    if (t->nbytes && !data) {
        free(t->name);
        w->n_tensors--;
        return fb_fail(FB_ERR_INVALID_ARG, "gguf writer: tensor \"%s\" has no data", name);
    }
    t->data = data;
    return FB_OK;
}

fb_status fb_gguf_writer_add_tensor_f32(fb_gguf_writer *w, const char *name, fb_ggml_type type, uint32_t n_dims,
                                        const uint64_t *ne, const float *data) {
    wtensor *t = NULL;
    FB_TRY(add_tensor_common(w, name, type, n_dims, ne, &t));
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; d++) numel *= ne[d];
    if (t->nbytes) {
        if (!data || t->nbytes > SIZE_MAX || !(t->owned = malloc((size_t)t->nbytes))) {
            free(t->name);
            w->n_tensors--;
            return data ? fb_fail(FB_ERR_OOM, "out of memory") : fb_fail(FB_ERR_INVALID_ARG, "gguf writer: NULL data");
        }
        switch (type) {
        case FB_GGML_F32: memcpy(t->owned, data, (size_t)t->nbytes); break;
        case FB_GGML_F16: fb_quant_f16(data, t->owned, numel); break;
        case FB_GGML_BF16: fb_quant_bf16(data, t->owned, numel); break;
        case FB_GGML_Q8_0: fb_quant_q8_0(data, t->owned, numel); break;
        }
    }
    t->data = t->owned;
    return FB_OK;
}

fb_status fb_gguf_writer_write(fb_gguf_writer *w, const char *path) {
    if (!w || !path) return fb_fail(FB_ERR_INVALID_ARG, "fb_gguf_writer_write: NULL argument");
    const uint64_t align = FB_GGUF_DEFAULT_ALIGNMENT;
    /* header + kv + tensor infos, then padding, then data */
    uint64_t info_len = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++) info_len += 8 + strlen(w->tensors[i].name) + 4 + 8ull * w->tensors[i].n_dims + 4 + 8;
    uint64_t head_len = 4 + 4 + 8 + 8 + w->kv_len + info_len;
    uint64_t data_start = (head_len + align - 1) / align * align;
    fb_atomic_file af;
    FB_TRY(fb_atomic_open(&af, path));
    uint8_t b[8];
    fb_status s = fb_atomic_write(&af, "GGUF", 4);
    if (s == FB_OK) { fb_store_u32le(b, 3); s = fb_atomic_write(&af, b, 4); }
    if (s == FB_OK) { fb_store_u64le(b, w->n_tensors); s = fb_atomic_write(&af, b, 8); }
    if (s == FB_OK) { fb_store_u64le(b, w->n_kv); s = fb_atomic_write(&af, b, 8); }
    if (s == FB_OK) s = fb_atomic_write(&af, w->kv, w->kv_len);
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_tensors && s == FB_OK; i++) {
        const wtensor *t = &w->tensors[i];
        size_t nl = strlen(t->name);
        fb_store_u64le(b, nl);
        if ((s = fb_atomic_write(&af, b, 8)) != FB_OK) break;
        if ((s = fb_atomic_write(&af, t->name, nl)) != FB_OK) break;
        fb_store_u32le(b, t->n_dims);
        if ((s = fb_atomic_write(&af, b, 4)) != FB_OK) break;
        for (uint32_t d = 0; d < t->n_dims && s == FB_OK; d++) { fb_store_u64le(b, t->ne[d]); s = fb_atomic_write(&af, b, 8); }
        if (s != FB_OK) break;
        fb_store_u32le(b, (uint32_t)t->type);
        if ((s = fb_atomic_write(&af, b, 4)) != FB_OK) break;
        fb_store_u64le(b, off);
        if ((s = fb_atomic_write(&af, b, 8)) != FB_OK) break;
        off += (t->nbytes + align - 1) / align * align;
    }
    if (s == FB_OK) s = fb_atomic_write_zeros(&af, (size_t)(data_start - head_len));
    for (uint64_t i = 0; i < w->n_tensors && s == FB_OK; i++) {
        const wtensor *t = &w->tensors[i];
        if ((s = fb_atomic_write(&af, t->data, (size_t)t->nbytes)) != FB_OK) break;
        uint64_t pad = (align - t->nbytes % align) % align;
        s = fb_atomic_write_zeros(&af, (size_t)pad);
    }
    if (s != FB_OK) { fb_atomic_abort(&af); return s; }
    return fb_atomic_commit(&af);
}
