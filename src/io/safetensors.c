#include "io/safetensors.h"
#include "core/error.h"
#include "core/half.h"
#include "io/atomic_write.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *name; size_t size; } k_dtypes[FB_ST_DTYPE_COUNT] = {
    [FB_ST_BOOL] = {"BOOL", 1}, [FB_ST_U8] = {"U8", 1},    [FB_ST_I8] = {"I8", 1},   [FB_ST_I16] = {"I16", 2},
    [FB_ST_U16] = {"U16", 2},   [FB_ST_F16] = {"F16", 2},  [FB_ST_BF16] = {"BF16", 2}, [FB_ST_I32] = {"I32", 4},
    [FB_ST_U32] = {"U32", 4},   [FB_ST_F32] = {"F32", 4},  [FB_ST_I64] = {"I64", 8}, [FB_ST_U64] = {"U64", 8},
    [FB_ST_F64] = {"F64", 8},
};

const char *fb_st_dtype_name(fb_st_dtype t) { return (unsigned)t < FB_ST_DTYPE_COUNT ? k_dtypes[t].name : "?"; }
size_t fb_st_dtype_size(fb_st_dtype t) { return (unsigned)t < FB_ST_DTYPE_COUNT ? k_dtypes[t].size : 0; }

fb_status fb_st_dtype_from_name(const char *name, fb_st_dtype *out) {
    for (int i = 0; i < FB_ST_DTYPE_COUNT; i++)
        if (strcmp(name, k_dtypes[i].name) == 0) { *out = (fb_st_dtype)i; return FB_OK; }
    return fb_fail(FB_ERR_UNSUPPORTED, "safetensors dtype \"%s\" is not supported", name);
}

void fb_safetensors_close(fb_safetensors *st) {
    if (!st) return;
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    if (st->json_root) json_object_put((json_object *)st->json_root);
    fb_mapped_file_close(&st->file);
    memset(st, 0, sizeof *st);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const fb_st_tensor *)a)->name, ((const fb_st_tensor *)b)->name);
}
static int cmp_tensor_offset(const void *a, const void *b) {
    const fb_st_tensor *x = *(const fb_st_tensor *const *)a, *y = *(const fb_st_tensor *const *)b;
    if (x->file_offset != y->file_offset) return x->file_offset < y->file_offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* Non-negative JSON integer. */
static int json_u64(json_object *o, uint64_t *out) {
    if (!o || !json_object_is_type(o, json_type_int)) return 0;
    int64_t v = json_object_get_int64(o);
    if (v < 0) return 0;
    /* json-c clamps values beyond int64 to INT64_MAX; treat as too big but valid int */
    *out = (uint64_t)v;
    return 1;
}

static fb_status parse_tensor(fb_safetensors *st, const char *fname, const char *key, json_object *val,
                              uint64_t data_start, uint64_t data_size, fb_st_tensor *t) {
    if (!json_object_is_type(val, json_type_object))
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: header entry \"%s\" is not an object", fname, key);
    json_object *jd = NULL, *js = NULL, *jo = NULL;
    if (!json_object_object_get_ex(val, "dtype", &jd) || !json_object_is_type(jd, json_type_string))
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: tensor \"%s\" has no string \"dtype\"", fname, key);
    if (!json_object_object_get_ex(val, "shape", &js) || !json_object_is_type(js, json_type_array))
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: tensor \"%s\" has no array \"shape\"", fname, key);
    if (!json_object_object_get_ex(val, "data_offsets", &jo) || !json_object_is_type(jo, json_type_array) ||
        json_object_array_length(jo) != 2)
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: tensor \"%s\" has no [begin, end] \"data_offsets\"", fname, key);
    t->name = key;
    const char *dname = json_object_get_string(jd);
    int found = 0;
    for (int i = 0; i < FB_ST_DTYPE_COUNT; i++)
        if (strcmp(dname, k_dtypes[i].name) == 0) { t->dtype = (fb_st_dtype)i; found = 1; }
    if (!found)
        return fb_fail(FB_ERR_UNSUPPORTED, "%s: offset 8: tensor \"%s\" has unsupported dtype \"%s\"", fname, key, dname);
    size_t nd = json_object_array_length(js);
    if (nd > FB_ST_MAX_DIMS)
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: tensor \"%s\" has %zu dimensions (at most %d supported)", fname,
                       key, nd, FB_ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (!json_u64(json_object_array_get_idx(js, i), &d))
            return fb_fail(FB_ERR_FORMAT, "%s: offset 8: tensor \"%s\": shape[%zu] is not a non-negative integer",
                           fname, key, i);
        t->shape[i] = d;
        if (fb_mul_overflow_u64(numel, d, &numel))
            return fb_fail(FB_ERR_FORMAT, "%s: offset 8: tensor \"%s\": element count overflows", fname, key);
    }
    t->numel = numel;
    uint64_t nbytes, b, e;
    if (fb_mul_overflow_u64(numel, k_dtypes[t->dtype].size, &nbytes))
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: tensor \"%s\": byte size overflows", fname, key);
    if (!json_u64(json_object_array_get_idx(jo, 0), &b) || !json_u64(json_object_array_get_idx(jo, 1), &e))
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: tensor \"%s\": data_offsets are not non-negative integers", fname, key);
    if (b > e || e > data_size)
        return fb_fail(FB_ERR_FORMAT,
                       "%s: offset %llu: tensor \"%s\": data_offsets [%llu, %llu] outside the data buffer of %llu bytes",
                       fname, (unsigned long long)data_start, key, (unsigned long long)b, (unsigned long long)e,
                       (unsigned long long)data_size);
    if (e - b != nbytes)
        return fb_fail(FB_ERR_FORMAT,
                       "%s: offset %llu: tensor \"%s\": data_offsets span %llu bytes but shape and dtype %s need %llu",
                       fname, (unsigned long long)(data_start + b), key, (unsigned long long)(e - b),
                       k_dtypes[t->dtype].name, (unsigned long long)nbytes);
    t->nbytes = nbytes;
    t->file_offset = data_start + b;
    t->data = st->file.data ? st->file.data + t->file_offset : NULL;
    return FB_OK;
}

