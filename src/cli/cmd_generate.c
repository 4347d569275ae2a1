/*
 * flashblock generate: load a model (ours, llama2.c, GGUF, llm.c), prefill
 * the prompt through the KV cache, then decode one token per step, streaming
 * the text as it is produced. -n counts positions including the prompt, as
 * llama2.c's run.c does (so `-n 256` gives the same text as `run -n 256`).
 * Several prompts (--prompts FILE, or --parallel N copies of -p) decode
 * together: one matmul per layer per step for all of them.
 */
#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "flashblock.h"
#include "flashblock_tokenizer.h"
#include "infer/engine.h"
#include "infer/model_load.h"
#include "infer/sampler.h"
#include "model/model.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEQS 64
#define MAX_STOPS 8

static void usage(FILE *f) {
    fprintf(f,
            "usage: flashblock generate -m MODEL [-z TOKENIZER] [-p PROMPT | --prompts FILE] [options]\n"
            "  -n N               positions to run, prompt included (default 256; as llama2.c's -n);\n"
            "                     beyond the context the window slides (the last half is re-read)\n"
            "  --temp T           temperature (default 1.0; 0 = greedy)\n"
            "  --top-k K          keep the K most likely tokens (0 = off)\n"
            "  --top-p P          nucleus sampling (default 0.9; 1 = off)\n"
            "  --min-p P          drop tokens below P x the top probability (0 = off)\n"
            "  --repeat-penalty R penalise the last --repeat-last-n tokens (default 1 = off, 64 tokens)\n"
            "  --seed S           sampling seed (default: time)\n"
            "  --stop STR         stop when the text produces STR (repeatable)\n"
            "  --ctx T            context length (default: the model's)\n"
            "  --truncate         keep the end of a prompt longer than the context instead of failing\n"
            "  --parallel N       decode N samples of the prompt together\n"
            "  --prompts FILE     one prompt per line, decoded together\n"
            "  --batch-size N     prefill chunk (default 512)\n"
            "  --q8               Q8_0 int8 weights for the matmuls\n"
            "  --threads N  --quiet (no speed report on stderr)\n"
            "MODEL: flashblock checkpoint (.safetensors), GGUF (llama), llama2.c .bin (v0/v1/v2), llm.c .bin.\n"
            "TOKENIZER: llama2c tokenizer.bin, gpt2:DIR, byte, or a trained vocabulary (default: the model's own).\n");
}

typedef struct {
    int32_t *tokens;        /* prompt then generated */
    int n, cap, n_prompt;
    int done;
    char *text;             /* generated text so far (for stop strings / batched output) */
    size_t text_len, text_cap;
    fb_token_decoder *dec;
    int32_t prev;
} seq_state;

static int push_token(seq_state *s, int32_t t) {
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 64;
        int32_t *p = realloc(s->tokens, sizeof(int32_t) * (size_t)nc);
        if (!p) return 0;
        s->tokens = p;
        s->cap = nc;
    }
    s->tokens[s->n++] = t;
    return 1;
}

static int append_text(seq_state *s, const char *b, size_t len) {
    if (s->text_len + len + 1 > s->text_cap) {
        size_t nc = (s->text_len + len + 1) * 2;
        char *p = realloc(s->text, nc);
        if (!p) return 0;
        s->text = p;
        s->text_cap = nc;
    }
    memcpy(s->text + s->text_len, b, len);
    s->text_len += len;
    s->text[s->text_len] = '\0';
    return 1;
}

/* Text of token id following prev. llama2.c tokenizers print exactly as
 * run.c's decode + safe_printf (leading space dropped after BOS, raw bytes
 * of <0xHH> pieces, unprintable single bytes skipped); others go through the
 * UTF-8-aware streaming decoder. */
static void emit(const fb_tokenizer *tok, seq_state *s, int32_t id, FILE *out) {
    const char *b = NULL;
    size_t len = 0;
    if (fb_tokenizer_get_kind(tok) == FB_TOKENIZER_LLAMA2C) {
        b = fb_tokenizer_token_bytes(tok, id, &len);
        if (id == fb_tokenizer_bos_id(tok)) len = 0;
        if (b && len && s->prev == fb_tokenizer_bos_id(tok) && b[0] == ' ') { b++; len--; }
        if (b && len == 1 && !(isprint((unsigned char)b[0]) || isspace((unsigned char)b[0]))) len = 0;
    } else if (id == fb_tokenizer_bos_id(tok) || fb_token_decoder_push(s->dec, id, &b, &len) != FB_OK) {   /* BOS prints nothing */
        len = 0;
    }
    s->prev = id;
    if (b && len) {
        append_text(s, b, len);
        if (out) { fwrite(b, 1, len, out); fflush(out); }
    }
}

