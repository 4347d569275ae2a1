/*
 * flashblock eval -m CHECKPOINT --data FILE [--json]
 * Mean next-token loss and perplexity over the whole file, tokenized with the
 * checkpoint's own tokenizer, in windows of ctx+1 tokens starting at 0, ctx,
 * 2·ctx, ...: each window predicts its last ctx tokens from the ones before
 * them; a final shorter window predicts what remains.
 * --q8 (or a model that is not a flashblock checkpoint) runs the windows
 * through the inference engine instead, so Q8_0 weights can be compared
 * with fp32 on the same windows.
 */
#include "cli/args.h"
#include "cli/cli.h"
#include "flashblock.h"
#include "flashblock_tokenizer.h"
#include "model/model.h"
#include "train/data.h"
#include "infer/engine.h"
#include "infer/model_load.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Windows through the engine: logits of every row, cross-entropy in double. */
static int eval_engine(fb_model *m, const int32_t *tokens, size_t n, int q8, double *nll, size_t *counted) {
    const int T = m->cfg.max_seq, V = m->cfg.vocab_size;
    fb_engine e;
    if (fb_engine_init(&e, m, &(fb_engine_options){.n_seqs = 1, .max_T = T, .max_rows = T, .q8 = q8}) != FB_OK) return fb_cli_error("%s", fb_last_error());
    int *seqs = calloc((size_t)T, sizeof(int));
    if (!seqs) { fb_engine_free(&e); return fb_cli_error("out of memory"); }
    *nll = 0;
    *counted = 0;
    for (size_t pos = 0; pos + 1 < n;) {
        size_t avail = n - 1 - pos;
        int w = avail < (size_t)T ? (int)avail : T;
        fb_kv_reset(&e.kv, 0);
        if (fb_engine_step(&e, w, seqs, tokens + pos, NULL) != FB_OK) { free(seqs); fb_engine_free(&e); return fb_cli_error("%s", fb_last_error()); }
        for (int r = 0; r < w; r++) {
            const float *l = e.logits + (size_t)r * V;
            double mx = l[0], sum = 0;
            for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            for (int v = 0; v < V; v++) sum += exp((double)l[v] - mx);
            *nll += mx + log(sum) - l[tokens[pos + (size_t)r + 1]];
        }
        *counted += (size_t)w;
        pos += (size_t)w;
    }
    free(seqs);
    fb_engine_free(&e);
    return 0;
}

int fb_cmd_eval(int argc, char **argv) {
    const char *cmd = "eval", *model_path = NULL, *data = NULL, *tok_spec = NULL;
    long batch = 8, threads = 0;
    int json = 0, q8 = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: flashblock eval -m MODEL --data FILE [-z TOKENIZER] [--q8] [--batch 8] [--threads N] [--json]\n");
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--q8")) q8 = 1;
        else if (!strcmp(a, "-z") || !strcmp(a, "--tokenizer")) { if (!(tok_spec = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model_path = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--data")) { if (!(data = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--batch")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 4096, &batch)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (!model_path || !data) return fb_cli_usage_error(cmd, "-m CHECKPOINT and --data FILE are required");
    if (threads) fb_set_threads((int)threads);
    fb_model *m = NULL;
    fb_tokenizer *tok = NULL;
    int32_t *tokens = NULL;
    size_t n = 0;
    int rc = 1;
    fb_model_format fmt;
    /* --q8: the matrices go from the file straight into Q8_0 (no fp32 copy) */
    if (fb_model_load_weights(model_path, q8 ? FB_MODEL_Q8_0 : FB_MODEL_F32, &m, &tok, &fmt, NULL) != FB_OK)
        return fb_cli_error("%s", fb_last_error());
    if (tok_spec) {
        fb_tokenizer_free(tok);
        tok = NULL;
        fb_status ts = fb_tokenizer_load_for_model(&tok, tok_spec, m->cfg.vocab_size);
        if (ts != FB_OK) { fb_cli_error("tokenizer %s: %s", tok_spec, fb_last_error()); goto done; }
    }
    if (!tok) { fb_cli_error("%s carries no tokenizer: give one with -z", model_path); goto done; }
    if (fb_tokenizer_vocab_size(tok) > m->cfg.vocab_size) {
        fb_cli_error("tokenizer has %d tokens, the model only %d", fb_tokenizer_vocab_size(tok), m->cfg.vocab_size);
        goto done;
    }
    if (fb_data_load(data, tok, &tokens, &n) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    if (n < 2) { fb_cli_error("%s: %zu tokens, need at least 2 to predict one", data, n); goto done; }
    if (q8 || fmt != FB_FMT_SAFETENSORS) {
        double nll = 0;
        size_t counted = 0;
        if (eval_engine(m, tokens, n, q8, &nll, &counted) != 0) goto done;
        const double loss = nll / (double)counted;
        if (json) printf("{\"loss\":%.6f,\"ppl\":%.6f,\"tokens\":%zu}\n", loss, exp(loss), counted);
        else printf("%s on %s%s: loss %.4f nats/token, perplexity %.3f over %zu predicted tokens\n", model_path, data,
                    q8 ? " (Q8_0 weights)" : "", loss, exp(loss), counted);
        rc = 0;
        goto done;
    }
    const int T = m->cfg.max_seq;
    if (fb_model_alloc_training(m, (int)batch, T, 0) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)batch * T), *tgt = malloc(sizeof(int32_t) * (size_t)batch * T);
    if (!ids || !tgt) { free(ids); free(tgt); fb_cli_error("out of memory"); goto done; }
    double nll = 0;
    size_t counted = 0, pos = 0;
    while (pos + 1 < n) {
        /* Gather up to batch full windows; a short last window goes alone. */
        int b = 0, len = T;
        while (b < batch && pos + 1 < n) {
            size_t avail = n - 1 - pos;           /* tokens that can be predicted from pos */
            int w = avail < (size_t)T ? (int)avail : T;
            if (w < T && b > 0) break;            /* the short window runs in its own batch */
            len = w;
            memcpy(ids + (size_t)b * T, tokens + pos, sizeof(int32_t) * (size_t)w);
            memcpy(tgt + (size_t)b * T, tokens + pos + 1, sizeof(int32_t) * (size_t)w);
            pos += (size_t)w;
            b++;
            if (w < T) break;
        }
        if (len < T) {  /* repack the single short window contiguously */
            float l;
            if (fb_model_forward(m, ids, tgt, 1, len, &l) != FB_OK) { fb_cli_error("%s", fb_last_error()); free(ids); free(tgt); goto done; }
            nll += (double)l * len;
            counted += (size_t)len;
        } else {
            float l;
            if (fb_model_forward(m, ids, tgt, b, T, &l) != FB_OK) { fb_cli_error("%s", fb_last_error()); free(ids); free(tgt); goto done; }
            nll += (double)l * b * T;
            counted += (size_t)b * T;
        }
    }
    free(ids);
    free(tgt);
    const double loss = nll / (double)counted;
    if (json) printf("{\"loss\":%.6f,\"ppl\":%.6f,\"tokens\":%zu}\n", loss, exp(loss), counted);
    else printf("%s on %s: loss %.4f nats/token, perplexity %.3f over %zu predicted tokens\n", model_path, data, loss, exp(loss), counted);
    rc = 0;
done:
    free(tokens);
    fb_tokenizer_free(tok);
    fb_model_free(m);
    return rc;
}
