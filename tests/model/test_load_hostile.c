/* Model loaders on files whose headers lie about their sizes.
 *
 * A GGUF whose feed_forward_length claims 2·10^9 once made the loader ask
 * for terabytes before it looked at the tensors. Every loader must now check
 * the header against the tensor shapes (and so the file size) before it
 * allocates, and say which field is wrong. For each format we write a small
 * valid model, load it, then patch one header field at a time to a huge or
 * inconsistent value: the load must fail with a shape/format status (not an
 * out-of-memory one, and under ASan not an allocation-size-too-big abort)
 * and a message naming the field.
 *
 * With a directory argument the valid and hostile files are also written to
 * DIR/model as the seed corpus of the fuzz_model_load target. */
#include "core/error.h"
#include "infer/convert.h"
#include "infer/model_load.h"
#include "test_util.h"
#include "model/checkpoint.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256];
static const char *g_corpus;

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void write_all(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    FB_CHECK(f && fwrite(d, 1, n, f) == n, "cannot write %s", path);
    if (f) fclose(f);
}

static void save_seed(const char *name, const void *d, size_t n) {
    if (!g_corpus) return;
    char p[1024];
    mkdir(g_corpus, 0755);
    snprintf(p, sizeof p, "%s/model", g_corpus);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/model/%s", g_corpus, name);
    write_all(p, d, n);
}

static fb_model *tiny_model(int llama) {
    fb_model_config mc = {0};
    mc.block = llama ? fb_block_config_llama(32, 4, 2, 64) : fb_block_config_gpt2(32, 4);
    mc.n_layers = 2;
    mc.vocab_size = 40;
    mc.max_seq = 16;
    mc.tied = !llama;
    fb_model *m = NULL;
    FB_CHECK(fb_model_init(&m, &mc) == FB_OK, "tiny model: %s", fb_last_error());
    if (m) fb_model_init_random(m, 7);
    return m;
}

/* Loads path, expecting success (want_field NULL) or a failure whose
 * message names want_field; both with fp32 weights and straight into Q8_0. */
static void expect_load(const char *what, const char *path, const char *want_field) {
    for (int w = 0; w < 2; w++) {
        const fb_model_weights weights = w ? FB_MODEL_Q8_0 : FB_MODEL_F32;
        const char *wn = w ? " (Q8_0 weights)" : "";
        fb_model *m = NULL;
        fb_tokenizer *tok = NULL;
        fb_clear_error();
        fb_status s = fb_model_load_weights(path, weights, &m, &tok, NULL, NULL);
        if (!want_field) {
            FB_CHECK(s == FB_OK && m, "%s%s: the valid file does not load: %s", what, wn, fb_last_error());
        } else {
            FB_CHECK(s != FB_OK, "%s%s: a header with a wrong %s was accepted", what, wn, want_field);
            FB_CHECK(s != FB_ERR_OOM, "%s%s: the loader tried to allocate what the header claims (%s)", what, wn, fb_last_error());
            FB_CHECK(strstr(fb_last_error(), want_field) != NULL, "%s%s: the message does not name %s: %s", what, wn, want_field,
                     fb_last_error());
            FB_CHECK(strchr(fb_last_error(), '\n') == NULL, "%s%s: the message is not one line", what, wn);
        }
        fb_model_free(m);
        fb_tokenizer_free(tok);
    }
}

/* GGUF: overwrite the integer value of metadata key `key`. */
static int gguf_patch(unsigned char *b, size_t n, const char *key, uint64_t value) {
    size_t kl = strlen(key);
    for (size_t i = 0; i + 8 + kl + 12 <= n; i++) {
        uint64_t len;
        memcpy(&len, b + i, 8);
        if (len != kl || memcmp(b + i + 8, key, kl)) continue;
        unsigned char *t = b + i + 8 + kl;
        uint32_t type;
        memcpy(&type, t, 4);
        if (type == 4) { uint32_t v = (uint32_t)value; memcpy(t + 4, &v, 4); return 1; }   /* u32 */
        if (type == 10) { memcpy(t + 4, &value, 8); return 1; }                             /* u64 */
        return 0;
    }
    return 0;
}

