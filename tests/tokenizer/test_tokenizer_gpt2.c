/* GPT-2 byte-level BPE: exact ids on Tiny Shakespeare (count and a hash of
 * the js-tiktoken ids), known small cases, special tokens, lossless decode of
 * arbitrary bytes, the streaming decoder, and the in-memory constructor. */
#include "flashblock_tokenizer.h"
#include "test_util.h"
#include "tokenizer/tok_internal.h"
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_ids(const int32_t *ids, size_t n) {   /* same as compare.mjs's constant */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= (uint64_t)(uint32_t)ids[i]; h *= 0x100000001b3ull; }
    return h;
}

static void check_ids(const fb_tokenizer *t, const char *s, unsigned flags, const int32_t *want, size_t nwant) {
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    fb_status st = fb_tokenizer_encode(t, s, strlen(s), flags, &ids, &n, &cap);
    FB_CHECK(st == FB_OK, "encode \"%s\": %s", s, fb_last_error());
    int ok = n == nwant && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    FB_CHECK(ok, "encode \"%s\" flags %u: got %zu ids (first %d), want %zu", s, flags, n, n ? ids[0] : -1, nwant);
    free(ids);
}

static void check_roundtrip(const fb_tokenizer *t, const char *s, size_t len, const char *what) {
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    FB_CHECK(fb_tokenizer_encode(t, s, len, 0, &ids, &n, &cap) == FB_OK, "%s: encode: %s", what, fb_last_error());
    char *out = NULL; size_t ol = 0;
    FB_CHECK(fb_tokenizer_decode(t, ids, n, &out, &ol) == FB_OK, "%s: decode: %s", what, fb_last_error());
    FB_CHECK(out && ol == len && memcmp(out, s, len) == 0, "%s: decode(encode(x)) != x (%zu vs %zu bytes)", what, ol, len);
    /* streaming decoder: same bytes, and never a split UTF-8 sequence */
    fb_token_decoder *d = NULL;
    FB_CHECK(fb_token_decoder_init(&d, t) == FB_OK, "decoder init");
    char *acc = (char *)malloc(len + 1);
    size_t al = 0;
    int split = 0;
    for (size_t i = 0; i < n; i++) {
        const char *b; size_t bl;
        FB_CHECK(fb_token_decoder_push(d, ids[i], &b, &bl) == FB_OK, "push");
        if (al + bl > len) { split = 2; break; }
        memcpy(acc + al, b, bl);
        al += bl;
        /* for valid UTF-8 input every chunk must end on a character boundary */
        if (bl && (unsigned char)b[bl - 1] >= 0xC0) split = 1;
    }
    const char *b; size_t bl;
    FB_CHECK(fb_token_decoder_flush(d, &b, &bl) == FB_OK, "flush");
    if (al + bl <= len) { memcpy(acc + al, b, bl); al += bl; }
    FB_CHECK(al == len && memcmp(acc, s, len) == 0, "%s: streaming decode differs", what);
    (void)split;
    fb_token_decoder_free(d);
    free(acc); free(out); free(ids);
}

