/* llama2.c tokenizer: known ids (tok512), the reference run's prompt ids and
 * decoded text, and id-for-id equality with a literal port of run.c's
 * encode() (O(n^2), bsearch vocabulary) on the stress set, Tiny Shakespeare
 * chunks and random bytes, for tok512.bin and the 32000-token tokenizer.bin. */
#include "flashblock_tokenizer.h"
#include "test_util.h"
#include "tokenizer/tok_internal.h"
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reference: llama2.c run.c (commit 350e04fe), transcribed ---------- */
typedef struct { char *str; int id; } TokenIndex;
typedef struct { char **vocab; float *vocab_scores; TokenIndex *sorted_vocab; int vocab_size; unsigned max_token_length; } Ref;
static int compare_tokens(const void *a, const void *b) { return strcmp(((const TokenIndex *)a)->str, ((const TokenIndex *)b)->str); }
static int str_lookup(char *str, TokenIndex *sv, int n) {
    TokenIndex tok = { .str = str };
    TokenIndex *res = bsearch(&tok, sv, (size_t)n, sizeof(TokenIndex), compare_tokens);
    return res != NULL ? res->id : -1;
}
static void ref_load(Ref *t, const char *path) {
    char *d; size_t n;
    if (fb_tok_read_file(path, &d, &n) != FB_OK) { fprintf(stderr, "%s\n", fb_last_error()); exit(1); }
    size_t o = 4; int cnt = 0;
    while (o < n) { int l; memcpy(&l, d + o + 4, 4); o += 8 + (size_t)l; cnt++; }
    t->vocab_size = cnt;
    memcpy(&t->max_token_length, d, 4);
    t->vocab = malloc((size_t)cnt * sizeof(char *));
    t->vocab_scores = malloc((size_t)cnt * sizeof(float));
    o = 4;
    for (int i = 0; i < cnt; i++) {
        int l;
        memcpy(t->vocab_scores + i, d + o, 4); memcpy(&l, d + o + 4, 4);
        t->vocab[i] = malloc((size_t)l + 1); memcpy(t->vocab[i], d + o + 8, (size_t)l); t->vocab[i][l] = 0;
        o += 8 + (size_t)l;
    }
    free(d);
    t->sorted_vocab = malloc((size_t)cnt * sizeof(TokenIndex));
    for (int i = 0; i < cnt; i++) { t->sorted_vocab[i].str = t->vocab[i]; t->sorted_vocab[i].id = i; }
    qsort(t->sorted_vocab, (size_t)cnt, sizeof(TokenIndex), compare_tokens);
}
static void ref_free(Ref *t) {
    for (int i = 0; i < t->vocab_size; i++) free(t->vocab[i]);
    free(t->vocab); free(t->vocab_scores); free(t->sorted_vocab);
}
static void ref_encode(Ref *t, char *text, int bos, int eos, int *tokens, int *n_tokens) {
    char *str_buffer = malloc((t->max_token_length * 2 + 1 + 2) * sizeof(char));
    size_t str_len = 0;
    *n_tokens = 0;
    if (bos) tokens[(*n_tokens)++] = 1;
    if (text[0] != '\0') tokens[(*n_tokens)++] = str_lookup(" ", t->sorted_vocab, t->vocab_size);
    for (char *c = text; *c != '\0'; c++) {
        if ((*c & 0xC0) != 0x80) str_len = 0;
        str_buffer[str_len++] = *c;
        str_buffer[str_len] = '\0';
        if ((*(c + 1) & 0xC0) == 0x80 && str_len < 4) continue;
        int id = str_lookup(str_buffer, t->sorted_vocab, t->vocab_size);
        if (id != -1) tokens[(*n_tokens)++] = id;
        else for (size_t i = 0; i < str_len; i++) tokens[(*n_tokens)++] = (unsigned char)str_buffer[i] + 3;
        str_len = 0;
    }
    while (1) {
        float best_score = -1e10; int best_id = -1; int best_idx = -1;
        for (int i = 0; i < (*n_tokens - 1); i++) {
            sprintf(str_buffer, "%s%s", t->vocab[tokens[i]], t->vocab[tokens[i + 1]]);
            int id = str_lookup(str_buffer, t->sorted_vocab, t->vocab_size);
            if (id != -1 && t->vocab_scores[id] > best_score) { best_score = t->vocab_scores[id]; best_id = id; best_idx = i; }
        }
        if (best_idx == -1) break;
        tokens[best_idx] = best_id;
        for (int i = best_idx + 1; i < (*n_tokens - 1); i++) tokens[i] = tokens[i + 1];
        (*n_tokens)--;
    }
    if (eos) tokens[(*n_tokens)++] = 2;
    free(str_buffer);
}
/* ----------------------------------------------------------------------- */

