/* GGUF: writer/reader round trip, every metadata type (hand-built v2 file
 * with nested arrays), dequantization, and hostile headers. */
#include "core/error.h"
#include "io/gguf.h"
#include "core/half.h"
#include "core/q8_0.h"
#include "io_test_common.h"
#include <math.h>

static void gstr(io_buf *b, const char *s) { io_put_u64(b, strlen(s)); io_put(b, s, strlen(s)); }


static fb_status open_buf(const io_buf *b, fb_gguf *g) { return fb_gguf_open_buffer(g, b->p, b->n, "lie.gguf"); }

static void expect_fail(const io_buf *b, fb_status want, const char *needle, const char *what) {
    fb_gguf g;
    fb_status s = open_buf(b, &g);
    FB_CHECK(s != FB_OK, "%s: accepted", what);
    if (s == FB_OK) { fb_gguf_close(&g); return; }
    if (want != FB_OK) FB_CHECK(s == want, "%s: status %s (%s)", what, fb_status_string(s), fb_last_error());
    FB_CHECK(strstr(fb_last_error(), "lie.gguf") != NULL, "%s: message lacks the file: %s", what, fb_last_error());
    if (needle) FB_CHECK(strstr(fb_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, fb_last_error(), needle);
}

/* A small valid file: 1 kv (general.architecture), given tensors (name, type, ne0, ne1, offset). */
typedef struct { const char *name; uint32_t type; uint64_t ne0, ne1, offset; } tinfo;
static void build(io_buf *b, uint32_t version, const tinfo *ts, int nt, uint64_t data_bytes, int extra_kv) {
    b->n = 0;
    io_put(b, "GGUF", 4);
    io_put_u32(b, version);
    io_put_u64(b, (uint64_t)nt);
    io_put_u64(b, 1 + (uint64_t)extra_kv);
    gstr(b, "general.architecture"); io_put_u32(b, FB_GGUF_STRING); gstr(b, "llama");
    for (int i = 0; i < nt; i++) {
        gstr(b, ts[i].name);
        io_put_u32(b, 2);
        io_put_u64(b, ts[i].ne0);
        io_put_u64(b, ts[i].ne1);
        io_put_u32(b, ts[i].type);
        io_put_u64(b, ts[i].offset);
    }
    (void)extra_kv;
    io_put_zeros(b, (32 - b->n % 32) % 32);
    io_put_zeros(b, data_bytes);
}

static void test_roundtrip(void) {
    const char *path = io_tmp_path("rt.gguf");
    fb_gguf_writer *w;
    FB_CHECK(fb_gguf_writer_init(&w) == FB_OK, "init");
    const char *toks[] = {"<unk>", "<s>", "</s>", " the", "\xe2\x96\x81x", ""};
    float scores[] = {0, 0, 0, -1.5f, -2.25f, -3};
    int32_t types[] = {2, 3, 3, 1, 1, 1};
    FB_CHECK(fb_gguf_writer_add_string(w, "general.architecture", "llama") == FB_OK, "kv");
    fb_gguf_writer_add_u32(w, "llama.context_length", 256);
    fb_gguf_writer_add_u32(w, "llama.embedding_length", 64);
    fb_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    fb_gguf_writer_add_bool(w, "flashblock.tied", 1);
    fb_gguf_writer_add_i32(w, "flashblock.neg", -7);
    fb_gguf_writer_add_u64(w, "flashblock.big", 1ull << 40);
    fb_gguf_writer_add_string(w, "tokenizer.ggml.model", "llama");
    fb_gguf_writer_add_string_array(w, "tokenizer.ggml.tokens", toks, NULL, 6);
    fb_gguf_writer_add_f32_array(w, "tokenizer.ggml.scores", scores, 6);
    fb_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", types, 6);
    FB_CHECK(fb_gguf_writer_add_u32(w, "llama.context_length", 1) == FB_ERR_INVALID_ARG, "duplicate key refused");
    fb_test_rng r;
    fb_test_rng_seed(&r, 11);
    float a[3 * 64], e[5 * 7], v[7];
    fb_test_fill_normal(&r, a, 3 * 64, 1.0f);
    fb_test_fill_normal(&r, e, 35, 1.0f);
    fb_test_fill_normal(&r, v, 7, 1.0f);
    uint64_t ne_a[2] = {64, 3}, ne_e[2] = {7, 5}, ne_v[1] = {7}, ne_bad[2] = {33, 2};
    FB_CHECK(fb_gguf_writer_add_tensor(w, "token_embd.weight", FB_GGML_F32, 2, ne_e, e) == FB_OK, "f32 tensor");
    FB_CHECK(fb_gguf_writer_add_tensor_f32(w, "blk.0.attn_q.weight", FB_GGML_Q8_0, 2, ne_a, a) == FB_OK, "q8 tensor");
    FB_CHECK(fb_gguf_writer_add_tensor_f32(w, "blk.0.attn_k.weight", FB_GGML_F16, 2, ne_a, a) == FB_OK, "f16 tensor");
    FB_CHECK(fb_gguf_writer_add_tensor_f32(w, "blk.0.attn_v.weight", FB_GGML_BF16, 2, ne_a, a) == FB_OK, "bf16 tensor");
    FB_CHECK(fb_gguf_writer_add_tensor_f32(w, "output_norm.weight", FB_GGML_F32, 1, ne_v, v) == FB_OK, "vector");
    FB_CHECK(fb_gguf_writer_add_tensor_f32(w, "bad", FB_GGML_Q8_0, 2, ne_bad, a) == FB_ERR_SHAPE, "q8 row %% 32 refused");
    FB_CHECK(fb_gguf_writer_add_tensor(w, "output_norm.weight", FB_GGML_F32, 1, ne_v, v) == FB_ERR_INVALID_ARG, "dup tensor refused");
    FB_CHECK(fb_gguf_writer_write(w, path) == FB_OK, "write: %s", fb_last_error());
    fb_gguf_writer_free(w);

    fb_gguf g;
    fb_status s = fb_gguf_open(&g, path);
    FB_CHECK(s == FB_OK, "open: %s", fb_last_error());
    if (s != FB_OK) return;
    FB_CHECK(g.version == 3 && g.alignment == 32 && g.n_kv == 11 && g.n_tensors == 5 && g.data_offset % 32 == 0, "header");
    uint32_t u; float f; int bo; int64_t i; uint64_t u64; const char *sp; uint64_t sl;
    FB_CHECK(fb_gguf_get_u32(&g, "llama.context_length", &u) == FB_OK && u == 256, "u32");
    FB_CHECK(fb_gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &f) == FB_OK && f == 1e-5f, "f32");
    FB_CHECK(fb_gguf_get_bool(&g, "flashblock.tied", &bo) == FB_OK && bo == 1, "bool");
    FB_CHECK(fb_gguf_get_i64(&g, "flashblock.neg", &i) == FB_OK && i == -7, "i32");
    FB_CHECK(fb_gguf_get_u32(&g, "flashblock.neg", &u) == FB_ERR_FORMAT, "negative as u32");
    FB_CHECK(fb_gguf_get_u64(&g, "flashblock.big", &u64) == FB_OK && u64 == 1ull << 40, "u64");
    FB_CHECK(fb_gguf_get_u32(&g, "flashblock.big", &u) == FB_ERR_FORMAT && strstr(fb_last_error(), "32 bits"), "u64 too big for u32");
    FB_CHECK(fb_gguf_get_string(&g, "general.architecture", &sp, &sl) == FB_OK && sl == 5 && !memcmp(sp, "llama", 5), "string");
    FB_CHECK(fb_gguf_get_u32(&g, "general.architecture", &u) == FB_ERR_FORMAT && strstr(fb_last_error(), "type string"), "type mismatch message: %s", fb_last_error());
    FB_CHECK(fb_gguf_get_u32(&g, "llama.block_count", &u) == FB_ERR_FORMAT && strstr(fb_last_error(), "llama.block_count"), "missing key message");
    const fb_gguf_value *arr;
    FB_CHECK(fb_gguf_get_array(&g, "tokenizer.ggml.tokens", FB_GGUF_STRING, &arr) == FB_OK && arr->v.arr.count == 6, "tokens");
    for (uint64_t k = 0; k < 6; k++) {
        FB_CHECK(fb_gguf_array_string(arr, k, &sp, &sl) == FB_OK && sl == strlen(toks[k]) && !memcmp(sp, toks[k], sl), "token %llu", (unsigned long long)k);
    }
    FB_CHECK(fb_gguf_array_string(arr, 6, &sp, &sl) == FB_ERR_INVALID_ARG, "index bound");
    FB_CHECK(fb_gguf_get_array(&g, "tokenizer.ggml.tokens", FB_GGUF_F32, &arr) == FB_ERR_FORMAT, "elem type mismatch");
    FB_CHECK(fb_gguf_get_array(&g, "tokenizer.ggml.scores", FB_GGUF_F32, &arr) == FB_OK, "scores");
    for (uint64_t k = 0; k < 6; k++) FB_CHECK(fb_gguf_array_f32(arr, k, &f) == FB_OK && f == scores[k], "score %llu", (unsigned long long)k);
    FB_CHECK(fb_gguf_get_array(&g, "tokenizer.ggml.token_type", FB_GGUF_I32, &arr) == FB_OK, "types");
    for (uint64_t k = 0; k < 6; k++) FB_CHECK(fb_gguf_array_i64(arr, k, &i) == FB_OK && i == types[k], "type %llu", (unsigned long long)k);

    const fb_gguf_tensor *t;
    float row[64];
    FB_CHECK(fb_gguf_get_tensor(&g, "token_embd.weight", &t) == FB_OK && t->type == FB_GGML_F32 && t->ne[0] == 7 && t->ne[1] == 5 && t->n_rows == 5, "emb info");
    FB_CHECK(fb_gguf_tensor_row_f32(t, 4, row) == FB_OK && !memcmp(row, e + 28, 28), "emb row");
    FB_CHECK(fb_gguf_tensor_row_f32(t, 5, row) == FB_ERR_INVALID_ARG, "row bound");
    FB_CHECK(fb_gguf_get_tensor(&g, "blk.0.attn_q.weight", &t) == FB_OK && t->type == FB_GGML_Q8_0 && t->nbytes == 3 * 2 * 34 && t->row_bytes == 68, "q8 info");
    double maxerr = 0;
    for (int rr = 0; rr < 3; rr++) {
        fb_gguf_tensor_row_f32(t, (uint64_t)rr, row);
        for (int c = 0; c < 64; c++) maxerr = fmax(maxerr, fabs(row[c] - a[rr * 64 + c]));
    }
    FB_CHECK(maxerr < 0.03, "q8 error %g", maxerr);
    FB_CHECK(fb_gguf_get_tensor(&g, "blk.0.attn_k.weight", &t) == FB_OK && t->type == FB_GGML_F16, "f16 info");
    fb_gguf_tensor_row_f32(t, 2, row);
    FB_CHECK(row[10] == fb_f16_to_f32(fb_f32_to_f16(a[138])), "f16 value");
    FB_CHECK(fb_gguf_get_tensor(&g, "blk.0.attn_v.weight", &t) == FB_OK && t->type == FB_GGML_BF16, "bf16 info");
    float all[3 * 64];
    fb_gguf_tensor_to_f32(t, all);
    FB_CHECK(all[100] == fb_bf16_to_f32(fb_f32_to_bf16(a[100])), "bf16 value");
    FB_CHECK(fb_gguf_get_tensor(&g, "output_norm.weight", &t) == FB_OK && t->n_dims == 1 && t->ne[1] == 1 && !memcmp(t->data, v, 28), "vector");
    for (uint64_t k = 0; k < g.n_tensors; k++) FB_CHECK(g.tensors[k].file_offset % 32 == 0, "tensor %llu aligned", (unsigned long long)k);
    FB_CHECK(fb_gguf_get_tensor(&g, "nope", &t) == FB_ERR_FORMAT, "missing tensor");
    fb_gguf_close(&g);
}