static fb_status parse(fb_safetensors *st) {
    const char *fname = st->file.name;
    fb_reader r;
    fb_reader_init(&r, st->file.data, st->file.size, fname);
    uint64_t hlen;
    FB_TRY(fb_reader_u64(&r, &hlen, "safetensors header length"));
    if (hlen > FB_ST_MAX_HEADER)
        return fb_fail(FB_ERR_FORMAT, "%s: offset 0: header length %llu exceeds the limit of %u bytes", fname,
                       (unsigned long long)hlen, FB_ST_MAX_HEADER);
    const uint8_t *hdr;
    FB_TRY(fb_reader_bytes(&r, hlen, &hdr, "safetensors JSON header"));
    if (hlen < 2 || hdr[0] != '{')
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: header does not start with '{'", fname);
    uint64_t data_start = 8 + hlen, data_size = st->file.size - data_start;

    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) return fb_fail(FB_ERR_OOM, "%s: out of memory", fname);
    json_object *root = json_tokener_parse_ex(tok, (const char *)hdr, (int)hlen);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t consumed = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        if (root) json_object_put(root);
        return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: JSON header does not parse: %s", fname,
                       (unsigned long long)(8 + consumed), json_tokener_error_desc(jerr));
    }
    st->json_root = root;
    for (uint64_t i = consumed; i < hlen; i++)
        if (hdr[i] != ' ' && hdr[i] != '\t' && hdr[i] != '\n' && hdr[i] != '\r')
            return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: unexpected bytes after the JSON header object", fname,
                           (unsigned long long)(8 + i));
    if (!json_object_is_type(root, json_type_object))
        return fb_fail(FB_ERR_FORMAT, "%s: offset 8: JSON header is not an object", fname);

    size_t n_entries = (size_t)json_object_object_length(root);
    st->tensors = calloc(n_entries ? n_entries : 1, sizeof *st->tensors);
    if (!st->tensors) return fb_fail(FB_ERR_OOM, "%s: out of memory", fname);
    json_object_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_object_is_type(val, json_type_object))
                return fb_fail(FB_ERR_FORMAT, "%s: offset 8: __metadata__ is not an object", fname);
            size_t nm = (size_t)json_object_object_length(val);
            st->meta_keys = calloc(nm ? nm : 1, sizeof *st->meta_keys);
            st->meta_values = calloc(nm ? nm : 1, sizeof *st->meta_values);
            if (!st->meta_keys || !st->meta_values) return fb_fail(FB_ERR_OOM, "%s: out of memory", fname);
            json_object_object_foreach(val, mk, mv) {
                if (!json_object_is_type(mv, json_type_string))
                    return fb_fail(FB_ERR_FORMAT, "%s: offset 8: __metadata__ value of \"%s\" is not a string", fname, mk);
                st->meta_keys[st->n_meta] = mk;
                st->meta_values[st->n_meta] = json_object_get_string(mv);
                st->n_meta++;
            }
            /* insertion sort by key: metadata maps are small */
            for (size_t i = 1; i < st->n_meta; i++)
                for (size_t j = i; j > 0 && strcmp(st->meta_keys[j - 1], st->meta_keys[j]) > 0; j--) {
                    const char *tk = st->meta_keys[j], *tv = st->meta_values[j];
                    st->meta_keys[j] = st->meta_keys[j - 1]; st->meta_values[j] = st->meta_values[j - 1];
                    st->meta_keys[j - 1] = tk; st->meta_values[j - 1] = tv;
                }
            continue;
        }
        FB_TRY(parse_tensor(st, fname, key, val, data_start, data_size, &st->tensors[st->n_tensors]));
        st->n_tensors++;
    }

    /* The data buffer must be covered exactly: no overlaps, no holes (spec). */
    const fb_st_tensor **by_off = malloc((st->n_tensors ? st->n_tensors : 1) * sizeof *by_off);
    if (!by_off) return fb_fail(FB_ERR_OOM, "%s: out of memory", fname);
    for (size_t i = 0; i < st->n_tensors; i++) by_off[i] = &st->tensors[i];
    qsort(by_off, st->n_tensors, sizeof *by_off, cmp_tensor_offset);
    uint64_t end = data_start;
    fb_status s = FB_OK;
    for (size_t i = 0; i < st->n_tensors && s == FB_OK; i++) {
        const fb_st_tensor *t = by_off[i];
        if (t->file_offset < end)
            s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: tensor \"%s\" overlaps the previous tensor (which ends at %llu)",
                        fname, (unsigned long long)t->file_offset, t->name, (unsigned long long)end);
        else if (t->file_offset > end)
            s = fb_fail(FB_ERR_FORMAT, "%s: offset %llu: hole of %llu bytes in the data buffer before tensor \"%s\"",
                        fname, (unsigned long long)end, (unsigned long long)(t->file_offset - end), t->name);
        end = t->file_offset + t->nbytes;
    }
    free(by_off);
    FB_TRY(s);
    if (end != st->file.size)
        return fb_fail(FB_ERR_FORMAT, "%s: offset %llu: %llu bytes after the last tensor are not described by the header",
                       fname, (unsigned long long)end, (unsigned long long)(st->file.size - end));
    qsort(st->tensors, st->n_tensors, sizeof *st->tensors, cmp_tensor_name);
    return FB_OK;
}