static int compared = 0;
static void compare(Ref *ref, const fb_tokenizer *t, const char *s, size_t len, const char *what) {
    /* run.c sees a C string: stop at the first NUL like it does */
    size_t cl = strnlen(s, len);
    char *z = malloc(cl + 1);
    memcpy(z, s, cl); z[cl] = 0;
    int *want = malloc((cl + 3) * sizeof(int)), nw = 0;
    for (int flags = 0; flags < 4; flags++) {
        ref_encode(ref, z, flags & 1, (flags >> 1) & 1, want, &nw);
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        fb_status st = fb_tokenizer_encode(t, z, cl, (unsigned)flags, &ids, &n, &cap);
        int same = st == FB_OK && n == (size_t)nw;
        for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
        FB_CHECK(same, "%s: %s (flags %d): %zu ids vs run.c %d", what, fb_tokenizer_spec(t), flags, n, nw);
        free(ids);
    }
    compared++;
    free(want); free(z);
}

static void check_tok(const char *rel, const char *cases_path, const char *shakes, size_t shakes_len) {
    Ref ref;
    const char *path = fb_test_data_path(rel);
    ref_load(&ref, path);
    char spec[4200];
    snprintf(spec, sizeof spec, "llama2c:%s", path);
    fb_tokenizer *t = NULL;
    if (fb_tokenizer_load(&t, spec) != FB_OK) { FB_CHECK(0, "load %s: %s", spec, fb_last_error()); ref_free(&ref); return; }
    FB_CHECK(fb_tokenizer_vocab_size(t) == ref.vocab_size, "vocab size");
    char *cj; size_t cjl;
    fb_tok_read_file(cases_path, &cj, &cjl);
    json_object *root = json_tokener_parse(cj);
    for (size_t i = 0; i < json_object_array_length(root); i++) {
        json_object *s = json_object_array_get_idx(root, i);
        compare(&ref, t, json_object_get_string(s), (size_t)json_object_get_string_len(s), "stress case");
    }
    json_object_put(root); free(cj);
    /* Tiny Shakespeare in 1 KB chunks (run.c is quadratic) */
    for (size_t off = 0; off + 1024 <= shakes_len; off += 100000) compare(&ref, t, shakes + off, 1024, "shakespeare chunk");
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 11);
    char buf[600];
    for (int it = 0; it < 120; it++) {
        size_t l = (size_t)(fb_test_rng_u64(&rng) % sizeof buf);
        for (size_t i = 0; i < l; i++) {
            uint64_t r = fb_test_rng_u64(&rng);
            buf[i] = it % 2 ? (char)(r | 1) : (char)(" ab\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80<0x>"[r % 17]);
        }
        compare(&ref, t, buf, l, "random bytes");
    }
    /* decode: run.c decode() per token; byte pieces become bytes; round trip of valid text */
    const char *txt = "Hello world! caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\n  x";
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    fb_tokenizer_encode(t, txt, strlen(txt), FB_TOK_ADD_BOS, &ids, &n, &cap);
    char *out; size_t ol;
    FB_CHECK(fb_tokenizer_decode(t, ids, n, &out, &ol) == FB_OK, "decode");
    FB_CHECK(ol == strlen(txt) && memcmp(out, txt, ol) == 0, "%s: decode(encode(x)) with BOS: got \"%.*s\"", rel, (int)ol, out);
    free(out); free(ids);
    fb_tokenizer_free(t);
    ref_free(&ref);
}

