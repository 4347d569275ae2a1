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

/* Naive trainer (recount every pair each step) to check the incremental one. */
static int naive_merges(const char *s, size_t len, int nmerge, int32_t *ma, int32_t *mb) {
    fb_pretok_init();
    size_t cap = len + 1, nw = 0;
    int32_t *sym = malloc(cap * sizeof *sym);
    size_t *off = malloc((len + 1) * sizeof *off), *wl = malloc((len + 1) * sizeof *wl);
    size_t o = 0;
    for (size_t pos = 0; pos < len;) {
        size_t e = fb_pretok_next((const unsigned char *)s, len, pos);
        off[nw] = o; wl[nw] = e - pos;
        for (size_t k = pos; k < e; k++) sym[o++] = (unsigned char)s[k];
        nw++; pos = e;
    }
    int done = 0;
    int64_t *cnt = calloc((size_t)(256 + nmerge) * (256 + nmerge), sizeof *cnt);
    int V = 256 + nmerge;
    for (; done < nmerge; done++) {
        memset(cnt, 0, (size_t)V * V * sizeof *cnt);
        for (size_t w = 0; w < nw; w++)
            for (size_t k = 0; k + 1 < wl[w]; k++) cnt[(size_t)sym[off[w] + k] * V + sym[off[w] + k + 1]]++;
        int64_t best = 0; int ba = -1, bb = -1;
        for (int a = 0; a < V; a++) for (int b = 0; b < V; b++) if (cnt[(size_t)a * V + b] > best) { best = cnt[(size_t)a * V + b]; ba = a; bb = b; }
        if (ba < 0) break;
        ma[done] = ba; mb[done] = bb;
        for (size_t w = 0; w < nw; w++) {
            int32_t *y = sym + off[w]; size_t L = wl[w], q = 0;
            for (size_t k = 0; k < L;) {
                if (k + 1 < L && y[k] == ba && y[k + 1] == bb) { y[q++] = 256 + done; k += 2; } else y[q++] = y[k++];
            }
            wl[w] = q;
        }
    }
    free(cnt); free(sym); free(off); free(wl);
    return done;
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
    /* incremental trainer == naive trainer on a 60 KB slice */
    {
        int nmerge = 300;
        int32_t ma[300], mb[300];
        int got = naive_merges(text, 60000, nmerge, ma, mb);
        FB_CHECK(fb_tokenizer_train_bpe(text, 60000, 256 + nmerge + 1, p2, NULL, NULL) == FB_OK, "train slice");
        char *v; size_t vl;
        fb_tok_read_file(p2, &v, &vl);
        char *p = strstr(v, "\nmerges ");
        int nm = p ? atoi(p + 8) : -1;
        FB_CHECK(nm == got, "merges %d vs naive %d", nm, got);
        p = p ? strchr(p + 1, '\n') : NULL;
        for (int i = 0; p && i < got && i < nm; i++) {
            int a = (int)strtol(p + 1, &p, 10), b = (int)strtol(p, &p, 10);
            if (a != ma[i] || b != mb[i]) { FB_CHECK(0, "merge %d: (%d,%d) vs naive (%d,%d)", i, a, b, ma[i], mb[i]); break; }
        }
        free(v);
    }
    free(text);
    unlink(p1); unlink(p2); rmdir(dir);
    return fb_test_finish("test_tokenizer_train");
}
