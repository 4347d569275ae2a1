/* Compatibility with an independent implementation: tests/io/oracle.py (a
 * safetensors and GGUF reader/writer written from the specs with numpy)
 * reads the files we write, and we read the files it writes. Skipped (77)
 * when python3 with numpy is missing, unless CI=true. */
#include "core/error.h"
#include "io/gguf.h"
#include "core/half.h"
#include "io/safetensors.h"
#include "io_test_common.h"
#include <json-c/json.h>
#include <math.h>

static const char *python(void) { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

static int run_oracle(const char *cmd, const char *a, const char *b) {
    char line[4096];
    snprintf(line, sizeof line, "%s %s/tests/io/oracle.py %s '%s' '%s'", python(), FB_SOURCE_DIR, cmd, a, b);
    int rc = system(line);
    FB_CHECK(rc == 0, "oracle failed: %s", line);
    return rc;
}

static json_object *load_json(const char *path) {
    json_object *o = json_object_from_file(path);
    FB_CHECK(o != NULL, "cannot parse %s", path);
    return o;
}

static json_object *jget(json_object *o, const char *k) {
    json_object *v = NULL;
    if (o) json_object_object_get_ex(o, k, &v);
    return v;
}

/* ---------------------------------------------------------------- safetensors */
static float wf[2 * 3] = {1.5f, -2.25f, 3.0f, 1e-20f, 65504.0f, -0.0f};
static uint16_t wh[4], wb[4];
static int8_t wi8[3] = {-128, 5, 127};
static int32_t wi32[2] = {INT32_MIN, INT32_MAX};
static int64_t wi64[2] = {-5000000000ll, 1ll << 52};
static uint8_t wu8[2] = {0, 255};

static void test_safetensors(void) {
    for (int i = 0; i < 4; i++) { wh[i] = fb_f32_to_f16((float)i * 0.3f - 0.5f); wb[i] = fb_f32_to_bf16((float)i * 1e10f - 3.0f); }
    uint64_t s23[2] = {2, 3}, s4[1] = {4}, s3[1] = {3}, s2[1] = {2}, s12[2] = {1, 2};
    fb_st_write_tensor ts[] = {
        {"blk.0.ffn_up.weight", FB_ST_F32, 2, s23, wf}, {"h", FB_ST_F16, 1, s4, wh}, {"b", FB_ST_BF16, 1, s4, wb},
        {"i8", FB_ST_I8, 1, s3, wi8}, {"i32", FB_ST_I32, 2, s12, wi32}, {"i64", FB_ST_I64, 1, s2, wi64}, {"u8", FB_ST_U8, 1, s2, wu8}};
    const size_t nt = sizeof ts / sizeof ts[0];
    fb_st_kv meta[] = {{"format", "pt"}, {"flashblock.config", "{\"preset\": \"llama\", \"n_layers\": 2}"}};
    const char *c_st = io_tmp_path("c.safetensors"), *c_json = io_tmp_path("c_st.json"), *p_st = io_tmp_path("p.safetensors");
    FB_CHECK(fb_safetensors_write(c_st, ts, nt, meta, 2) == FB_OK, "write: %s", fb_last_error());
    if (run_oracle("st-dump", c_st, c_json)) return;
    json_object *root = load_json(c_json), *jt = jget(root, "tensors"), *jm = jget(root, "metadata");
    FB_CHECK(json_object_get_int64(jget(root, "header_len")) % 8 == 0, "header padded");
    FB_CHECK(jm && json_object_object_length(jm) == 2 && !strcmp(json_object_get_string(jget(jm, "format")), "pt") &&
                 !strcmp(json_object_get_string(jget(jm, "flashblock.config")), meta[1].value), "python sees our metadata");
    FB_CHECK(jt && json_object_object_length(jt) == (int)nt, "python sees %zu tensors", nt);
    for (size_t i = 0; i < nt && jt; i++) {
        json_object *t = jget(jt, ts[i].name), *vals = jget(t, "values"), *shape = jget(t, "shape");
        FB_CHECK(t && !strcmp(json_object_get_string(jget(t, "dtype")), fb_st_dtype_name(ts[i].dtype)), "%s dtype", ts[i].name);
        if (!t) continue;
        FB_CHECK((int)json_object_array_length(shape) == ts[i].ndim, "%s ndim", ts[i].name);
        size_t n = json_object_array_length(vals);
        for (size_t k = 0; k < n; k++) {
            json_object *v = json_object_array_get_idx(vals, k);
            double got = json_object_get_double(v), want = 0;
            int64_t gi = json_object_get_int64(v), wi = 0;
            int is_int = 0;
            switch (ts[i].dtype) {
            case FB_ST_F32: want = wf[k]; break;
            case FB_ST_F16: want = fb_f16_to_f32(wh[k]); break;
            case FB_ST_BF16: want = fb_bf16_to_f32(wb[k]); break;
            case FB_ST_I8: wi = wi8[k]; is_int = 1; break;
            case FB_ST_I32: wi = wi32[k]; is_int = 1; break;
            case FB_ST_I64: wi = wi64[k]; is_int = 1; break;
            default: wi = wu8[k]; is_int = 1; break;
            }
            if (is_int) FB_CHECK(gi == wi, "%s[%zu]: python %lld, we wrote %lld", ts[i].name, k, (long long)gi, (long long)wi);
            else FB_CHECK(got == want || (got == 0 && want == 0), "%s[%zu]: python %g, we wrote %g", ts[i].name, k, got, want);
        }
    }
    json_object_put(root);
    /* python writes, we read */
    if (run_oracle("st-write", c_json, p_st)) return;
    fb_safetensors st;
    fb_status s = fb_safetensors_open(&st, p_st);
    FB_CHECK(s == FB_OK, "read python's file: %s", fb_last_error());
    if (s != FB_OK) return;
    for (size_t i = 0; i < nt; i++) {
        const fb_st_tensor *t = fb_safetensors_find(&st, ts[i].name);
        FB_CHECK(t && t->dtype == ts[i].dtype && t->nbytes && !memcmp(t->data, ts[i].data, t->nbytes), "%s from python", ts[i].name);
    }
    FB_CHECK(fb_safetensors_meta(&st, "flashblock.config") && !strcmp(fb_safetensors_meta(&st, "flashblock.config"), meta[1].value), "metadata from python");
    fb_safetensors_close(&st);
}

/* ---------------------------------------------------------------------- GGUF */
static void compare_gguf(const fb_gguf *a, const fb_gguf *b, const char *what) {
    FB_CHECK(a->n_tensors == b->n_tensors, "%s: tensor count", what);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const fb_gguf_tensor *x = &a->tensors[i], *y = fb_gguf_find_tensor(b, x->name);
        FB_CHECK(y && y->type == x->type && y->numel == x->numel && y->n_dims == x->n_dims && y->nbytes == x->nbytes, "%s: %s info", what, x->name);
        if (!y || y->numel != x->numel) continue;
        float *fx = malloc(x->numel * 4), *fy = malloc(x->numel * 4);
        fb_gguf_tensor_to_f32(x, fx);
        fb_gguf_tensor_to_f32(y, fy);
        FB_CHECK(!memcmp(fx, fy, x->numel * 4), "%s: %s values", what, x->name);
        free(fx);
        free(fy);
    }
}

