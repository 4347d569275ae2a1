/* libFuzzer target: the server's request parser. The first byte picks the
 * endpoint (completions, chat, tokenize, detokenize) and the chat template;
 * the rest is the HTTP body, parsed exactly as the handlers do (the UTF-8
 * check, json-c, every field's validation, the prompt's tokenization, the
 * template). Invariants: a status is 0 (accepted) or a 4xx/500 with an
 * OpenAI error object that json-c parses back; an accepted request has a
 * prompt inside the context and the vocabulary, a sane sampler and at most
 * FB_MAX_STOPS stops; nothing leaks (LeakSanitizer). The tokenizer is
 * tok512 from the data folder, else a tiny SentencePiece vocabulary. */
#include "server/srv.h"
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FB_DEFAULT_DATA_DIR
#define FB_DEFAULT_DATA_DIR "../shared/data"
#endif

static srv S;
static fb_tokenizer *tok;

static void fz_abort(const char *what, const char *detail) {
    fprintf(stderr, "fuzz invariant violated: %s %s\n", what, detail ? detail : "");
    abort();
}

static void fz_init(void) {
    if (tok) return;
    const char *root = getenv("FLASHBLOCK_DATA");
    if (!root || !*root) root = FB_DEFAULT_DATA_DIR;
    char spec[4200];
    snprintf(spec, sizeof spec, "llama2c:%s/llama2c/tok512.bin", root);
    if (fb_tokenizer_load(&tok, spec) != FB_OK) {
        const char *pieces[262];
        float scores[262];
        static char bp[256][8];
        pieces[0] = "<unk>"; pieces[1] = "\n<s>\n"; pieces[2] = "\n</s>\n";
        for (int b = 0; b < 256; b++) { snprintf(bp[b], 8, "<0x%02X>", b); pieces[3 + b] = bp[b]; }
        pieces[259] = " "; pieces[260] = "ab"; pieces[261] = " ab";
        for (int i = 0; i < 262; i++) scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
        if (fb_tokenizer_from_sentencepiece(&tok, pieces, scores, 262, 1, 2) != FB_OK) fz_abort("tokenizer", fb_last_error());
    }
    S.opt = fb_server_options_default();
    S.tok = tok;
    S.ctx = 512;
    S.vocab = fb_tokenizer_vocab_size(tok);
    S.ready = 1;
    snprintf(S.model_id, sizeof S.model_id, "fuzz.bin");
    pthread_mutex_init(&S.mu, NULL);
}

/* An error answer must be {"error": {"message": non-empty, "type", "code"}}. */
static void check_error(int st, const srv_buf *err) {
    if (st != 400 && st != 404 && st != 413 && st != 500) {
        char b[16];
        snprintf(b, sizeof b, "%d", st);
        fz_abort("unexpected status", b);
    }
    json_object *o = err->len ? json_tokener_parse(err->p) : NULL, *e = NULL, *m = NULL;
    if (!o || !json_object_object_get_ex(o, "error", &e) || !json_object_object_get_ex(e, "message", &m) ||
        !json_object_get_string_len(m) || !json_object_object_get_ex(e, "type", NULL) ||
        !json_object_object_get_ex(e, "code", NULL))
        fz_abort("error body", err->p);
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init();
    if (size < 1) return 0;
    const unsigned sel = data[0] & 3u;
    srv_tmpl_init(&S.tmpl, (srv_tmpl_kind)((data[0] >> 2) % SRV_TMPL_COUNT), "fuzz", tok);
    /* the body in its own allocation, so reads past its end are caught */
    const size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body) return 0;
    memcpy(body, data + 1, len);
    srv_buf err = {0}, out = {0};
    if (sel <= 1) {
        srv_req *r = NULL;
        const int st = srv_parse_completion(&S, body, len, sel ? SRV_CHAT : SRV_COMPLETION, &r, &err);
        if (st) {
            if (r) fz_abort("a request came back with an error", NULL);
            check_error(st, &err);
        } else {
            if (!r || r->n_prompt < 1 || r->n_prompt > S.ctx || r->n < 1 || r->n > S.opt.parallel || r->max_tokens < 0 ||
                (r->max_tokens && r->n_prompt + r->max_tokens > S.ctx) || r->n_stops > FB_MAX_STOPS)
                fz_abort("accepted request out of bounds", NULL);
            for (int i = 0; i < r->n_prompt; i++)
                if (r->prompt[i] < 0 || r->prompt[i] >= S.vocab) fz_abort("prompt token outside the vocabulary", NULL);
            if (!(r->gp.temperature >= 0 && r->gp.top_p > 0 && r->gp.top_p <= 1)) fz_abort("sampler parameters", NULL);
            pthread_mutex_lock(&S.mu);
            srv_req_release(&S, r);
            pthread_mutex_unlock(&S.mu);
        }
    } else {
        const int st = sel == 2 ? srv_tokenize_json(&S, body, len, &out) : srv_detokenize_json(&S, body, len, &out);
        if (st) check_error(st, &out);
        else if (!out.len || srv_utf8_invalid_at(out.p, out.len) >= 0) fz_abort("reply is not UTF-8", NULL);
    }
    srv_buf_free(&err);
    srv_buf_free(&out);
    free(body);
    return 0;
}
