/* Bad vocabulary files fail with a status and a message naming the file and
 * the offset or line; the byte tokenizer and the sentencepiece constructor. */
#include "flashblock_tokenizer.h"
#include "test_util.h"
#include "tokenizer/tok_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void put(const char *name, const void *data, size_t n) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static void expect_fail(const char *spec, fb_status want, const char *must1, const char *must2) {
    fb_tokenizer *t = NULL;
    fb_status st = fb_tokenizer_load(&t, spec);
    const char *msg = fb_last_error();
    FB_CHECK(st == want && t == NULL, "%s: status %d, want %d (%s)", spec, st, want, msg);
    FB_CHECK(strstr(msg, must1) != NULL, "%s: message \"%s\" lacks \"%s\"", spec, msg, must1);
    FB_CHECK(!must2 || strstr(msg, must2) != NULL, "%s: message \"%s\" lacks \"%s\"", spec, msg, must2);
    fb_tokenizer_free(t);
}

static void gpt2_case(const char *json, const char *bpe, const char *must1, const char *must2) {
    put("encoder.json", json, strlen(json));
    put("vocab.bpe", bpe, strlen(bpe));
    char spec[128];
    snprintf(spec, sizeof spec, "gpt2:%s", dir);
    expect_fail(spec, FB_ERR_FORMAT, must1, must2);
}

/* a minimal valid GPT-2 style encoder.json: the 256 byte tokens plus extra */
static char *byte_json(const char *extra) {
    int32_t b2u[256];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        b2u[b] = keep ? b : 256 + n++;
    }
    char *s = malloc(16384), *p = s;
    p += sprintf(p, "{");
    for (int b = 0; b < 256; b++) {
        unsigned cp = (unsigned)b2u[b];
        char u[8];
        if (cp == '"' || cp == '\\') sprintf(u, "\\%c", cp);
        else if (cp < 0x80) sprintf(u, "%c", cp);
        else sprintf(u, "%c%c", 0xC0 | (cp >> 6), 0x80 | (cp & 0x3F));
        p += sprintf(p, "%s\"%s\": %d", b ? ", " : "", u, b);
    }
    sprintf(p, "%s}", extra);
    return s;
}

