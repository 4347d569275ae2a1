/* safetensors: round trip through our writer/reader, and header lies. */
#include "core/error.h"
#include "core/half.h"
#include "io/safetensors.h"
#include "io_test_common.h"
#include <math.h>

static fb_status open_json(const char *json, size_t data_len, fb_safetensors *st, io_buf *b) {
    b->n = 0;
    size_t jl = strlen(json);
    io_put_u64(b, jl);
    io_put(b, json, jl);
    io_put_zeros(b, data_len);
    return fb_safetensors_open_buffer(st, b->p, b->n, "lie.safetensors");
}

static void expect_lie(const char *json, size_t data_len, fb_status want, const char *needle) {
    io_buf b = {0};
    fb_safetensors st;
    fb_status s = open_json(json, data_len, &st, &b);
    FB_CHECK(s != FB_OK, "accepted: %s", json);
    if (s == FB_OK) fb_safetensors_close(&st);
    else {
        if (want != FB_OK) FB_CHECK(s == want, "%s: status %s (%s)", json, fb_status_string(s), fb_last_error());
        FB_CHECK(strstr(fb_last_error(), "lie.safetensors") != NULL, "message lacks file name: %s", fb_last_error());
        if (needle) FB_CHECK(strstr(fb_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", json, fb_last_error(), needle);
    }
    free(b.p);
}

int main(void) {
    io_tmp_init();
    fb_test_rng r;
    fb_test_rng_seed(&r, 5);
    float w[6 * 10], b1[7], scalar = 3.5f;
    fb_test_fill_normal(&r, w, 60, 1.0f);
    fb_test_fill_normal(&r, b1, 7, 1.0f);
    uint16_t h16[5], hb16[5];
    for (int i = 0; i < 5; i++) { h16[i] = fb_f32_to_f16((float)i * 0.25f - 0.5f); hb16[i] = fb_f32_to_bf16((float)i * 1.5f); }
    int8_t i8[3] = {-128, 0, 127};
    int32_t i32[4] = {-1, 2, INT32_MIN, INT32_MAX};
    int64_t i64[2] = {INT64_MIN, 42};
    uint8_t u8[1] = {200};
    uint64_t sw[2] = {6, 10}, sb[1] = {7}, s5[1] = {5}, s3[1] = {3}, s22[2] = {2, 2}, s2[1] = {2}, s1[1] = {1}, s0[2] = {0, 4};
    fb_st_write_tensor ts[] = {
        {"blk.0.attn_qkv.weight", FB_ST_F32, 2, sw, w},
        {"blk.0.attn_qkv.bias", FB_ST_F32, 1, sb, b1},
        {"h16", FB_ST_F16, 1, s5, h16},
        {"hb16", FB_ST_BF16, 1, s5, hb16},
        {"i8", FB_ST_I8, 1, s3, i8},
        {"i32", FB_ST_I32, 2, s22, i32},
        {"i64", FB_ST_I64, 1, s2, i64},
        {"u8", FB_ST_U8, 1, s1, u8},
        {"scalar", FB_ST_F32, 0, NULL, &scalar},
        {"empty", FB_ST_F32, 2, s0, NULL},
    };
    size_t nt = sizeof ts / sizeof ts[0];
    fb_st_kv meta[] = {{"format", "pt"}, {"flashblock.config", "{\"d_model\": 64, \"name\": \"caf\xc3\xa9 \\\"q\\\"\"}"}, {"empty", ""}};
    const char *path = io_tmp_path("rt.safetensors");
    fb_status s = fb_safetensors_write(path, ts, nt, meta, 3);
    FB_CHECK(s == FB_OK, "write: %s", fb_last_error());
    fb_safetensors st;
    s = fb_safetensors_open(&st, path);
    FB_CHECK(s == FB_OK, "open: %s", fb_last_error());
    if (s == FB_OK) {
        FB_CHECK(st.n_tensors == nt && st.n_meta == 3, "counts %zu %zu", st.n_tensors, st.n_meta);
        uint64_t hlen = fb_load_u64le(st.file.data);
        FB_CHECK(hlen % 8 == 0, "header padded to 8: %llu", (unsigned long long)hlen);
        for (size_t i = 0; i < nt; i++) {
            const fb_st_tensor *t = fb_safetensors_find(&st, ts[i].name);
            FB_CHECK(t != NULL, "missing %s", ts[i].name);
            if (!t) continue;
            FB_CHECK(t->dtype == ts[i].dtype && t->ndim == ts[i].ndim, "%s dtype/ndim", ts[i].name);
            uint64_t n = 1;
            for (int d = 0; d < t->ndim; d++) { FB_CHECK(t->shape[d] == ts[i].shape[d], "%s shape", ts[i].name); n *= ts[i].shape[d]; }
            FB_CHECK(t->numel == n && t->nbytes == n * fb_st_dtype_size(t->dtype), "%s size", ts[i].name);
            if (n) FB_CHECK(memcmp(t->data, ts[i].data, t->nbytes) == 0, "%s data", ts[i].name);
            FB_CHECK(t->file_offset % fb_st_dtype_size(t->dtype) == 0, "%s aligned", ts[i].name);
        }
        FB_CHECK(strcmp(fb_safetensors_meta(&st, "format"), "pt") == 0, "meta format");
        FB_CHECK(strcmp(fb_safetensors_meta(&st, "flashblock.config"), meta[1].value) == 0, "meta json value");
        FB_CHECK(fb_safetensors_meta(&st, "empty")[0] == 0 && fb_safetensors_meta(&st, "nope") == NULL, "meta empty/missing");
        const fb_st_tensor *t;
        FB_CHECK(fb_safetensors_get(&st, "nope", &t) == FB_ERR_FORMAT && strstr(fb_last_error(), "nope"), "get missing");
        float f[5];
        FB_CHECK(fb_safetensors_get(&st, "h16", &t) == FB_OK && fb_st_tensor_to_f32(t, f) == FB_OK && f[0] == -0.5f && f[4] == 0.5f, "f16 to f32");
        FB_CHECK(fb_safetensors_get(&st, "hb16", &t) == FB_OK && fb_st_tensor_to_f32(t, f) == FB_OK && f[3] == 4.5f, "bf16 to f32");
        FB_CHECK(fb_safetensors_get(&st, "i8", &t) == FB_OK && fb_st_tensor_to_f32(t, f) == FB_ERR_UNSUPPORTED, "i8 not float");
        fb_safetensors_close(&st);
    }
    /* writer refuses duplicates and bad names; old file stays */
    fb_st_write_tensor dup[] = {{"a", FB_ST_F32, 1, s1, &scalar}, {"a", FB_ST_F32, 1, s1, &scalar}};
    FB_CHECK(fb_safetensors_write(path, dup, 2, NULL, 0) == FB_ERR_INVALID_ARG, "duplicate names");
    fb_st_write_tensor md[] = {{"__metadata__", FB_ST_F32, 1, s1, &scalar}};
    FB_CHECK(fb_safetensors_write(path, md, 1, NULL, 0) == FB_ERR_INVALID_ARG, "reserved name");
    FB_CHECK(fb_safetensors_open(&st, path) == FB_OK && st.n_tensors == nt, "old file intact");
    fb_safetensors_close(&st);
    /* no tensors at all */
    FB_CHECK(fb_safetensors_write(path, NULL, 0, NULL, 0) == FB_OK && fb_safetensors_open(&st, path) == FB_OK && st.n_tensors == 0, "empty file");
    fb_safetensors_close(&st);

    /* header lies */
    {   /* control: the valid form of the lies below */
        io_buf b = {0};
        FB_CHECK(open_json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, &st, &b) == FB_OK, "control");
        fb_safetensors_close(&st);
        free(b.p);
    }
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, FB_ERR_FORMAT, "need 12");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, FB_ERR_FORMAT, "outside");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, FB_ERR_FORMAT, "outside");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, FB_ERR_FORMAT, "overlaps");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, FB_ERR_FORMAT, "hole");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, FB_ERR_FORMAT, "not described");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, FB_ERR_FORMAT, "overflow");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,4],\"data_offsets\":[0,8]}}", 8, FB_ERR_FORMAT, "overflow");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, FB_ERR_FORMAT, "shape[0]");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, FB_ERR_FORMAT, "shape[0]");
    expect_lie("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, FB_ERR_UNSUPPORTED, "Q4");
    expect_lie("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, FB_ERR_FORMAT, "dtype");
    expect_lie("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, FB_ERR_FORMAT, "dtype");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, FB_ERR_FORMAT, "shape");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, FB_ERR_FORMAT, "data_offsets");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", 8, FB_ERR_FORMAT, "data_offsets");
    expect_lie("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, FB_ERR_FORMAT, "dimensions");
    expect_lie("{\"a\":[1,2]}", 0, FB_ERR_FORMAT, "not an object");
    expect_lie("{\"__metadata__\":{\"k\":1}}", 0, FB_ERR_FORMAT, "not a string");
    expect_lie("{\"__metadata__\":[]}", 0, FB_ERR_FORMAT, "__metadata__");
    expect_lie("[1,2,3]", 0, FB_ERR_FORMAT, "'{'");
    expect_lie("{\"a\":", 0, FB_ERR_FORMAT, "parse");
    expect_lie("{} xx", 0, FB_ERR_FORMAT, "after the JSON");
    expect_lie("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 0, FB_ERR_FORMAT, NULL);
    /* header length lies */
    {
        uint8_t buf[16];
        fb_store_u64le(buf, UINT64_MAX);
        memcpy(buf + 8, "{}      ", 8);
        FB_CHECK(fb_safetensors_open_buffer(&st, buf, 16, "lie") == FB_ERR_FORMAT && strstr(fb_last_error(), "limit"), "2^64-1 header");
        fb_store_u64le(buf, 9);
        FB_CHECK(fb_safetensors_open_buffer(&st, buf, 16, "lie") == FB_ERR_FORMAT && strstr(fb_last_error(), "truncated"), "header past end");
        FB_CHECK(fb_safetensors_open_buffer(&st, buf, 5, "lie") == FB_ERR_FORMAT, "5 bytes");
        FB_CHECK(fb_safetensors_open_buffer(&st, NULL, 0, "lie") == FB_ERR_FORMAT, "0 bytes");
    }
    io_tmp_cleanup();
    return fb_test_finish("io_safetensors");
}