/* Every metadata type, nested arrays, v2, custom alignment. */
static void test_all_types(void) {
    io_buf b = {0};
    io_put(&b, "GGUF", 4);
    io_put_u32(&b, 2);
    io_put_u64(&b, 1);
    io_put_u64(&b, 15);
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000; double f64 = 2.5;
    gstr(&b, "t.u8"); io_put_u32(&b, FB_GGUF_U8); io_put(&b, &u8, 1);
    gstr(&b, "t.i8"); io_put_u32(&b, FB_GGUF_I8); io_put(&b, &i8, 1);
    gstr(&b, "t.u16"); io_put_u32(&b, FB_GGUF_U16); io_put(&b, &u16, 2);
    gstr(&b, "t.i16"); io_put_u32(&b, FB_GGUF_I16); io_put(&b, &i16, 2);
    gstr(&b, "t.u32"); io_put_u32(&b, FB_GGUF_U32); io_put_u32(&b, 4000000000u);
    gstr(&b, "t.i32"); io_put_u32(&b, FB_GGUF_I32); io_put_i32(&b, -2000000000);
    gstr(&b, "t.f32"); io_put_u32(&b, FB_GGUF_F32); { float x = 0.75f; io_put(&b, &x, 4); }
    gstr(&b, "t.bool"); io_put_u32(&b, FB_GGUF_BOOL); { uint8_t x = 0; io_put(&b, &x, 1); }
    gstr(&b, "t.str"); io_put_u32(&b, FB_GGUF_STRING); gstr(&b, "hello");
    gstr(&b, "t.u64"); io_put_u32(&b, FB_GGUF_U64); io_put_u64(&b, UINT64_MAX);
    gstr(&b, "t.i64"); io_put_u32(&b, FB_GGUF_I64); io_put_u64(&b, (uint64_t)INT64_MIN);
    gstr(&b, "t.f64"); io_put_u32(&b, FB_GGUF_F64); io_put(&b, &f64, 8);
    /* [[1,2],[],[3]] of u16 */
    gstr(&b, "t.nested"); io_put_u32(&b, FB_GGUF_ARRAY); io_put_u32(&b, FB_GGUF_ARRAY); io_put_u64(&b, 3);
    io_put_u32(&b, FB_GGUF_U16); io_put_u64(&b, 2); u16 = 1; io_put(&b, &u16, 2); u16 = 2; io_put(&b, &u16, 2);
    io_put_u32(&b, FB_GGUF_U16); io_put_u64(&b, 0);
    io_put_u32(&b, FB_GGUF_U16); io_put_u64(&b, 1); u16 = 3; io_put(&b, &u16, 2);
    /* [["a","bc"],["d"]] */
    gstr(&b, "t.merges2"); io_put_u32(&b, FB_GGUF_ARRAY); io_put_u32(&b, FB_GGUF_ARRAY); io_put_u64(&b, 2);
    io_put_u32(&b, FB_GGUF_STRING); io_put_u64(&b, 2); gstr(&b, "a"); gstr(&b, "bc");
    io_put_u32(&b, FB_GGUF_STRING); io_put_u64(&b, 1); gstr(&b, "d");
    gstr(&b, "general.alignment"); io_put_u32(&b, FB_GGUF_U32); io_put_u32(&b, 64);
    /* one Q8_0 tensor [32] */
    gstr(&b, "q"); io_put_u32(&b, 1); io_put_u64(&b, 32); io_put_u32(&b, FB_GGML_Q8_0); io_put_u64(&b, 0);
    io_put_zeros(&b, (64 - b.n % 64) % 64);
    size_t data_at = b.n;
    uint8_t blk[34];
    float x[32];
    for (int k = 0; k < 32; k++) x[k] = (float)k - 10.0f;
    fb_q8_0_quantize_row(blk, x, 32);
    io_put(&b, blk, 34);
    fb_gguf g;
    fb_status s = open_buf(&b, &g);
    FB_CHECK(s == FB_OK, "all types: %s", fb_last_error());
    if (s == FB_OK) {
        const fb_gguf_kv *kv;
        FB_CHECK(g.version == 2 && g.alignment == 64 && g.data_offset == data_at, "v2 header, alignment 64");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.u8")) && kv->value.type == FB_GGUF_U8 && kv->value.v.u == 200, "u8");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.i8")) && kv->value.v.i == -100, "i8");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.u16")) && kv->value.v.u == 60000, "u16");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.i16")) && kv->value.v.i == -30000, "i16");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.u32")) && kv->value.v.u == 4000000000u, "u32");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.i32")) && kv->value.v.i == -2000000000, "i32");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.f32")) && kv->value.v.f == 0.75, "f32");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.bool")) && kv->value.type == FB_GGUF_BOOL && kv->value.v.u == 0, "bool");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.u64")) && kv->value.v.u == UINT64_MAX, "u64");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.i64")) && kv->value.v.i == INT64_MIN, "i64");
        FB_CHECK((kv = fb_gguf_find_kv(&g, "t.f64")) && kv->value.v.f == 2.5, "f64");
        float fv;
        FB_CHECK(fb_gguf_get_f32(&g, "t.f64", &fv) == FB_OK && fv == 2.5f, "f64 as f32");
        const fb_gguf_value *arr;
        fb_gguf_value e0, e1;
        FB_CHECK(fb_gguf_get_array(&g, "t.nested", FB_GGUF_ARRAY, &arr) == FB_OK && arr->v.arr.count == 3, "nested");
        FB_CHECK(fb_gguf_array_get(arr, 2, &e0) == FB_OK && e0.type == FB_GGUF_ARRAY && e0.v.arr.count == 1 &&
                     fb_gguf_array_get(&e0, 0, &e1) == FB_OK && e1.v.u == 3, "nested [2][0] == 3");
        FB_CHECK(fb_gguf_array_get(arr, 1, &e0) == FB_OK && e0.v.arr.count == 0, "nested [1] empty");
        const char *sp; uint64_t sl;
        FB_CHECK(fb_gguf_get_array(&g, "t.merges2", FB_GGUF_ARRAY, &arr) == FB_OK && fb_gguf_array_get(arr, 0, &e0) == FB_OK &&
                     fb_gguf_array_string(&e0, 1, &sp, &sl) == FB_OK && sl == 2 && !memcmp(sp, "bc", 2), "nested strings");
        float row[32];
        const fb_gguf_tensor *t;
        FB_CHECK(fb_gguf_get_tensor(&g, "q", &t) == FB_OK && fb_gguf_tensor_row_f32(t, 0, row) == FB_OK && fabsf(row[31] - 21.0f) < 0.1f, "q8 tensor");
        fb_gguf_close(&g);
    }
    free(b.p);
}

