/* flashblock tokenize / detokenize / tokenizer train */
#include "cli/cli.h"
#include "flashblock.h"
#include "flashblock_tokenizer.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Read FILE or "-" (stdin) completely. */
static int slurp(const char *path, char **data, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return fb_cli_error("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = (char *)malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            char *nb = (char *)realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb; cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = !buf || ferror(f);
    if (f != stdin) fclose(f);
    if (err) { free(buf); return fb_cli_error("%s: read failed", path); }
    buf[n] = 0;
    *data = buf; *len = n;
    return 0;
}

static const char *tokenize_usage =
    "usage: flashblock tokenize --tokenizer SPEC [--ids] [--bos] [--eos] [--allow-special] [FILE|-]\n"
    "  SPEC: byte | gpt2:DIR | llama2c:FILE | TRAINED_VOCAB_FILE\n"
    "  --ids            print the token ids, space-separated (default: count and throughput)\n"
    "  --bos/--eos      add the BOS/EOS id (llama2c: 1/2; gpt2 and trained: <|endoftext|>)\n"
    "  --allow-special  recognise <|endoftext|> in the text\n";

int fb_cmd_tokenize(int argc, char **argv) {
    const char *spec = NULL, *file = "-";
    int ids_out = 0, nfile = 0;
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { fputs(tokenize_usage, stdout); return 0; }
        else if (strcmp(a, "--tokenizer") == 0) {
            if (++i >= argc) return fb_cli_usage_error("tokenize", "--tokenizer needs a value");
            spec = argv[i];
        } else if (strncmp(a, "--tokenizer=", 12) == 0) spec = a + 12;
        else if (strcmp(a, "--ids") == 0) ids_out = 1;
        else if (strcmp(a, "--bos") == 0) flags |= FB_TOK_ADD_BOS;
        else if (strcmp(a, "--eos") == 0) flags |= FB_TOK_ADD_EOS;
        else if (strcmp(a, "--allow-special") == 0) flags |= FB_TOK_ALLOW_SPECIAL;
        else if (a[0] == '-' && a[1]) return fb_cli_usage_error("tokenize", "unknown option '%s'", a);
        else { file = a; nfile++; }
    }
    if (!spec) return fb_cli_usage_error("tokenize", "--tokenizer SPEC is required");
    if (nfile > 1) return fb_cli_usage_error("tokenize", "expected at most one input file");
    fb_tokenizer *t = NULL;
    if (fb_tokenizer_load(&t, spec) != FB_OK) return fb_cli_error("%s", fb_last_error());
    char *text = NULL; size_t len = 0;
    int rc = slurp(file, &text, &len);
    if (rc) { fb_tokenizer_free(t); return rc; }
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    double t0 = now_s();
    fb_status st = fb_tokenizer_encode(t, text, len, flags, &ids, &n, &cap);
    double dt = now_s() - t0;
    if (st != FB_OK) rc = fb_cli_error("%s", fb_last_error());
    else if (ids_out) {
        char num[16];
        for (size_t i = 0; i < n; i++) {
            int k = snprintf(num, sizeof num, i ? " %d" : "%d", (int)ids[i]);
            fwrite(num, 1, (size_t)k, stdout);
        }
        fputc('\n', stdout);
    } else {
        printf("tokens: %zu\nbytes: %zu\nseconds: %.6f\nthroughput: %.2f MB/s (%.0f tokens/s)\n", n, len, dt,
               dt > 0 ? (double)len / dt / 1e6 : 0.0, dt > 0 ? (double)n / dt : 0.0);
    }
    if (fflush(stdout) != 0 && !rc) rc = fb_cli_error("write to stdout failed");
    free(ids); free(text);
    fb_tokenizer_free(t);
    return rc;
}

static const char *detokenize_usage =
    "usage: flashblock detokenize --tokenizer SPEC [FILE|-]\n"
    "  reads whitespace-separated decimal token ids and writes the decoded bytes to stdout\n";