int main(void) {
    strcpy(dir, "/tmp/fb_tok_err_XXXXXX");
    FB_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char spec[256];

    /* missing files */
    expect_fail("gpt2:/nonexistent/dir", FB_ERR_IO, "/nonexistent/dir/encoder.json", NULL);
    expect_fail("llama2c:/nonexistent/tok.bin", FB_ERR_IO, "/nonexistent/tok.bin", NULL);
    expect_fail("/nonexistent/vocab.txt", FB_ERR_IO, "/nonexistent/vocab.txt", NULL);
    expect_fail("gpt2:", FB_ERR_INVALID_ARG, "missing", NULL);

    /* GPT-2 */
    gpt2_case("{\"a\": 0,", "#version: 0.2\n", "encoder.json: offset", "invalid JSON");
    gpt2_case("{\"a\": 0} x", "#version: 0.2\n", "encoder.json: offset 9", NULL);
    gpt2_case("[1, 2]", "#version: 0.2\n", "encoder.json", "JSON object");
    gpt2_case("{\"a\": \"zero\"}", "", "encoder.json", "not an integer");
    gpt2_case("{\"a\": 5}", "", "encoder.json", "out of range");
    gpt2_case("{\"a\": 0, \"b\": 0}", "", "encoder.json", "duplicate id");
    gpt2_case("{\"a b\": 0}", "", "encoder.json", "U+0020");
    gpt2_case("{\"a\": 0}", "", "encoder.json", "no token for the single byte");
    char *j = byte_json(", \"ab\": 256");
    gpt2_case(j, "#version: 0.2\na b\nx q z\n", "vocab.bpe: line 3", "two tokens");
    gpt2_case(j, "#version: 0.2\na b\nab \xc4\xa0zz\n", "vocab.bpe: line 3", "unknown token");
    gpt2_case(j, "#version: 0.2\na b\nb c\n", "vocab.bpe: line 3", "not in the vocabulary");
    gpt2_case(j, "#version: 0.2\na  b\n\na \x7f\n", "vocab.bpe: line 4", "U+007F");
    /* and the same files minus the bad lines are accepted */
    put("vocab.bpe", "#version: 0.2\na b\n", 18);
    snprintf(spec, sizeof spec, "gpt2:%s", dir);
    fb_tokenizer *t = NULL;
    FB_CHECK(fb_tokenizer_load(&t, spec) == FB_OK, "small gpt2 vocabulary: %s", fb_last_error());
    if (t) {
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        fb_tokenizer_encode(t, "abab", 4, 0, &ids, &n, &cap);
        FB_CHECK(n == 2 && ids[0] == 256 && ids[1] == 256, "small gpt2 encode");
        FB_CHECK(fb_tokenizer_eos_id(t) == -1, "no <|endoftext|> -> no eos");
        free(ids);
        fb_tokenizer_free(t);
    }
    free(j);

    /* llama2c */
    snprintf(spec, sizeof spec, "llama2c:%s/tok.bin", dir);
    put("tok.bin", "\x07\x00", 2);
    expect_fail(spec, FB_ERR_FORMAT, "tok.bin: offset 0", "truncated");
    unsigned char b[64];
    int32_t v = 7; float sc = 0;
    memcpy(b, &v, 4); memcpy(b + 4, &sc, 4); v = 1; memcpy(b + 8, &v, 4); b[12] = 'a';
    memcpy(b + 13, &sc, 4); v = -3; memcpy(b + 17, &v, 4);
    put("tok.bin", b, 21);
    expect_fail(spec, FB_ERR_FORMAT, "tok.bin: offset 17", "negative length");
    v = 100; memcpy(b + 17, &v, 4);
    put("tok.bin", b, 25);
    expect_fail(spec, FB_ERR_FORMAT, "tok.bin: offset 17", "past the end");
    put("tok.bin", b, 16);
    expect_fail(spec, FB_ERR_FORMAT, "tok.bin: offset 13", "truncated");
    put("tok.bin", b, 13);
    FB_CHECK(fb_tokenizer_load(&t, spec) == FB_OK && fb_tokenizer_vocab_size(t) == 1, "one-token vocabulary loads");
    if (t) {   /* no " ", no byte pieces: everything falls back to id 0 and decodes */
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        FB_CHECK(fb_tokenizer_encode(t, "aba", 3, FB_TOK_ADD_BOS, &ids, &n, &cap) == FB_OK, "encode");
        free(ids);
        fb_tokenizer_free(t);
    }
    /* fb_tokenizer_load_llama2c with a vocabulary size larger than the file */
    {
        char p[128]; snprintf(p, sizeof p, "%s/tok.bin", dir);
        FB_CHECK(fb_tokenizer_load_llama2c(&t, p, 5) == FB_ERR_FORMAT && strstr(fb_last_error(), "token 1"), "vocab_size 5: %s", fb_last_error());
    }

    /* trained format */
    snprintf(spec, sizeof spec, "%s/v.bpe", dir);
    const char *bad[][3] = {
        { "hello\n", "line 1", "not a flashblock-bpe" },
        { "flashblock-bpe 1\nvocab_size x\n", "line 2", "vocab_size" },
        { "flashblock-bpe 1\nvocab_size 258\nmerges 1\n97 97\n", "line 3", "inconsistent" },
        { "flashblock-bpe 1\nvocab_size 258\nspecial <|endoftext|> 257\nmerges 1\n", "line 5", "truncated" },
        { "flashblock-bpe 1\nvocab_size 258\nspecial <|endoftext|> 257\nmerges 1\n97 256\n", "line 5", "unknown token 256" },
        { "flashblock-bpe 1\nvocab_size 258\nspecial <|endoftext|> 257\nmerges 1\n97 x\n", "line 5", "two decimal ids" },
        { "flashblock-bpe 1\nvocab_size 258\nspecial <|endoftext|> 257\nmerges 1\n97 97\n1 2\n", "line 6", "after the last merge" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put("v.bpe", bad[i][0], strlen(bad[i][0]));
        expect_fail(spec, FB_ERR_FORMAT, bad[i][1], bad[i][2]);
        FB_CHECK(strstr(fb_last_error(), "v.bpe") != NULL, "names the file");
    }

    /* byte tokenizer */
    FB_CHECK(fb_tokenizer_load(&t, "byte") == FB_OK, "byte");
    FB_CHECK(fb_tokenizer_vocab_size(t) == 256 && fb_tokenizer_bos_id(t) == -1 && fb_tokenizer_eos_id(t) == -1, "byte ids");
    {
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        fb_tokenizer_encode(t, "\xff\x00z", 3, FB_TOK_ADD_BOS | FB_TOK_ADD_EOS, &ids, &n, &cap);
        FB_CHECK(n == 3 && ids[0] == 255 && ids[1] == 0 && ids[2] == 'z', "byte encode");
        int32_t badid = 256;
        char *out; size_t ol;
        FB_CHECK(fb_tokenizer_decode(t, &badid, 1, &out, &ol) == FB_ERR_INVALID_ARG, "decode out of range");
        FB_CHECK(fb_tokenizer_encode(t, "a", 1, 0x80, &ids, &n, &cap) == FB_ERR_INVALID_ARG, "bad flags");
        free(ids);
    }
    fb_tokenizer_free(t);

    /* sentencepiece constructor (GGUF style, with U+2581) matches the llama2c file */
    {
        const char *pieces[] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab", "\xe2\x96\x81" "ab" };
        float scores[] = { 0, 0, 0, -1, -2, -3, -4, -5, -6 };
        FB_CHECK(fb_tokenizer_from_sentencepiece(&t, pieces, scores, 9, 1, 2) == FB_OK, "from_sentencepiece: %s", fb_last_error());
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        fb_tokenizer_encode(t, "ab", 2, FB_TOK_ADD_BOS | FB_TOK_ADD_EOS, &ids, &n, &cap);
        /* " ","a","b" -> best score: " a"(-4) vs "ab"(-5) -> " a","b" -> " ab"(-6) */
        FB_CHECK(n == 3 && ids[0] == 1 && ids[1] == 8 && ids[2] == 2, "sentencepiece encode: n=%zu", n);
        char *out; size_t ol;
        fb_tokenizer_decode(t, ids, n, &out, &ol);
        /* BOS emits nothing and strips the next piece's leading space; EOS prints its piece as run.c */
        FB_CHECK(ol == 6 && memcmp(out, "ab</s>", 6) == 0, "sentencepiece decode: \"%.*s\"", (int)ol, out);
        free(out); free(ids);
        fb_tokenizer_free(t);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return fb_test_finish("test_tokenizer_errors");
}