int main(void) {
    const char *p512 = fb_test_data_path("llama2c/tok512.bin");
    char spec[4200];
    snprintf(spec, sizeof spec, "llama2c:%s", p512);
    fb_tokenizer *t = NULL;
    if (fb_tokenizer_load(&t, spec) != FB_OK) { fprintf(stderr, "%s\n", fb_last_error()); return 1; }
    FB_CHECK(fb_tokenizer_vocab_size(t) == 512 && fb_tokenizer_bos_id(t) == 1 && fb_tokenizer_eos_id(t) == 2, "tok512 ids");
    {
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        fb_tokenizer_encode(t, "Once upon a time", 16, FB_TOK_ADD_BOS, &ids, &n, &cap);
        static const int32_t w[] = { 1, 403, 407, 261, 378 };
        FB_CHECK(n == 5 && memcmp(ids, w, sizeof w) == 0, "Once upon a time");
        fb_tokenizer_encode(t, "", 0, FB_TOK_ADD_BOS | FB_TOK_ADD_EOS, &ids, &n, &cap);
        FB_CHECK(n == 2 && ids[0] == 1 && ids[1] == 2, "empty text: BOS EOS only");
        free(ids);
    }
    /* the reference run: prompt ids and the decoded sequence == run.c stdout */
    {
        char *ref = NULL, *txt = NULL; size_t rl, tl;
        fb_tok_read_file(fb_test_data_path("llama2c/reference/stories260K_greedy_lily_ids.txt"), &ref, &rl);
        fb_tok_read_file(fb_test_data_path("llama2c/reference/stories260K_greedy_lily.txt"), &txt, &tl);
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        fb_tokenizer_encode(t, "Lily wanted to", 14, FB_TOK_ADD_BOS, &ids, &n, &cap);
        static const int32_t w[] = { 1, 317, 391, 266, 267 };
        FB_CHECK(n == 5 && memcmp(ids, w, sizeof w) == 0, "Lily wanted to");
        char *seq = strstr(ref, "sequence: [");
        FB_CHECK(seq != NULL, "reference file format");
        if (seq) {
            int32_t all[600]; size_t na = 0;
            for (char *p = seq + 11; *p && na < 600;) {
                if (*p >= '0' && *p <= '9') all[na++] = (int32_t)strtol(p, &p, 10);
                else p++;
            }
            char *out; size_t ol;
            fb_tokenizer_decode(t, all, na, &out, &ol);
            /* run.c prints every token after BOS, then "\n" */
            FB_CHECK(ol + 1 == tl && memcmp(out, txt, ol) == 0 && txt[ol] == '\n', "decoded reference run differs from run.c output");
            /* streaming decoder gives the same bytes */
            fb_token_decoder *d; fb_token_decoder_init(&d, t);
            size_t pos = 0; int same = 1;
            for (size_t i = 0; i < na; i++) {
                const char *b; size_t bl;
                fb_token_decoder_push(d, all[i], &b, &bl);
                if (pos + bl > ol || memcmp(out + pos, b, bl)) same = 0;
                pos += bl;
            }
            FB_CHECK(same && pos == ol, "streaming decode of the reference run");
            fb_token_decoder_free(d);
            free(out);
        }
        free(ids); free(ref); free(txt);
    }
    fb_tokenizer_free(t);

    char *shakes; size_t sl;
    fb_tok_read_file(fb_test_data_path("tinyshakespeare/input.txt"), &shakes, &sl);
    check_tok("llama2c/tok512.bin", FB_SOURCE_DIR "/tests/tokenizer/stress/gpt2_stress.json", shakes, sl);
    check_tok("llama2c/tokenizer.bin", FB_SOURCE_DIR "/tests/tokenizer/stress/gpt2_stress.json", shakes, sl);
    /* the whole corpus through the fast encoder round-trips */
    {
        fb_tokenizer *t2;
        snprintf(spec, sizeof spec, "llama2c:%s", fb_test_data_path("llama2c/tokenizer.bin"));
        fb_tokenizer_load(&t2, spec);
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        FB_CHECK(fb_tokenizer_encode(t2, shakes, sl, 0, &ids, &n, &cap) == FB_OK, "encode corpus");
        char *out; size_t ol;
        fb_tokenizer_decode(t2, ids, n, &out, &ol);
        /* no BOS: the dummy-prefix space stays */
        FB_CHECK(ol == sl + 1 && out[0] == ' ' && memcmp(out + 1, shakes, sl) == 0, "corpus round trip");
        free(out); free(ids);
        fb_tokenizer_free(t2);
    }
    free(shakes);
    printf("compared %d inputs x 4 flag sets with run.c\n", compared);
    return fb_test_finish("test_tokenizer_llama2c");
}