int fb_cmd_detokenize(int argc, char **argv) {
    const char *spec = NULL, *file = "-";
    int nfile = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { fputs(detokenize_usage, stdout); return 0; }
        else if (strcmp(a, "--tokenizer") == 0) {
            if (++i >= argc) return fb_cli_usage_error("detokenize", "--tokenizer needs a value");
            spec = argv[i];
        } else if (strncmp(a, "--tokenizer=", 12) == 0) spec = a + 12;
        else if (a[0] == '-' && a[1]) return fb_cli_usage_error("detokenize", "unknown option '%s'", a);
        else { file = a; nfile++; }
    }
    if (!spec) return fb_cli_usage_error("detokenize", "--tokenizer SPEC is required");
    if (nfile > 1) return fb_cli_usage_error("detokenize", "expected at most one input file");
    fb_tokenizer *t = NULL;
    if (fb_tokenizer_load(&t, spec) != FB_OK) return fb_cli_error("%s", fb_last_error());
    char *text = NULL; size_t len = 0;
    int rc = slurp(file, &text, &len);
    if (rc) { fb_tokenizer_free(t); return rc; }
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    long line = 1;
    int vs = fb_tokenizer_vocab_size(t);
    for (size_t i = 0; i < len && !rc;) {
        char c = text[i];
        if (c == '\n') { line++; i++; continue; }
        if (c == ' ' || c == '\t' || c == '\r' || c == ',') { i++; continue; }
        size_t s = i;
        long long v = 0;
        while (i < len && text[i] >= '0' && text[i] <= '9' && v <= INT_MAX) v = v * 10 + (text[i++] - '0');
        if (i == s || (i < len && !(text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n' || text[i] == ','))) {
            size_t e = s;
            while (e < len && e - s < 20 && !(text[e] == ' ' || text[e] == '\n' || text[e] == '\t')) e++;
            rc = fb_cli_error("%s: line %ld: '%.*s' is not a token id", file, line, (int)(e - s), text + s);
            break;
        }
        if (v >= vs) { rc = fb_cli_error("%s: line %ld: token id %lld out of range (vocabulary size %d)", file, line, v, vs); break; }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            int32_t *ni = (int32_t *)realloc(ids, cap * sizeof *ni);
            if (!ni) { rc = fb_cli_error("out of memory"); break; }
            ids = ni;
        }
        ids[n++] = (int32_t)v;
    }
    if (!rc) {
        char *out = NULL; size_t ol = 0;
        if (fb_tokenizer_decode(t, ids, n, &out, &ol) != FB_OK) rc = fb_cli_error("%s", fb_last_error());
        else if (fwrite(out, 1, ol, stdout) != ol || fflush(stdout) != 0) rc = fb_cli_error("write to stdout failed");
        free(out);
    }
    free(ids); free(text);
    fb_tokenizer_free(t);
    return rc;
}

static void train_progress(void *user, int done, int wanted) {
    double t0 = *(double *)user;
    fprintf(stderr, "\rtokenizer train: %d/%d merges (%.1f s)", done, wanted, now_s() - t0);
    if (done == wanted) fputc('\n', stderr);
}

static const char *tokenizer_usage =
    "usage: flashblock tokenizer train --data FILE --vocab-size N --out FILE [--quiet]\n"
    "  byte-level BPE with GPT-2 pre-tokenization; N counts the 256 bytes, the merges and\n"
    "  <|endoftext|>. The output (flashblock-bpe format, docs/TOKENIZERS.md) is a tokenizer\n"
    "  SPEC for tokenize, detokenize, train and generate.\n";

int fb_cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(tokenizer_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "train") != 0) return fb_cli_usage_error("tokenizer", "unknown subcommand '%s'", argv[1]);
    const char *data = NULL, *out = NULL;
    long vocab = 0;
    int quiet = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { fputs(tokenizer_usage, stdout); return 0; }
        if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
        if (strcmp(a, "--data") != 0 && strcmp(a, "--vocab-size") != 0 && strcmp(a, "--out") != 0)
            return fb_cli_usage_error("tokenizer train", "unknown option '%s'", a);
        if (i + 1 >= argc) return fb_cli_usage_error("tokenizer train", "%s needs a value", a);
        const char *v = argv[++i];
        if (strcmp(a, "--data") == 0) data = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else {
            char *end;
            errno = 0;
            vocab = strtol(v, &end, 10);
            if (errno || *end || end == v || vocab < 257 || vocab > (1L << 24))
                return fb_cli_usage_error("tokenizer train", "--vocab-size must be an integer in [257, 16777216], got '%s'", v);
        }
    }
    if (!data || !out || !vocab)
        return fb_cli_usage_error("tokenizer train", "--data, --vocab-size and --out are required");
    char *text = NULL; size_t len = 0;
    int rc = slurp(data, &text, &len);
    if (rc) return rc;
    double t0 = now_s();
    if (!isatty(2)) quiet = 1;
    fb_status st = fb_tokenizer_train_bpe(text, len, (int)vocab, out, quiet ? NULL : train_progress, &t0);
    double dt = now_s() - t0;
    free(text);
    if (st != FB_OK) return fb_cli_error("%s", fb_last_error());
    fb_tokenizer *t = NULL;
    if (fb_tokenizer_load(&t, out) != FB_OK) return fb_cli_error("%s", fb_last_error());
    printf("trained %s: vocab_size %d (%d merges) from %zu bytes in %.2f s\n", out, fb_tokenizer_vocab_size(t),
           fb_tokenizer_vocab_size(t) - 257, len, dt);
    fb_tokenizer_free(t);
    return 0;
}