fb_status fb_safetensors_open(fb_safetensors *st, const char *path) {
    if (!st || !path) return fb_fail(FB_ERR_INVALID_ARG, "fb_safetensors_open: NULL argument");
    memset(st, 0, sizeof *st);
    FB_TRY(fb_mapped_file_open(&st->file, path));
    fb_status s = parse(st);
    if (s != FB_OK) fb_safetensors_close(st);
    return s;
}

fb_status fb_safetensors_open_buffer(fb_safetensors *st, const void *data, size_t size, const char *name) {
    if (!st) return fb_fail(FB_ERR_INVALID_ARG, "fb_safetensors_open_buffer: NULL argument");
    memset(st, 0, sizeof *st);
    FB_TRY(fb_mapped_file_from_buffer(&st->file, data, size, name));
    fb_status s = parse(st);
    if (s != FB_OK) fb_safetensors_close(st);
    return s;
}

const fb_st_tensor *fb_safetensors_find(const fb_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    size_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

fb_status fb_safetensors_get(const fb_safetensors *st, const char *name, const fb_st_tensor **out) {
    const fb_st_tensor *t = fb_safetensors_find(st, name);
    if (!t) return fb_fail(FB_ERR_FORMAT, "%s: tensor \"%s\" not found", st && st->file.name ? st->file.name : "?", name);
    *out = t;
    return FB_OK;
}

const char *fb_safetensors_meta(const fb_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

fb_status fb_st_tensor_to_f32(const fb_st_tensor *t, float *out) { return fb_st_tensor_range_f32(t, 0, t->numel, out); }

fb_status fb_st_tensor_range_f32(const fb_st_tensor *t, uint64_t start, uint64_t n, float *out) {
    if (start > t->numel || n > t->numel - start)
        return fb_fail(FB_ERR_INVALID_ARG, "tensor \"%s\": elements [%llu, +%llu) outside its %llu", t->name,
                       (unsigned long long)start, (unsigned long long)n, (unsigned long long)t->numel);
    const size_t es = k_dtypes[t->dtype].size;
    const uint8_t *p = (const uint8_t *)t->data + start * es;
    switch (t->dtype) {
    case FB_ST_F32: if (n) memcpy(out, p, n * 4); return FB_OK;
    case FB_ST_F16: for (uint64_t i = 0; i < n; i++) out[i] = fb_f16_to_f32(fb_load_u16le(p + 2 * i)); return FB_OK;
    case FB_ST_BF16: for (uint64_t i = 0; i < n; i++) out[i] = fb_bf16_to_f32(fb_load_u16le(p + 2 * i)); return FB_OK;
    case FB_ST_F64:
        for (uint64_t i = 0; i < n; i++) { double d; memcpy(&d, p + 8 * i, 8); out[i] = (float)d; }
        return FB_OK;
    default:
        return fb_fail(FB_ERR_UNSUPPORTED, "tensor \"%s\": dtype %s cannot be converted to F32", t->name,
                       fb_st_dtype_name(t->dtype));
    }
}

/* ---- writer ---------------------------------------------------------------- */

typedef struct { const fb_st_write_tensor *t; uint64_t nbytes; } wentry;

static int cmp_wentry(const void *a, const void *b) {
    const wentry *x = a, *y = b;
    size_t sx = k_dtypes[x->t->dtype].size, sy = k_dtypes[y->t->dtype].size;
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->t->name, y->t->name);
}

fb_status fb_safetensors_write(const char *path, const fb_st_write_tensor *tensors, size_t n_tensors,
                               const fb_st_kv *meta, size_t n_meta) {
    if (!path || (n_tensors && !tensors) || (n_meta && !meta))
        return fb_fail(FB_ERR_INVALID_ARG, "fb_safetensors_write: NULL argument");
    wentry *order = calloc(n_tensors ? n_tensors : 1, sizeof *order);
    json_object *root = json_object_new_object();
    fb_status s = FB_OK;
    if (!order || !root) { s = fb_fail(FB_ERR_OOM, "%s: out of memory", path); goto done; }
    for (size_t i = 0; i < n_tensors; i++) {
        const fb_st_write_tensor *t = &tensors[i];
        if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0 || (unsigned)t->dtype >= FB_ST_DTYPE_COUNT ||
            t->ndim < 0 || t->ndim > FB_ST_MAX_DIMS || (t->ndim && !t->shape)) {
            s = fb_fail(FB_ERR_INVALID_ARG, "%s: tensor %zu (\"%s\"): invalid name, dtype or shape", path, i,
                        t->name ? t->name : "(null)");
            goto done;
        }
        uint64_t n = 1;
        for (int d = 0; d < t->ndim; d++)
            if (fb_mul_overflow_u64(n, t->shape[d], &n)) { s = fb_fail(FB_ERR_SHAPE, "%s: tensor \"%s\": size overflows", path, t->name); goto done; }
        if (fb_mul_overflow_u64(n, k_dtypes[t->dtype].size, &order[i].nbytes) || (order[i].nbytes && !t->data)) {
            s = fb_fail(FB_ERR_INVALID_ARG, "%s: tensor \"%s\": no data or size overflows", path, t->name);
            goto done;
        }
        order[i].t = t;
    }
    qsort(order, n_tensors, sizeof *order, cmp_wentry);
    for (size_t i = 1; i < n_tensors; i++)
        if (strcmp(order[i - 1].t->name, order[i].t->name) == 0 && order[i - 1].t->dtype == order[i].t->dtype) {
            s = fb_fail(FB_ERR_INVALID_ARG, "%s: duplicate tensor name \"%s\"", path, order[i].t->name);
            goto done;
        }
    if (n_meta) {
        json_object *m = json_object_new_object();
        if (!m) { s = fb_fail(FB_ERR_OOM, "%s: out of memory", path); goto done; }
        json_object_object_add(root, "__metadata__", m);
        for (size_t i = 0; i < n_meta; i++) {
            if (!meta[i].key || !meta[i].value) { s = fb_fail(FB_ERR_INVALID_ARG, "%s: NULL metadata key or value", path); goto done; }
            json_object_object_add(m, meta[i].key, json_object_new_string(meta[i].value));
        }
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        const fb_st_write_tensor *t = order[i].t;
        if (json_object_object_get_ex(root, t->name, NULL)) {
            s = fb_fail(FB_ERR_INVALID_ARG, "%s: duplicate tensor name \"%s\"", path, t->name);
            goto done;
        }
        json_object *e = json_object_new_object(), *shape = json_object_new_array(), *offs = json_object_new_array();
        json_object_object_add(e, "dtype", json_object_new_string(k_dtypes[t->dtype].name));
        for (int d = 0; d < t->ndim; d++) json_object_array_add(shape, json_object_new_int64((int64_t)t->shape[d]));
        json_object_object_add(e, "shape", shape);
        json_object_array_add(offs, json_object_new_int64((int64_t)off));
        json_object_array_add(offs, json_object_new_int64((int64_t)(off + order[i].nbytes)));
        json_object_object_add(e, "data_offsets", offs);
        json_object_object_add(root, t->name, e);
        off += order[i].nbytes;
    }
    {
        size_t jlen = 0;
        const char *js = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &jlen);
        if (!js) { s = fb_fail(FB_ERR_OOM, "%s: out of memory", path); goto done; }
        size_t padded = (jlen + 7) & ~(size_t)7;
        uint8_t lenbuf[8];
        fb_store_u64le(lenbuf, (uint64_t)padded);
        fb_atomic_file af;
        if ((s = fb_atomic_open(&af, path)) != FB_OK) goto done;
        if ((s = fb_atomic_write(&af, lenbuf, 8)) != FB_OK) goto done;
        if ((s = fb_atomic_write(&af, js, jlen)) != FB_OK) goto done;
        if ((s = fb_atomic_write(&af, "        ", padded - jlen)) != FB_OK) goto done;
        for (size_t i = 0; i < n_tensors; i++)
            if ((s = fb_atomic_write(&af, order[i].t->data, (size_t)order[i].nbytes)) != FB_OK) goto done;
        s = fb_atomic_commit(&af);
    }
done:
    free(order);
    if (root) json_object_put(root);
    return s;
}