static void test_gguf(void) {
    const char *c_g = io_tmp_path("c.gguf"), *c_json = io_tmp_path("c_g.json"), *p_g = io_tmp_path("p.gguf");
    fb_gguf_writer *w;
    fb_gguf_writer_init(&w);
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "a b"};
    const char *merges[] = {"a b", "\xc4\xa0 t"};
    float scores[] = {0, 0, 0, -1.25f, -7.5f};
    int32_t tt[] = {2, 3, 3, 1, 1};
    fb_gguf_writer_add_string(w, "general.architecture", "llama");
    fb_gguf_writer_add_string(w, "general.name", "flashblock test");
    fb_gguf_writer_add_u32(w, "llama.block_count", 1);
    fb_gguf_writer_add_u32(w, "llama.context_length", 128);
    fb_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    fb_gguf_writer_add_bool(w, "flashblock.tied", 0);
    fb_gguf_writer_add_string_array(w, "tokenizer.ggml.tokens", toks, NULL, 5);
    fb_gguf_writer_add_f32_array(w, "tokenizer.ggml.scores", scores, 5);
    fb_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", tt, 5);
    fb_gguf_writer_add_string_array(w, "tokenizer.ggml.merges", merges, NULL, 2);
    fb_test_rng r;
    fb_test_rng_seed(&r, 77);
    float a[4 * 64], v[40];
    fb_test_fill_normal(&r, a, 256, 1.0f);
    fb_test_fill_normal(&r, v, 40, 1.0f);
    a[64] = 0; /* partly zero block */
    for (int i = 96; i < 128; i++) a[i] = 0; /* all-zero Q8_0 block */
    uint64_t ne_a[2] = {64, 4}, ne_v[2] = {8, 5};
    fb_gguf_writer_add_tensor_f32(w, "blk.0.attn_q.weight", FB_GGML_Q8_0, 2, ne_a, a);
    fb_gguf_writer_add_tensor_f32(w, "blk.0.attn_k.weight", FB_GGML_F16, 2, ne_a, a);
    fb_gguf_writer_add_tensor_f32(w, "blk.0.attn_v.weight", FB_GGML_BF16, 2, ne_a, a);
    fb_gguf_writer_add_tensor_f32(w, "token_embd.weight", FB_GGML_F32, 2, ne_v, v);
    FB_CHECK(fb_gguf_writer_write(w, c_g) == FB_OK, "write gguf: %s", fb_last_error());
    fb_gguf_writer_free(w);
    if (run_oracle("gguf-dump", c_g, c_json)) return;
    fb_gguf g;
    FB_CHECK(fb_gguf_open(&g, c_g) == FB_OK, "reopen");
    json_object *root = load_json(c_json), *jm = jget(root, "metadata"), *jt = jget(root, "tensors");
    FB_CHECK(json_object_get_int(jget(root, "version")) == 3, "python sees v3");
    FB_CHECK(jm && json_object_object_length(jm) == 10, "python sees 10 keys");
    json_object *k;
    FB_CHECK((k = jget(jm, "llama.context_length")) && !strcmp(json_object_get_string(jget(k, "type")), "uint32") &&
                 json_object_get_int(jget(k, "value")) == 128, "u32 key");
    FB_CHECK((k = jget(jm, "llama.attention.layer_norm_rms_epsilon")) && (float)json_object_get_double(jget(k, "value")) == 1e-5f, "f32 key");
    FB_CHECK((k = jget(jm, "flashblock.tied")) && !strcmp(json_object_get_string(jget(k, "type")), "bool") &&
                 !json_object_get_boolean(jget(k, "value")), "bool key");
    json_object *tv = jget(jget(jget(jm, "tokenizer.ggml.tokens"), "value"), "value");
    FB_CHECK(tv && json_object_array_length(tv) == 5 && !strcmp(json_object_get_string(json_object_array_get_idx(tv, 3)), toks[3]), "tokens");
    json_object *sv = jget(jget(jget(jm, "tokenizer.ggml.scores"), "value"), "value");
    FB_CHECK(sv && json_object_get_double(json_object_array_get_idx(sv, 4)) == -7.5, "scores");
    json_object *tyv = jget(jget(jget(jm, "tokenizer.ggml.token_type"), "value"), "value");
    FB_CHECK(tyv && json_object_get_int(json_object_array_get_idx(tyv, 1)) == 3, "token types");
    for (uint64_t i = 0; i < g.n_tensors && jt; i++) {
        const fb_gguf_tensor *t = &g.tensors[i];
        json_object *jx = jget(jt, t->name), *vals = jget(jx, "values");
        FB_CHECK(jx && json_object_get_int(jget(jx, "type")) == (int)t->type && vals && json_object_array_length(vals) == t->numel,
                 "%s: python info", t->name);
        if (!vals || json_object_array_length(vals) != t->numel) continue;
        float *f = malloc(t->numel * 4);
        fb_gguf_tensor_to_f32(t, f);
        int bad = 0;
        for (uint64_t e = 0; e < t->numel; e++) bad += (float)json_object_get_double(json_object_array_get_idx(vals, e)) != f[e];
        FB_CHECK(!bad, "%s: %d values differ between python's decoding and ours", t->name, bad);
        if (t->type == FB_GGML_F32) FB_CHECK(!memcmp(f, v, 160), "f32 exact");
        free(f);
    }
    json_object_put(root);
    /* python writes (alignment 64), we read */
    if (run_oracle("gguf-write", c_json, p_g) == 0) {
        fb_gguf p;
        fb_status s = fb_gguf_open(&p, p_g);
        FB_CHECK(s == FB_OK, "read python's gguf: %s", fb_last_error());
        if (s == FB_OK) {
            FB_CHECK(p.alignment == 64 && p.data_offset % 64 == 0, "alignment 64 honoured");
            compare_gguf(&g, &p, "python-written");
            const fb_gguf_value *arr;
            const char *sp; uint64_t sl;
            FB_CHECK(fb_gguf_get_array(&p, "tokenizer.ggml.merges", FB_GGUF_STRING, &arr) == FB_OK &&
                         fb_gguf_array_string(arr, 1, &sp, &sl) == FB_OK && sl == strlen(merges[1]) && !memcmp(sp, merges[1], sl), "merges");
            uint32_t u;
            FB_CHECK(fb_gguf_get_u32(&p, "llama.block_count", &u) == FB_OK && u == 1, "block_count");
            /* Q8_0 bytes identical after python's re-quantization */
            const fb_gguf_tensor *x = fb_gguf_find_tensor(&g, "blk.0.attn_q.weight"), *y = fb_gguf_find_tensor(&p, "blk.0.attn_q.weight");
            FB_CHECK(x && y && !memcmp(x->data, y->data, x->nbytes), "Q8_0 blocks byte-identical");
            fb_gguf_close(&p);
        }
    }
    fb_gguf_close(&g);
}

int main(void) {
    char probe[512];
    snprintf(probe, sizeof probe, "%s -c 'import numpy, json, struct' >/dev/null 2>&1", python());
    if (system(probe) != 0) {
        const char *ci = getenv("CI");
        if (ci && !strcmp(ci, "true")) { fprintf(stderr, "FAIL: python3 with numpy is required (CI=true)\n"); return 1; }
        fprintf(stderr, "SKIP: python3 with numpy not found\n");
        return FB_TEST_SKIP;
    }
    io_tmp_init();
    test_safetensors();
    test_gguf();
    io_tmp_cleanup();
    return fb_test_finish("io_python_oracle");
}