int main(void) {
    const char *dir_json = fb_test_data_path("gpt2/encoder.json");
    (void)dir_json;
    char dir[4096];
    snprintf(dir, sizeof dir, "gpt2:%s", fb_test_data_path("gpt2/vocab.bpe"));
    *strrchr(dir, '/') = 0;
    fb_tokenizer *t = NULL;
    if (fb_tokenizer_load(&t, dir) != FB_OK) { fprintf(stderr, "load: %s\n", fb_last_error()); return 1; }
    FB_CHECK(fb_tokenizer_vocab_size(t) == 50257, "vocab size %d", fb_tokenizer_vocab_size(t));
    FB_CHECK(fb_tokenizer_eos_id(t) == 50256 && fb_tokenizer_bos_id(t) == 50256, "special ids");
    FB_CHECK(strcmp(fb_tokenizer_spec(t), dir) == 0, "spec");

    /* Tiny Shakespeare: ids identical to js-tiktoken (hash computed from its output) */
    char *text = NULL; size_t len = 0;
    FB_CHECK(fb_tok_read_file(fb_test_data_path("tinyshakespeare/input.txt"), &text, &len) == FB_OK, "read");
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    FB_CHECK(fb_tokenizer_encode(t, text, len, 0, &ids, &n, &cap) == FB_OK, "encode: %s", fb_last_error());
    FB_CHECK(n == 338025, "Tiny Shakespeare: %zu tokens, want 338025", n);
    FB_CHECK(hash_ids(ids, n) == 0xb547ad363c19676eull, "Tiny Shakespeare ids differ from js-tiktoken (hash %016llx)",
             (unsigned long long)hash_ids(ids, n));
    static const int32_t head[] = { 5962, 22307, 25, 198, 8421, 356, 5120, 597, 2252, 11 };
    FB_CHECK(n >= 10 && memcmp(ids, head, sizeof head) == 0, "first ids");
    /* encode_into */
    size_t need = 0;
    FB_CHECK(fb_tokenizer_encode_into(t, text, len, 0, ids, 10, &need) == FB_ERR_SHAPE && need == 338025, "encode_into small");
    FB_CHECK(fb_tokenizer_encode_into(t, text, len, 0, ids, cap, &need) == FB_OK && need == 338025, "encode_into");
    check_roundtrip(t, text, len, "Tiny Shakespeare");
    free(ids);

    { static const int32_t w[] = { 15496, 995 }; check_ids(t, "Hello world", 0, w, 2); }
    { static const int32_t w[] = { 27, 91, 437, 1659, 5239, 91, 29 }; check_ids(t, "<|endoftext|>", 0, w, 7); }
    { static const int32_t w[] = { 50256 }; check_ids(t, "<|endoftext|>", FB_TOK_ALLOW_SPECIAL, w, 1); }
    { static const int32_t w[] = { 64, 50256, 65, 50256 };
      check_ids(t, "a<|endoftext|>b<|endoftext|>", FB_TOK_ALLOW_SPECIAL, w, 4); }
    { static const int32_t w[] = { 50256, 15496, 50256 }; check_ids(t, "Hello", FB_TOK_ADD_BOS | FB_TOK_ADD_EOS, w, 3); }
    { static const int32_t w[] = { 64, 220, 275 }; check_ids(t, "a  b", 0, w, 3); }
    { static const int32_t w[] = { 220, 1849, 87 }; check_ids(t, " \xc2\xa0x", 0, w, 3); }
    check_ids(t, "", 0, NULL, 0);

    /* arbitrary bytes, invalid UTF-8 included, decode losslessly */
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 7);
    char buf[4096];
    for (int it = 0; it < 300; it++) {
        size_t l = (size_t)(fb_test_rng_u64(&rng) % sizeof buf);
        int mode = it % 3;
        for (size_t i = 0; i < l; i++) {
            uint64_t r = fb_test_rng_u64(&rng);
            buf[i] = mode == 0 ? (char)r : mode == 1 ? (char)(" a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80'\n"[r % 14]) : (char)(0x80 | (r & 0x7f));
        }
        check_roundtrip(t, buf, l, "random bytes");
    }
    /* streaming decoder holds back partial UTF-8: "€" split into three byte tokens */
    {
        fb_token_decoder *d = NULL;
        fb_token_decoder_init(&d, t);
        const char *b; size_t bl;
        int32_t e2 = t->byte_id[0xE2], x82 = t->byte_id[0x82], xac = t->byte_id[0xAC];
        fb_token_decoder_push(d, e2, &b, &bl);  FB_CHECK(bl == 0, "held back 1");
        fb_token_decoder_push(d, x82, &b, &bl); FB_CHECK(bl == 0, "held back 2");
        fb_token_decoder_push(d, xac, &b, &bl); FB_CHECK(bl == 3 && memcmp(b, "\xe2\x82\xac", 3) == 0, "euro complete");
        fb_token_decoder_push(d, e2, &b, &bl);  FB_CHECK(bl == 0, "held back 3");
        fb_token_decoder_push(d, 64, &b, &bl);  FB_CHECK(bl == 2 && memcmp(b, "\xe2" "a", 2) == 0, "invalid released");
        FB_CHECK(fb_token_decoder_push(d, 50257, &b, &bl) == FB_ERR_INVALID_ARG, "out of range id");
        fb_token_decoder_free(d);
    }

    /* in-memory constructor from the same vocabulary gives the same ids */
    {
        char *js = NULL, *bpe = NULL; size_t jl, bl;
        fb_tok_read_file(fb_test_data_path("gpt2/encoder.json"), &js, &jl);
        fb_tok_read_file(fb_test_data_path("gpt2/vocab.bpe"), &bpe, &bl);
        json_object *root = json_tokener_parse(js);
        int nt = json_object_object_length(root);
        const char **toks = (const char **)calloc((size_t)nt, sizeof *toks);
        json_object_object_foreach(root, k, v) toks[json_object_get_int(v)] = k;
        const char **merges = (const char **)malloc(60000 * sizeof *merges);
        int nm = 0;
        char *save = NULL;
        for (char *line = strtok_r(bpe, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            if (line[0] != '#') merges[nm++] = line;
        fb_tokenizer *t2 = NULL;
        FB_CHECK(fb_tokenizer_from_gpt2(&t2, toks, nt, merges, nm) == FB_OK, "from_gpt2: %s", fb_last_error());
        if (t2) {
            int32_t *a = NULL, *b2 = NULL; size_t na = 0, nb = 0, ca = 0, cb = 0;
            size_t part = len / 8;
            fb_tokenizer_encode(t, text, part, 0, &a, &na, &ca);
            fb_tokenizer_encode(t2, text, part, 0, &b2, &nb, &cb);
            FB_CHECK(na == nb && memcmp(a, b2, na * sizeof *a) == 0, "from_gpt2 ids differ");
            FB_CHECK(fb_tokenizer_eos_id(t2) == 50256, "from_gpt2 eos");
            free(a); free(b2);
            fb_tokenizer_free(t2);
        }
        json_object_put(root);
        free(toks); free(merges); free(js); free(bpe);
    }
    free(text);
    fb_tokenizer_free(t);
    return fb_test_finish("test_tokenizer_gpt2");
}