static void gguf_cases(const char *arch, int llama, fb_ggml_type type, const char *tname) {
    char path[512], bad[512], what[128];
    snprintf(path, sizeof path, "%s/%s-%s.gguf", g_tmp, arch, tname);
    snprintf(bad, sizeof bad, "%s/bad.gguf", g_tmp);
    fb_model *m = tiny_model(llama);
    FB_CHECK(m && fb_export_gguf(path, m, type, NULL) == FB_OK, "export %s: %s", path, fb_last_error());
    fb_model_free(m);
    snprintf(what, sizeof what, "gguf %s %s", arch, tname);
    expect_load(what, path, NULL);
    size_t n;
    unsigned char *orig = read_all(path, &n);
    FB_CHECK(orig != NULL, "read %s", path);
    if (!orig) return;
    char seed[96];
    snprintf(seed, sizeof seed, "%s-%s.gguf", arch, tname);
    save_seed(seed, orig, n);
    static const struct { const char *key; uint64_t value; const char *field; } cases[] = {
        {"feed_forward_length", 2000000000u, "feed_forward_length"},   /* the 8 TB request */
        {"feed_forward_length", 65536, "feed_forward_length"},
        {"feed_forward_length", 63, "feed_forward_length"},
        {"embedding_length", 2000000000u, "embedding_length"},
        {"embedding_length", 64, "embedding_length"},
        {"block_count", 2000000000u, "block_count"},
        {"block_count", 3, "block_count = 3"},
        {"context_length", 4000, "context_length"},
        {"attention.head_count", 5, "n_heads"},
        {"attention.head_count_kv", 1, "head_count_kv"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (llama && !strcmp(cases[c].key, "context_length")) continue;   /* RoPE: no tensor has that size */
        if (!llama && !strcmp(cases[c].key, "attention.head_count_kv")) continue;
        char key[96];
        snprintf(key, sizeof key, "%s.%s", arch, cases[c].key);
        unsigned char *b = malloc(n);
        memcpy(b, orig, n);
        if (!gguf_patch(b, n, key, cases[c].value)) { FB_CHECK(0, "%s: key %s not found", what, key); free(b); continue; }
        write_all(bad, b, n);
        char w2[256];
        snprintf(w2, sizeof w2, "%s with %s = %llu", what, key, (unsigned long long)cases[c].value);
        expect_load(w2, bad, cases[c].field);
        snprintf(seed, sizeof seed, "%s-%s-bad-%zu.gguf", arch, tname, c);
        save_seed(seed, b, n);
        free(b);
    }
    free(orig);
}

/* safetensors checkpoint: replace one metadata value (the JSON header's
 * length prefix is rewritten; data offsets are relative to its end). */
static void checkpoint_cases(void) {
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", g_tmp);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", g_tmp);
    fb_model *m = tiny_model(0);
    fb_train_state st = {0};
    snprintf(st.tokenizer, sizeof st.tokenizer, "byte");
    FB_CHECK(m && fb_checkpoint_save(path, m, NULL, &st) == FB_OK, "checkpoint save: %s", fb_last_error());
    fb_model_free(m);
    expect_load("checkpoint", path, NULL);
    size_t n;
    unsigned char *orig = read_all(path, &n);
    if (!orig) { FB_CHECK(0, "read %s", path); return; }
    save_seed("ckpt.safetensors", orig, n);
    uint64_t hl;
    memcpy(&hl, orig, 8);
    static const struct { const char *from, *to, *field; } cases[] = {
        {"\"d_ff\":\"128\"", "\"d_ff\":\"16777215\"", "d_ff = 16777215"},
        {"\"d_model\":\"32\"", "\"d_model\":\"1048576\"", "d_model = 1048576"},
        {"\"vocab_size\":\"40\"", "\"vocab_size\":\"16777216\"", "vocab_size = 16777216"},
        {"\"max_seq\":\"16\"", "\"max_seq\":\"4194304\"", "max_seq = 4194304"},
        {"\"n_layers\":\"2\"", "\"n_layers\":\"4096\"", "n_layers = 4096"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *json = malloc(hl + 1);
        memcpy(json, orig + 8, hl);
        json[hl] = '\0';
        char *at = strstr(json, cases[c].from);
        if (!at) { FB_CHECK(0, "checkpoint: %s not in the header", cases[c].from); free(json); continue; }
        size_t fl = strlen(cases[c].from), tl = strlen(cases[c].to), nl = hl - fl + tl;
        unsigned char *b = malloc(8 + nl + (n - 8 - hl));
        uint64_t nl64 = nl;
        memcpy(b, &nl64, 8);
        size_t pre = (size_t)(at - json);
        memcpy(b + 8, json, pre);
        memcpy(b + 8 + pre, cases[c].to, tl);
        memcpy(b + 8 + pre + tl, at + fl, hl - pre - fl);
        memcpy(b + 8 + nl, orig + 8 + hl, n - 8 - hl);
        size_t bn = 8 + nl + (n - 8 - hl);
        write_all(bad, b, bn);
        char what[128];
        snprintf(what, sizeof what, "checkpoint with %s", cases[c].to);
        expect_load(what, bad, cases[c].field);
        char seed[64];
        snprintf(seed, sizeof seed, "ckpt-bad-%zu.safetensors", c);
        save_seed(seed, b, bn);
        free(b);
        free(json);
    }
    free(orig);
}

int main(int argc, char **argv) {
    g_corpus = argc > 1 ? argv[1] : NULL;
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/fb_load_hostile_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmp)) { fprintf(stderr, "mkdtemp failed\n"); return 1; }
    gguf_cases("llama", 1, FB_GGML_F32, "f32");
    gguf_cases("llama", 1, FB_GGML_Q8_0, "q8_0");
    gguf_cases("gpt2", 0, FB_GGML_F32, "f32");
    checkpoint_cases();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    return fb_test_finish("model_load_hostile");
}
