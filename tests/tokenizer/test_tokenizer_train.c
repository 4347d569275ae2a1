/* BPE training: determinism, the file format round trip, encode/decode with
 * a trained vocabulary, small and degenerate corpora, and the 4096-token
 * Tiny Shakespeare training time (must stay well under a minute). */
#include "flashblock_tokenizer.h"
#include "test_util.h"
#include "tokenizer/tok_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }

static void roundtrip(const fb_tokenizer *t, const char *s, size_t len) {
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    FB_CHECK(fb_tokenizer_encode(t, s, len, 0, &ids, &n, &cap) == FB_OK, "encode: %s", fb_last_error());
    char *out; size_t ol;
    FB_CHECK(fb_tokenizer_decode(t, ids, n, &out, &ol) == FB_OK, "decode");
    FB_CHECK(ol == len && memcmp(out, s, len) == 0, "round trip");
    free(out); free(ids);
}

int main(void) {
    char tmpl[] = "/tmp/fb_tok_train_XXXXXX";
    char *dir = mkdtemp(tmpl);
    FB_CHECK(dir != NULL, "mkdtemp");
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/a.vocab", dir);
    snprintf(p2, sizeof p2, "%s/b.vocab", dir);

    /* tiny corpus: the first merge is the most frequent pair, ties by smallest ids */
    const char *small = "aaab aaab abab ba ba";
    FB_CHECK(fb_tokenizer_train_bpe(small, strlen(small), 260, p1, NULL, NULL) == FB_OK, "train small: %s", fb_last_error());
    char *f = NULL; size_t fl;
    fb_tok_read_file(p1, &f, &fl);
    /* pre-tokens: "aaab" x1, " aaab" x1, " abab", " ba" x2. pair counts: (a,a)=4, (a,b)=4, (' ',a)=2, (' ',b)=2, (b,a)=3...
       tie (a,a)=4 vs (a,b)=4 -> smallest left id then right id: (97,97) before (97,98) */
    FB_CHECK(f && strstr(f, "\nvocab_size 260\nspecial <|endoftext|> 259\nmerges 3\n97 97\n") != NULL, "small vocab file:\n%s", f ? f : "");
    free(f);
    fb_tokenizer *t = NULL;
    FB_CHECK(fb_tokenizer_load(&t, p1) == FB_OK, "load: %s", fb_last_error());
    if (t) {
        FB_CHECK(fb_tokenizer_vocab_size(t) == 260 && fb_tokenizer_eos_id(t) == 259, "ids");
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        fb_tokenizer_encode(t, "aa<|endoftext|>", 15, FB_TOK_ALLOW_SPECIAL, &ids, &n, &cap);
        FB_CHECK(n == 2 && ids[0] == 256 && ids[1] == 259, "encode with special: n=%zu", n);
        free(ids);
        roundtrip(t, small, strlen(small));
        fb_tokenizer_free(t);
    }
    /* degenerate corpora: empty, no pairs at all */
    FB_CHECK(fb_tokenizer_train_bpe("", 0, 300, p2, NULL, NULL) == FB_OK, "train empty");
    FB_CHECK(fb_tokenizer_load(&t, p2) == FB_OK && fb_tokenizer_vocab_size(t) == 257, "empty corpus vocab");
    fb_tokenizer_free(t);
    FB_CHECK(fb_tokenizer_train_bpe("x", 1, 256, p2, NULL, NULL) == FB_ERR_INVALID_ARG, "vocab 256 rejected");

    /* Tiny Shakespeare, 4096 tokens: time, determinism, round trip */
    char *text; size_t len;
    fb_tok_read_file(fb_test_data_path("tinyshakespeare/input.txt"), &text, &len);
    double t0 = now();
    FB_CHECK(fb_tokenizer_train_bpe(text, len, 4096, p1, NULL, NULL) == FB_OK, "train: %s", fb_last_error());
    double dt = now() - t0;
    printf("trained 4096-token vocabulary on %zu bytes in %.2f s\n", len, dt);
    FB_CHECK(dt < 60.0, "training took %.1f s (limit 60 s)", dt);
    FB_CHECK(fb_tokenizer_train_bpe(text, len, 4096, p2, NULL, NULL) == FB_OK, "train again");
    char *a, *b; size_t al, bl;
    fb_tok_read_file(p1, &a, &al);
    fb_tok_read_file(p2, &b, &bl);
    FB_CHECK(al == bl && memcmp(a, b, al) == 0, "training is not deterministic");
    free(a); free(b);
    FB_CHECK(fb_tokenizer_load(&t, p1) == FB_OK, "load trained: %s", fb_last_error());
    if (t) {
        FB_CHECK(fb_tokenizer_vocab_size(t) == 4096, "vocab %d", fb_tokenizer_vocab_size(t));
        int32_t *ids = NULL; size_t n = 0, cap = 0;
        fb_tokenizer_encode(t, text, len, 0, &ids, &n, &cap);
        printf("Tiny Shakespeare: %zu tokens with the trained vocabulary (%.2f bytes/token)\n", n, (double)len / n);
        FB_CHECK(n < len / 3, "compression too weak: %zu tokens", n);
        free(ids);
        roundtrip(t, text, len);
        const char *odd = "\xff\xfe invalid \xc3 utf8 \xf0\x9f\x98\x80 <|endoftext|>";
        roundtrip(t, odd, strlen(odd));
        fb_tokenizer_free(t);
    }
    free(text);
    unlink(p1); unlink(p2); rmdir(dir);
    return fb_test_finish("test_tokenizer_train");
}