static void test_lies(void) {
    io_buf b = {0};
    tinfo one[] = {{"w", FB_GGML_F32, 4, 2, 0}};
    build(&b, 3, one, 1, 32, 0);
    fb_gguf g;
    FB_CHECK(open_buf(&b, &g) == FB_OK, "control: %s", fb_last_error());
    fb_gguf_close(&g);
    build(&b, 3, one, 1, 31, 0);
    expect_fail(&b, FB_ERR_FORMAT, "past the end", "tensor data short");
    tinfo q4[] = {{"w", 12, 256, 1, 0}};
    build(&b, 3, q4, 1, 256, 0);
    expect_fail(&b, FB_ERR_UNSUPPORTED, "Q4_K", "Q4_K type");
    tinfo unk[] = {{"w", 99, 4, 1, 0}};
    build(&b, 3, unk, 1, 32, 0);
    expect_fail(&b, FB_ERR_FORMAT, "unknown ggml type 99", "type 99");
    tinfo mis[] = {{"w", FB_GGML_F32, 4, 1, 8}};
    build(&b, 3, mis, 1, 64, 0);
    expect_fail(&b, FB_ERR_FORMAT, "alignment", "misaligned offset");
    tinfo far[] = {{"w", FB_GGML_F32, 4, 1, 0xffffffffffffffe0ull}};
    build(&b, 3, far, 1, 32, 0);
    expect_fail(&b, FB_ERR_FORMAT, "past the end", "offset near 2^64");
    tinfo ovf[] = {{"w", FB_GGML_F32, 1ull << 32, 1ull << 32, 0}};
    build(&b, 3, ovf, 1, 32, 0);
    expect_fail(&b, FB_ERR_FORMAT, "overflow", "numel overflow");
    tinfo big[] = {{"w", FB_GGML_F32, 1ull << 30, 1ull << 30, 0}};
    build(&b, 3, big, 1, 32, 0);
    expect_fail(&b, FB_ERR_FORMAT, "past the end", "2^60 elements");
    tinfo overlap[] = {{"a", FB_GGML_F32, 16, 1, 0}, {"b", FB_GGML_F32, 8, 1, 32}, {"c", FB_GGML_F32, 8, 1, 32}};
    build(&b, 3, overlap, 3, 96, 0);
    expect_fail(&b, FB_ERR_FORMAT, "overlaps", "overlap");
    tinfo dup[] = {{"a", FB_GGML_F32, 8, 1, 0}, {"a", FB_GGML_F32, 8, 1, 32}};
    build(&b, 3, dup, 2, 64, 0);
    expect_fail(&b, FB_ERR_FORMAT, "duplicate tensor", "duplicate tensor");
    tinfo q8odd[] = {{"w", FB_GGML_Q8_0, 33, 1, 0}};
    build(&b, 3, q8odd, 1, 64, 0);
    expect_fail(&b, FB_ERR_FORMAT, "multiple of 32", "q8 row 33");
    build(&b, 1, one, 1, 32, 0);
    expect_fail(&b, FB_ERR_UNSUPPORTED, "version 1", "v1");
    build(&b, 0x03000000u, one, 1, 32, 0);
    expect_fail(&b, FB_ERR_UNSUPPORTED, "big-endian", "big endian");
    build(&b, 7, one, 1, 32, 0);
    expect_fail(&b, FB_ERR_FORMAT, "version 7", "v7");
    build(&b, 3, one, 1, 32, 0);
    b.p[0] = 'X';
    expect_fail(&b, FB_ERR_FORMAT, "not a GGUF", "magic");
    /* counts */
    build(&b, 3, one, 1, 32, 0);
    fb_store_u64le(b.p + 8, UINT64_MAX);
    expect_fail(&b, FB_ERR_FORMAT, "tensor count", "tensor count 2^64-1");
    build(&b, 3, one, 1, 32, 0);
    fb_store_u64le(b.p + 16, 1ull << 40);
    expect_fail(&b, FB_ERR_FORMAT, "metadata count", "kv count 2^40");
    build(&b, 3, one, 1, 32, 0);
    fb_store_u64le(b.p + 24, UINT64_MAX); /* key length */
    expect_fail(&b, FB_ERR_FORMAT, "limit", "key length 2^64-1");
    build(&b, 3, one, 1, 32, 0);
    fb_store_u32le(b.p + 24 + 8 + 20, 13); /* value type */
    expect_fail(&b, FB_ERR_FORMAT, "unknown value type 13", "kv type 13");
    build(&b, 3, one, 1, 32, 0);
    fb_store_u64le(b.p + 24 + 8 + 20 + 4, 1ull << 62); /* string value length */
    expect_fail(&b, FB_ERR_FORMAT, "only", "string length 2^62");
    /* arrays */
    io_buf a = {0};
    const struct { uint32_t et; uint64_t n; const char *needle; } arrs[] = {
        {FB_GGUF_F32, 1ull << 62, "past the end"}, {FB_GGUF_STRING, 1ull << 40, "cannot fit"},
        {FB_GGUF_ARRAY, UINT64_MAX, "cannot fit"}, {77, 1, "element type 77"}, {FB_GGUF_BOOL, 1, "bool"}};
    for (size_t k = 0; k < sizeof arrs / sizeof arrs[0]; k++) {
        a.n = 0;
        io_put(&a, "GGUF", 4); io_put_u32(&a, 3); io_put_u64(&a, 0); io_put_u64(&a, 1);
        gstr(&a, "k"); io_put_u32(&a, FB_GGUF_ARRAY); io_put_u32(&a, arrs[k].et); io_put_u64(&a, arrs[k].n);
        uint8_t two = 2; io_put(&a, &two, 1);
        io_put_zeros(&a, 64);
        expect_fail(&a, FB_ERR_FORMAT, arrs[k].needle, "array lie");
    }
    /* nesting deeper than the limit */
    a.n = 0;
    io_put(&a, "GGUF", 4); io_put_u32(&a, 3); io_put_u64(&a, 0); io_put_u64(&a, 1);
    gstr(&a, "k"); io_put_u32(&a, FB_GGUF_ARRAY);
    for (int d = 0; d < 20; d++) { io_put_u32(&a, FB_GGUF_ARRAY); io_put_u64(&a, 1); }
    io_put_u32(&a, FB_GGUF_U8); io_put_u64(&a, 0);
    expect_fail(&a, FB_ERR_FORMAT, "nested", "deep nesting");
    /* duplicate keys, bad alignment, bad bool */
    const struct { const char *k1; uint32_t t; uint32_t v; const char *needle; } kvl[] = {
        {"general.architecture", FB_GGUF_U32, 1, "duplicate"}, {"general.alignment", FB_GGUF_U32, 0, "power of two"},
        {"general.alignment", FB_GGUF_U32, 48, "power of two"}, {"general.alignment", FB_GGUF_U64, 32, "uint32"},
        {"x", FB_GGUF_BOOL, 2, "bool"}};
    for (size_t k = 0; k < sizeof kvl / sizeof kvl[0]; k++) {
        a.n = 0;
        io_put(&a, "GGUF", 4); io_put_u32(&a, 3); io_put_u64(&a, 0); io_put_u64(&a, 2);
        gstr(&a, "general.architecture"); io_put_u32(&a, FB_GGUF_STRING); gstr(&a, "llama");
        gstr(&a, kvl[k].k1); io_put_u32(&a, kvl[k].t);
        if (kvl[k].t == FB_GGUF_U64) io_put_u64(&a, kvl[k].v);
        else if (kvl[k].t == FB_GGUF_BOOL) { uint8_t x = (uint8_t)kvl[k].v; io_put(&a, &x, 1); }
        else io_put_u32(&a, kvl[k].v);
        io_put_zeros(&a, 32);
        expect_fail(&a, FB_ERR_FORMAT, kvl[k].needle, kvl[k].k1);
    }
    free(a.p);
    free(b.p);
}

int main(void) {
    io_tmp_init();
    test_roundtrip();
    test_all_types();
    test_lies();
    io_tmp_cleanup();
    return fb_test_finish("io_gguf");
}
