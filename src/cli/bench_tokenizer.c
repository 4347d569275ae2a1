/* flashblock bench tokenizer [--json] [--data FILE] [--gpt2 DIR] [--llama2c FILE] [--repeat N] [--no-train]
 * Single-thread encode/decode throughput of GPT-2 and llama2c tokenizers on
 * Tiny Shakespeare, and the time to train a 4096-token BPE vocabulary. */
#include "cli/cli.h"
#include "flashblock.h"
#include "flashblock_tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double bnow(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct { char name[48]; double seconds, mbps; size_t bytes, tokens; } bres;

static int read_all(const char *path, char **d, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz < 0) { fclose(f); return 0; }
    *d = (char *)malloc((size_t)sz + 1);
    if (!*d || fread(*d, 1, (size_t)sz, f) != (size_t)sz) { fclose(f); free(*d); return 0; }
    fclose(f);
    (*d)[sz] = 0;
    *n = (size_t)sz;
    return 1;
}

static int bench_one(const char *spec, const char *label, const char *text, size_t len, int repeat,
                     bres *out, int *nout) {
    fb_tokenizer *t = NULL;
    if (fb_tokenizer_load(&t, spec) != FB_OK) return fb_cli_error("%s", fb_last_error());
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    double best = 1e30;
    for (int r = 0; r < repeat; r++) {
        double t0 = bnow();
        if (fb_tokenizer_encode(t, text, len, 0, &ids, &n, &cap) != FB_OK) {
            fb_tokenizer_free(t); free(ids);
            return fb_cli_error("%s", fb_last_error());
        }
        double dt = bnow() - t0;
        if (dt < best) best = dt;
    }
    bres *e = &out[(*nout)++];
    snprintf(e->name, sizeof e->name, "%s_encode", label);
    e->seconds = best; e->bytes = len; e->tokens = n; e->mbps = (double)len / best / 1e6;
    double bestd = 1e30;
    for (int r = 0; r < repeat; r++) {
        char *txt = NULL; size_t tl = 0;
        double t0 = bnow();
        if (fb_tokenizer_decode(t, ids, n, &txt, &tl) != FB_OK) { fb_tokenizer_free(t); free(ids); return fb_cli_error("%s", fb_last_error()); }
        double dt = bnow() - t0;
        free(txt);
        if (dt < bestd) bestd = dt;
    }
    e = &out[(*nout)++];
    snprintf(e->name, sizeof e->name, "%s_decode", label);
    e->seconds = bestd; e->bytes = len; e->tokens = n; e->mbps = (double)len / bestd / 1e6;
    free(ids);
    fb_tokenizer_free(t);
    return 0;
}

int fb_bench_tokenizer(int argc, char **argv) {
    int json = 0, repeat = 5, train = 1;
    const char *root = getenv("FLASHBLOCK_DATA");
    if (!root || !*root) {
        static const char *cands[] = { "../shared/data", "../../shared/data", "../../../shared/data" };
        root = cands[0];
        for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
            char p[256];
            snprintf(p, sizeof p, "%s/tinyshakespeare/input.txt", cands[i]);
            if (access(p, R_OK) == 0) { root = cands[i]; break; }
        }
    }
    char data[4096], gpt2[4096], l2c[4096];
    snprintf(data, sizeof data, "%s/tinyshakespeare/input.txt", root);
    snprintf(gpt2, sizeof gpt2, "gpt2:%s/gpt2", root);
    snprintf(l2c, sizeof l2c, "llama2c:%s/llama2c/tokenizer.bin", root);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--no-train") == 0) train = 0;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            puts("usage: flashblock bench tokenizer [--json] [--data FILE] [--gpt2 DIR] [--llama2c FILE] [--repeat N] [--no-train]");
            return 0;
        } else if (i + 1 < argc && strcmp(a, "--data") == 0) snprintf(data, sizeof data, "%s", argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--gpt2") == 0) snprintf(gpt2, sizeof gpt2, "gpt2:%s", argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--llama2c") == 0) snprintf(l2c, sizeof l2c, "llama2c:%s", argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--repeat") == 0) {
            repeat = atoi(argv[++i]);
            if (repeat < 1) return fb_cli_usage_error("bench tokenizer", "--repeat must be >= 1");
        } else return fb_cli_usage_error("bench tokenizer", "unknown option '%s'", a);
    }
    char *text = NULL; size_t len = 0;
    if (!read_all(data, &text, &len)) return fb_cli_error("%s: cannot read (set FLASHBLOCK_DATA or --data)", data);
    bres res[8];
    int nres = 0, rc;
    if ((rc = bench_one(gpt2, "gpt2", text, len, repeat, res, &nres))) { free(text); return rc; }
    if ((rc = bench_one(l2c, "llama2c_32k", text, len, repeat, res, &nres))) { free(text); return rc; }
    if (train) {
        char out[64];
        snprintf(out, sizeof out, "/tmp/fb_bench_bpe_%ld.vocab", (long)getpid());
        double t0 = bnow();
        if (fb_tokenizer_train_bpe(text, len, 4096, out, NULL, NULL) != FB_OK) { free(text); return fb_cli_error("%s", fb_last_error()); }
        double dt = bnow() - t0;
        remove(out);
        bres *e = &res[nres++];
        snprintf(e->name, sizeof e->name, "bpe_train_4096");
        e->seconds = dt; e->bytes = len; e->tokens = 4096; e->mbps = (double)len / dt / 1e6;
    }
    free(text);
    if (json) {
        printf("{\"bench\": \"tokenizer\", \"threads\": 1, \"results\": [");
        for (int i = 0; i < nres; i++)
            printf("%s{\"name\": \"%s\", \"seconds\": %.6f, \"bytes\": %zu, \"tokens\": %zu, \"mb_per_s\": %.3f}",
                   i ? ", " : "", res[i].name, res[i].seconds, res[i].bytes, res[i].tokens, res[i].mbps);
        printf("]}\n");
    } else {
        printf("%-18s %10s %10s %10s %10s\n", "benchmark", "seconds", "MB/s", "bytes", "tokens");
        for (int i = 0; i < nres; i++)
            printf("%-18s %10.4f %10.2f %10zu %10zu\n", res[i].name, res[i].seconds, res[i].mbps, res[i].bytes, res[i].tokens);
    }
    return 0;
}