int fb_cmd_generate(int argc, char **argv) {
    const char *cmd = "generate", *model_path = NULL, *tok_spec = NULL, *prompt = NULL, *prompts_file = NULL;
    const char *stops[MAX_STOPS];
    int n_stops = 0, quiet = 0, truncate_prompt = 0, q8 = 0;
    long steps = 256, top_k = 0, seed = -1, threads = 0, ctx = 0, parallel = 1, batch_size = 512, repeat_last = 64;
    double temp = 1.0, top_p = 0.9, min_p = 0.0, repeat_penalty = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--truncate")) truncate_prompt = 1;
        else if (!strcmp(a, "--q8")) q8 = 1;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model_path = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-z") || !strcmp(a, "--tokenizer")) { if (!(tok_spec = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-p") || !strcmp(a, "-i") || !strcmp(a, "--prompt")) { if (!(prompt = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--prompts")) { if (!(prompts_file = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--stop")) {
            if (!(v = fb_arg_value(cmd, argc, argv, &i))) return 2;
            if (n_stops == MAX_STOPS) return fb_cli_usage_error(cmd, "at most %d --stop strings", MAX_STOPS);
            if (!*v) return fb_cli_usage_error(cmd, "--stop: empty string");
            stops[n_stops++] = v;
        }
        else if (!strcmp(a, "-n") || !strcmp(a, "--steps")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 24, &steps)) return 2; }
        else if (!strcmp(a, "--top-k")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 0, 1 << 24, &top_k)) return 2; }
        else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 0, 1L << 62, &seed)) return 2; }
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            /* llama2.c's -t is the temperature; ours is threads unless it has a decimal point */
            if (!(v = fb_arg_value(cmd, argc, argv, &i))) return 2;
            if (!strcmp(a, "-t") && strchr(v, '.')) { if (!fb_arg_double(cmd, a, v, 0, 100, &temp)) return 2; }
            else if (!fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2;
        }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 22, &ctx)) return 2; }
        else if (!strcmp(a, "--parallel")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, MAX_SEQS, &parallel)) return 2; }
        else if (!strcmp(a, "--batch-size") || !strcmp(a, "-b")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &batch_size)) return 2; }
        else if (!strcmp(a, "--repeat-last-n")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 0, 1 << 20, &repeat_last)) return 2; }
        else if (!strcmp(a, "--temp")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_double(cmd, a, v, 0, 100, &temp)) return 2; }
        else if (!strcmp(a, "--top-p")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_double(cmd, a, v, 1e-9, 1, &top_p)) return 2; }
        else if (!strcmp(a, "--min-p")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_double(cmd, a, v, 0, 1, &min_p)) return 2; }
        else if (!strcmp(a, "--repeat-penalty")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_double(cmd, a, v, 1e-3, 100, &repeat_penalty)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (!model_path) return fb_cli_usage_error(cmd, "-m MODEL is required");
    if (prompts_file && parallel > 1) return fb_cli_usage_error(cmd, "--prompts and --parallel cannot be combined");
    if (threads) fb_set_threads((int)threads);
    if (seed < 0) seed = (long)time(NULL);

    int rc = 1, n_seqs = 0;
    fb_model *m = NULL;
    fb_tokenizer *tok = NULL, *own_tok = NULL;
    fb_engine eng = {0};
    fb_sampler *sampler = NULL;
    seq_state seqs[MAX_SEQS];
    memset(seqs, 0, sizeof seqs);
    char *prompt_buf = NULL;
    fb_model_format fmt;
    int q8_source = 0;
    if (fb_model_load_any(model_path, &m, &own_tok, &fmt, &q8_source) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    if (tok_spec) {
        fb_status s = fb_tokenizer_load_for_model(&tok, tok_spec, m->cfg.vocab_size);
        if (s != FB_OK) { fb_cli_error("tokenizer %s: %s", tok_spec, fb_last_error()); goto done; }
        fb_tokenizer_free(own_tok);
        own_tok = NULL;
    } else if (own_tok) {
        tok = own_tok;
        own_tok = NULL;
    } else {
        fb_cli_error("%s (%s) carries no tokenizer: give one with -z (e.g. -z tokenizer.bin or -z gpt2:DIR)", model_path,
                     fb_model_format_name(fmt));
        goto done;
    }
    if (fb_tokenizer_vocab_size(tok) > m->cfg.vocab_size) {
        fb_cli_error("tokenizer has %d tokens but the model only %d", fb_tokenizer_vocab_size(tok), m->cfg.vocab_size);
        goto done;
    }
    const int V = m->cfg.vocab_size;
    if (ctx == 0) ctx = m->cfg.max_seq;
    if (m->cfg.block.positions == FB_POS_LEARNED && ctx > m->cfg.max_seq) {
        fb_cli_error("--ctx %ld exceeds the model's %d learned positions", ctx, m->cfg.max_seq);
        goto done;
    }
    /* -n beyond the context: when a sequence's cache is full, the last half of
     * its tokens is re-prefilled at positions 0.. (a sliding window). */

    /* prompts */
    const char *plist[MAX_SEQS];
    if (prompts_file) {
        FILE *f = fopen(prompts_file, "rb");
        if (!f) { fb_cli_error("cannot open %s", prompts_file); goto done; }
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        prompt_buf = malloc((size_t)(sz > 0 ? sz : 0) + 1);
        size_t got = prompt_buf ? fread(prompt_buf, 1, (size_t)(sz > 0 ? sz : 0), f) : 0;
        fclose(f);
        if (!prompt_buf) { fb_cli_error("out of memory"); goto done; }
        prompt_buf[got] = '\0';
        for (char *save = NULL, *line = strtok_r(prompt_buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (!*line) continue;
            if (n_seqs == MAX_SEQS) { fb_cli_error("%s: more than %d prompts", prompts_file, MAX_SEQS); goto done; }
            plist[n_seqs++] = line;
        }
        if (!n_seqs) { fb_cli_error("%s: no prompts", prompts_file); goto done; }
    } else {
        for (int k = 0; k < parallel; k++) plist[n_seqs++] = prompt ? prompt : "";
    }
    const int bos = fb_tokenizer_bos_id(tok);
    for (int k = 0; k < n_seqs; k++) {
        size_t n = 0, cap = 0;
        int32_t *ids = NULL;
        /* SentencePiece-style models are trained with BOS first (llama2.c adds it);
         * GPT-2-style byte-level vocabularies start from <|endoftext|> only when
         * there is no prompt text at all. */
        const int sp = fb_tokenizer_get_kind(tok) == FB_TOKENIZER_LLAMA2C;
        const unsigned flags = bos >= 0 && (sp || !*plist[k]) ? FB_TOK_ADD_BOS : 0;
        if (fb_tokenizer_encode(tok, plist[k], strlen(plist[k]), flags, &ids, &n, &cap) != FB_OK) {
            fb_cli_error("prompt %d: %s", k + 1, fb_last_error());
            goto done;
        }
        if (n == 0) { free(ids); fb_cli_error("prompt %d is empty and the tokenizer has no BOS token to start from", k + 1); goto done; }
        if ((long)n >= ctx) {
            if (!truncate_prompt) {
                free(ids);
                fb_cli_error("prompt %d has %zu tokens but the context holds %ld (use --ctx or --truncate)", k + 1, n, ctx);
                goto done;
            }
            size_t keep = (size_t)ctx / 2, drop = n - keep;   /* keep the end, room to generate */
            memmove(ids, ids + drop, keep * sizeof(int32_t));
            n = keep;
        }
        seqs[k].tokens = ids;
        seqs[k].n = (int)n;
        seqs[k].cap = (int)cap;
        seqs[k].n_prompt = (int)n;
        seqs[k].prev = -1;
        if (fb_token_decoder_init(&seqs[k].dec, tok) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    }
    const int max_rows = batch_size > n_seqs ? (int)batch_size : n_seqs;
    if (fb_engine_init(&eng, m, n_seqs, (int)ctx, max_rows, q8) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    fb_sampler_config sc = fb_sampler_config_default();
    sc.temperature = (float)temp;
    sc.top_k = (int)top_k;
    sc.top_p = (float)top_p;
    sc.min_p = (float)min_p;
    sc.repetition_penalty = (float)repeat_penalty;
    sc.repetition_window = (int)repeat_last;
    sc.seed = (uint64_t)seed;
    if (fb_sampler_init(&sampler, &sc, V) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }

    FILE *stream = n_seqs == 1 ? stdout : NULL;
    /* prefill each prompt; print it as run.c does */
    double t0 = fb_now_sec();
    long prefill_tokens = 0;
    float *last_logits = malloc(sizeof(float) * (size_t)V * (size_t)n_seqs);
    if (!last_logits) { fb_cli_error("out of memory"); goto done; }
    for (int k = 0; k < n_seqs; k++) {
        seq_state *s = &seqs[k];
        for (int i = 0; i < s->n; i++) emit(tok, s, s->tokens[i], stream);
        if (fb_engine_prefill(&eng, k, s->tokens, s->n, (int)batch_size) != FB_OK) { fb_cli_error("%s", fb_last_error()); free(last_logits); goto done; }
        memcpy(last_logits + (size_t)k * V, eng.logits, sizeof(float) * (size_t)V);
        prefill_tokens += s->n;
    }
    double t1 = fb_now_sec();
    long decode_tokens = 0;
    int active = n_seqs;
    const int eos = fb_tokenizer_eos_id(tok);
    int row_seq[MAX_SEQS];
    int32_t row_tok[MAX_SEQS];
    while (active > 0) {
        int rows = 0;
        for (int k = 0; k < n_seqs; k++) {
            seq_state *s = &seqs[k];
            if (s->done) continue;
            if (s->n > steps) { s->done = 1; active--; continue; }
            int next = fb_sampler_sample(sampler, last_logits + (size_t)k * V, s->tokens, s->n);
            if (next < 0) { fb_cli_error("sampling failed: %s", fb_last_error()); free(last_logits); goto done; }
            if (next == bos || next == eos) { s->done = 1; active--; continue; }
            if (!push_token(s, next)) { fb_cli_error("out of memory"); free(last_logits); goto done; }
            emit(tok, s, next, n_seqs == 1 ? stdout : NULL);
            int stopped = 0;
            for (int q = 0; q < n_stops && !stopped; q++) stopped = s->text && strstr(s->text, stops[q]) != NULL;
            if (stopped || s->n > steps) { s->done = 1; active--; continue; }
            if (eng.kv.len[k] >= ctx) {
                const int keep = (int)ctx / 2;
                fb_kv_reset(&eng.kv, k);
                if (fb_engine_prefill(&eng, k, s->tokens + s->n - keep, keep - 1, (int)batch_size) != FB_OK) {
                    fb_cli_error("%s", fb_last_error());
                    free(last_logits);
                    goto done;
                }
            }
            row_seq[rows] = k;
            row_tok[rows] = next;
            rows++;
        }
        if (!rows) break;
        if (fb_engine_step(&eng, rows, row_seq, row_tok, NULL) != FB_OK) { fb_cli_error("%s", fb_last_error()); free(last_logits); goto done; }
        for (int r = 0; r < rows; r++) memcpy(last_logits + (size_t)row_seq[r] * V, eng.logits + (size_t)r * V, sizeof(float) * (size_t)V);
        decode_tokens += rows;
    }
    double t2 = fb_now_sec();
    free(last_logits);
    if (n_seqs == 1) {
        const char *b;
        size_t len;
        if (fb_tokenizer_get_kind(tok) != FB_TOKENIZER_LLAMA2C && fb_token_decoder_flush(seqs[0].dec, &b, &len) == FB_OK && len)
            fwrite(b, 1, len, stdout);
        printf("\n");
    } else {
        for (int k = 0; k < n_seqs; k++) {
            const char *b;
            size_t len;
            if (fb_tokenizer_get_kind(tok) != FB_TOKENIZER_LLAMA2C && fb_token_decoder_flush(seqs[k].dec, &b, &len) == FB_OK && len)
                append_text(&seqs[k], b, len);
            printf("--- sample %d ---\n%s\n", k + 1, seqs[k].text ? seqs[k].text : "");
        }
    }
    fflush(stdout);
    if (!quiet)
        fprintf(stderr, "prefill: %ld tokens in %.3f s (%.1f tokens/s); decode: %ld tokens in %.3f s (%.1f tokens/s)%s\n",
                prefill_tokens, t1 - t0, prefill_tokens / (t1 - t0 > 0 ? t1 - t0 : 1e-9), decode_tokens, t2 - t1,
                decode_tokens / (t2 - t1 > 0 ? t2 - t1 : 1e-9), q8 ? " [Q8_0]" : "");
    rc = 0;
done:
    for (int k = 0; k < MAX_SEQS; k++) {
        free(seqs[k].tokens);
        free(seqs[k].text);
        fb_token_decoder_free(seqs[k].dec);
    }
    free(prompt_buf);
    fb_sampler_free(sampler);
    fb_engine_free(&eng);
    fb_tokenizer_free(tok);
    fb_tokenizer_free(own_tok);
    fb_model_free(m);
    return rc;
}
