/*
 * The OpenAI wire format: request bodies are validated into srv_req (every
 * wrong type or range is a 400 naming the field), responses and stream
 * chunks are built with json-c in the shapes of the OpenAI API (as
 * llama.cpp's server and vLLM speak it).
 */
#include "server/srv.h"
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *srv_error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 500: return "server_error";
    case 503: return "unavailable_error";
    default: return "invalid_request_error";
    }
}

static void put_json(srv_buf *out, json_object *o) {
    size_t n = 0;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    srv_buf_put(out, s, n);
}

/* A JSON string of arbitrary bytes (invalid UTF-8 -> U+FFFD). */
static json_object *jstr(const char *s, size_t n) {
    srv_buf b = {0};
    if (!s) s = "";
    srv_utf8_sanitize(&b, s, n);
    json_object *o = json_object_new_string_len(b.p ? b.p : "", (int)b.len);
    srv_buf_free(&b);
    return o;
}

/* Numbers with 9 significant digits (a float's precision; json-c would
 * print 17), non-finite ones as -9999 (OpenAI's floor for logprobs). */
static json_object *jnum(double v) {
    char b[32];
    if (!isfinite(v)) v = -9999.0;
    snprintf(b, sizeof b, "%.9g", v);
    return json_object_new_double_s(v, b);
}

void srv_error_json(srv_buf *out, int status, const char *type, const char *code, const char *param, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object *e = json_object_new_object();
    json_object_object_add(e, "message", jstr(msg, strlen(msg)));
    json_object_object_add(e, "type", json_object_new_string(type ? type : srv_error_type(status)));
    json_object_object_add(e, "param", param ? json_object_new_string(param) : NULL);
    /* OpenAI's code is a string or null: without one, 503 is "unavailable"
     * (as the other 503s), anything else (500s) null */
    if (!code && status == 503) code = "unavailable";
    json_object_object_add(e, "code", code ? json_object_new_string(code) : NULL);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "error", e);
    out->len = 0;
    put_json(out, root);
    json_object_put(root);
}

/* ---- parsing helpers: 0 absent (or null), 1 read, -1 wrong (error written) ---------------- */

static json_object *field(json_object *o, const char *key) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) return NULL;
    return v;
}

static int get_double(json_object *o, const char *key, double lo, double hi, double *out, srv_buf *err) {
    json_object *v = field(o, key);
    if (!v) return 0;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
        srv_error_json(err, 400, NULL, "invalid_type", key, "%s must be a number", key);
        return -1;
    }
    const double d = json_object_get_double(v);
    if (!(d >= lo && d <= hi)) {
        srv_error_json(err, 400, NULL, "invalid_value", key, "%s must be in [%g, %g], got %g", key, lo, hi, d);
        return -1;
    }
    *out = d;
    return 1;
}

static int get_long(json_object *o, const char *key, long lo, long hi, long *out, srv_buf *err) {
    json_object *v = field(o, key);
    if (!v) return 0;
    double d = 0;
    if (json_object_is_type(v, json_type_int)) d = (double)json_object_get_int64(v);
    else if (json_object_is_type(v, json_type_double)) d = json_object_get_double(v);
    if (!(json_object_is_type(v, json_type_int) || (json_object_is_type(v, json_type_double) && d == floor(d)))) {
        srv_error_json(err, 400, NULL, "invalid_type", key, "%s must be an integer", key);
        return -1;
    }
    if (!(d >= (double)lo && d <= (double)hi)) {
        srv_error_json(err, 400, NULL, "invalid_value", key, "%s must be an integer in [%ld, %ld], got %.0f", key, lo, hi, d);
        return -1;
    }
    *out = json_object_is_type(v, json_type_int) ? (long)json_object_get_int64(v) : (long)d;
    return 1;
}

static int get_bool(json_object *o, const char *key, int *out, srv_buf *err) {
    json_object *v = field(o, key);
    if (!v) return 0;
    if (!json_object_is_type(v, json_type_boolean)) {
        srv_error_json(err, 400, NULL, "invalid_type", key, "%s must be true or false", key);
        return -1;
    }
    *out = json_object_get_boolean(v);
    return 1;
}

/* Parse a whole body as one JSON object. JSON text is UTF-8 (RFC 8259):
 * a body with any invalid byte is refused before parsing (json-c would
 * let surrogates and overlong forms through into the prompt). */
static json_object *parse_body(const char *body, size_t len, srv_buf *err) {
    const long bad = srv_utf8_invalid_at(body, len);
    if (bad >= 0) {
        srv_error_json(err, 400, NULL, "invalid_json", NULL, "the request body is not valid UTF-8 (byte %ld)", bad);
        return NULL;
    }
    json_tokener *tk = json_tokener_new_ex(64);
    if (!tk) { srv_error_json(err, 500, NULL, NULL, NULL, "out of memory"); return NULL; }
    json_tokener_set_flags(tk, JSON_TOKENER_STRICT);
    json_object *root = len ? json_tokener_parse_ex(tk, body, (int)len) : NULL;
    enum json_tokener_error je = json_tokener_get_error(tk);
    size_t end = json_tokener_get_parse_end(tk);
    if (!len) srv_error_json(err, 400, NULL, "invalid_json", NULL, "the request body is empty (a JSON object was expected)");
    else if (je == json_tokener_continue || (!root && je == json_tokener_success))
        srv_error_json(err, 400, NULL, "invalid_json", NULL, "invalid JSON: the body ends inside a value");
    else if (je != json_tokener_success)
        srv_error_json(err, 400, NULL, "invalid_json", NULL, "invalid JSON at byte %zu: %s", end, json_tokener_error_desc(je));
    else {
        while (end < len && (body[end] == ' ' || body[end] == '\n' || body[end] == '\r' || body[end] == '\t')) end++;
        if (end < len) srv_error_json(err, 400, NULL, "invalid_json", NULL, "invalid JSON: unexpected data after the value at byte %zu", end);
        else if (!json_object_is_type(root, json_type_object))
            srv_error_json(err, 400, NULL, "invalid_json", NULL, "the request body must be a JSON object");
        else { json_tokener_free(tk); return root; }
    }
    json_object_put(root);
    json_tokener_free(tk);
    return NULL;
}

static int check_model(srv *S, json_object *root, srv_buf *err) {
    json_object *m = field(root, "model");
    if (!m) return 0;
    if (!json_object_is_type(m, json_type_string)) {
        srv_error_json(err, 400, NULL, "invalid_type", "model", "model must be a string");
        return 400;
    }
    if (strcmp(json_object_get_string(m), S->model_id)) {
        srv_error_json(err, 404, NULL, "model_not_found", "model", "the model '%s' does not exist (this server serves '%s')",
                       json_object_get_string(m), S->model_id);
        return 404;
    }
    return 0;
}

/* Token ids from a JSON array: each an integer in the vocabulary. */
static int token_array(srv *S, json_object *a, const char *what, int32_t **ids, int *n, srv_buf *err) {
    const size_t len = json_object_array_length(a);
    *ids = malloc(sizeof(int32_t) * (len ? len : 1));
    if (!*ids) { srv_error_json(err, 500, NULL, NULL, NULL, "out of memory"); return 500; }
    for (size_t i = 0; i < len; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (!json_object_is_type(v, json_type_int)) {
            srv_error_json(err, 400, NULL, "invalid_type", what, "%s[%zu] must be a token id (integer)", what, i);
            return 400;
        }
        const int64_t id = json_object_get_int64(v);
        if (id < 0 || id >= S->vocab) {
            srv_error_json(err, 400, NULL, "invalid_value", what, "%s[%zu] = %lld is outside the vocabulary [0, %d)", what, i,
                           (long long)id, S->vocab);
            return 400;
        }
        (*ids)[i] = (int32_t)id;
    }
    *n = (int)len;
    return 0;
}

/* The tokens fb_seq_add_text would queue for this text as a first input:
 * BOS first for SentencePiece vocabularies, or for an empty prompt. */
static int encode_prompt(srv *S, const char *text, size_t len, int32_t **ids, int *n, srv_buf *err) {
    const int bos = fb_tokenizer_bos_id(S->tok);
    const int sp = fb_tokenizer_get_kind(S->tok) == FB_TOKENIZER_LLAMA2C;
    const unsigned flags = bos >= 0 && (sp || len == 0) ? FB_TOK_ADD_BOS : 0;
    size_t nn = 0, cap = 0;
    *ids = NULL;
    if (fb_tokenizer_encode(S->tok, text, len, flags, ids, &nn, &cap) != FB_OK) {
        srv_error_json(err, 400, NULL, "invalid_value", "prompt", "cannot tokenize the prompt: %s", fb_last_error());
        return 400;
    }
    *n = (int)nn;
    return 0;
}

static int parse_prompt(srv *S, json_object *root, srv_req *r, srv_buf *err) {
    json_object *p = field(root, "prompt");
    if (!p) { srv_error_json(err, 400, NULL, "missing_field", "prompt", "prompt is required (a string or an array of token ids)"); return 400; }
    if (json_object_is_type(p, json_type_array) && json_object_array_length(p) == 1) {
        json_object *e = json_object_array_get_idx(p, 0);
        if (json_object_is_type(e, json_type_string) || json_object_is_type(e, json_type_array)) p = e;   /* [prompt] */
    }
    if (json_object_is_type(p, json_type_string))
        return encode_prompt(S, json_object_get_string(p), (size_t)json_object_get_string_len(p), &r->prompt, &r->n_prompt, err);
    if (json_object_is_type(p, json_type_array)) {
        if (json_object_array_length(p) > 1 && !json_object_is_type(json_object_array_get_idx(p, 0), json_type_int)) {
            srv_error_json(err, 400, NULL, "invalid_value", "prompt", "one prompt per request (got an array of %zu prompts)",
                           json_object_array_length(p));
            return 400;
        }
        int st = token_array(S, p, "prompt", &r->prompt, &r->n_prompt, err);
        if (!st && r->n_prompt == 0) { srv_error_json(err, 400, NULL, "invalid_value", "prompt", "prompt is an empty array of tokens"); return 400; }
        return st;
    }
    srv_error_json(err, 400, NULL, "invalid_type", "prompt", "prompt must be a string or an array of token ids");
    return 400;
}

static int parse_messages(srv *S, json_object *root, srv_req *r, srv_buf *err) {
    json_object *ms = field(root, "messages");
    if (!ms || !json_object_is_type(ms, json_type_array) || json_object_array_length(ms) == 0) {
        srv_error_json(err, 400, NULL, ms ? "invalid_type" : "missing_field", "messages", "messages must be a non-empty array of {role, content}");
        return 400;
    }
    const size_t n = json_object_array_length(ms);
    srv_chat_msg *m = calloc(n, sizeof *m);
    srv_buf *parts = calloc(n, sizeof *parts);   /* content assembled from text parts */
    int st = m && parts ? 0 : 500;
    if (st) srv_error_json(err, 500, NULL, NULL, NULL, "out of memory");
    for (size_t i = 0; !st && i < n; i++) {
        json_object *o = json_object_array_get_idx(ms, i), *role = NULL, *content = NULL;
        char name[64];
        snprintf(name, sizeof name, "messages[%zu]", i);
        if (!json_object_is_type(o, json_type_object) || !(role = field(o, "role")) || !json_object_is_type(role, json_type_string)) {
            srv_error_json(err, 400, NULL, "invalid_type", "messages", "%s must be an object with a string role", name);
            st = 400;
            break;
        }
        m[i].role = json_object_get_string(role);
        content = field(o, "content");
        if (!content) { m[i].content = ""; continue; }
        if (json_object_is_type(content, json_type_string)) {
            m[i].content = json_object_get_string(content);
            m[i].content_len = (size_t)json_object_get_string_len(content);
        } else if (json_object_is_type(content, json_type_array)) {
            for (size_t j = 0; j < json_object_array_length(content); j++) {
                json_object *part = json_object_array_get_idx(content, j), *type = NULL, *text = NULL;
                if (!json_object_is_type(part, json_type_object) || !(type = field(part, "type")) ||
                    !json_object_is_type(type, json_type_string) || strcmp(json_object_get_string(type), "text") ||
                    !(text = field(part, "text")) || !json_object_is_type(text, json_type_string)) {
                    srv_error_json(err, 400, NULL, "invalid_value", "messages", "%s.content[%zu]: only {\"type\": \"text\", \"text\": ...} parts are supported", name, j);
                    st = 400;
                    break;
                }
                srv_buf_put(&parts[i], json_object_get_string(text), (size_t)json_object_get_string_len(text));
            }
            m[i].content = parts[i].p ? parts[i].p : "";
            m[i].content_len = parts[i].len;
        } else {
            srv_error_json(err, 400, NULL, "invalid_type", "messages", "%s.content must be a string or an array of text parts", name);
            st = 400;
        }
    }
    char msg[256];
    if (!st && srv_tmpl_tokens(&S->tmpl, S->tok, m, (int)n, &r->prompt, &r->n_prompt, msg, sizeof msg)) {
        srv_error_json(err, 400, NULL, "invalid_value", "messages", "%s", msg);
        st = 400;
    }
    for (size_t i = 0; parts && i < n; i++) srv_buf_free(&parts[i]);
    free(parts);
    free(m);
    return st;
}

static int add_stop(srv_req *r, const char *s, size_t len, srv_buf *err) {
    if (!len) { srv_error_json(err, 400, NULL, "invalid_value", "stop", "stop strings must not be empty"); return 400; }
    if (len > 256) { srv_error_json(err, 400, NULL, "invalid_value", "stop", "stop strings are limited to 256 bytes"); return 400; }
    if (memchr(s, '\0', len)) { srv_error_json(err, 400, NULL, "invalid_value", "stop", "stop strings must not contain NUL"); return 400; }
    for (int i = 0; i < r->n_stops; i++)
        if (!strcmp(r->stops[i], s)) return 0;
    if (r->n_stops == FB_MAX_STOPS) { srv_error_json(err, 400, NULL, "invalid_value", "stop", "at most %d stop strings", FB_MAX_STOPS); return 400; }
    if (!(r->stops[r->n_stops] = strdup(s))) { srv_error_json(err, 500, NULL, NULL, NULL, "out of memory"); return 500; }
    r->n_stops++;
    return 0;
}

static uint64_t mix64(uint64_t z) {   /* splitmix64's finaliser */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t random_seed(srv *S) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&S->mu);
    const uint64_t k = ++S->id_counter;
    pthread_mutex_unlock(&S->mu);
    return mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (k * 0x9E3779B97F4A7C15ull));
}

#define TRY_FIELD(call) do { if ((call) < 0) { st = 400; goto done; } } while (0)

int srv_parse_completion(srv *S, const char *body, size_t len, srv_kind kind, srv_req **out, srv_buf *err) {
    *out = NULL;
    json_object *root = parse_body(body, len, err);
    if (!root) return 400;
    srv_req *r = srv_req_new(kind);
    int st = r ? check_model(S, root, err) : 500;
    if (!r) srv_error_json(err, 500, NULL, NULL, NULL, "out of memory");
    if (st) goto done;

    long n = 1, max_tokens = kind == SRV_COMPLETION ? 16 : 0, top_k = 0, seed = 0, lp = 0, top_lp = 0, last_n = 64;
    double temp = 1.0, top_p = 1.0, min_p = 0.0, pres = 0.0, freq = 0.0, rep = 1.0;
    int stream = 0, ignore_eos = 0, has_seed, want_lp = 0;
    TRY_FIELD(get_long(root, "n", 1, SRV_MAX_N < S->opt.parallel ? SRV_MAX_N : S->opt.parallel, &n, err));
    TRY_FIELD(get_long(root, "max_tokens", 1, 1L << 30, &max_tokens, err));
    if (kind == SRV_CHAT) TRY_FIELD(get_long(root, "max_completion_tokens", 1, 1L << 30, &max_tokens, err));
    TRY_FIELD(get_double(root, "temperature", 0.0, 2.0, &temp, err));
    TRY_FIELD(get_double(root, "top_p", 1e-9, 1.0, &top_p, err));
    TRY_FIELD(get_long(root, "top_k", -1, 1L << 30, &top_k, err));
    TRY_FIELD(get_double(root, "min_p", 0.0, 1.0, &min_p, err));
    TRY_FIELD(get_double(root, "presence_penalty", -2.0, 2.0, &pres, err));
    TRY_FIELD(get_double(root, "frequency_penalty", -2.0, 2.0, &freq, err));
    TRY_FIELD(get_double(root, "repetition_penalty", 1e-3, 100.0, &rep, err));
    TRY_FIELD(get_double(root, "repeat_penalty", 1e-3, 100.0, &rep, err));
    TRY_FIELD(get_long(root, "repeat_last_n", -1, 1L << 30, &last_n, err));
    TRY_FIELD(has_seed = get_long(root, "seed", INT64_MIN / 2, INT64_MAX / 2, &seed, err));
    TRY_FIELD(get_bool(root, "stream", &stream, err));
    TRY_FIELD(get_bool(root, "ignore_eos", &ignore_eos, err));
    if (kind == SRV_COMPLETION) {
        TRY_FIELD(want_lp = get_long(root, "logprobs", 0, SRV_MAX_TOP, &lp, err));
        if (want_lp) top_lp = lp;
    } else {
        TRY_FIELD(get_bool(root, "logprobs", &want_lp, err));
        TRY_FIELD(get_long(root, "top_logprobs", 0, SRV_MAX_TOP, &top_lp, err));
        if (top_lp > 0 && !want_lp) {
            srv_error_json(err, 400, NULL, "invalid_value", "top_logprobs", "top_logprobs needs logprobs: true");
            st = 400;
            goto done;
        }
    }
    json_object *so = field(root, "stream_options");
    if (so) {
        if (!json_object_is_type(so, json_type_object)) {
            srv_error_json(err, 400, NULL, "invalid_type", "stream_options", "stream_options must be an object");
            st = 400;
            goto done;
        }
        TRY_FIELD(get_bool(so, "include_usage", &r->include_usage, err));
    }
    json_object *stop = field(root, "stop");
    if (stop && json_object_is_type(stop, json_type_string)) {
        if ((st = add_stop(r, json_object_get_string(stop), (size_t)json_object_get_string_len(stop), err))) goto done;
    } else if (stop && json_object_is_type(stop, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(stop); i++) {
            json_object *s = json_object_array_get_idx(stop, i);
            if (!json_object_is_type(s, json_type_string)) {
                srv_error_json(err, 400, NULL, "invalid_type", "stop", "stop[%zu] must be a string", i);
                st = 400;
                goto done;
            }
            if ((st = add_stop(r, json_object_get_string(s), (size_t)json_object_get_string_len(s), err))) goto done;
        }
    } else if (stop) {
        srv_error_json(err, 400, NULL, "invalid_type", "stop", "stop must be a string or an array of strings");
        st = 400;
        goto done;
    }

    st = kind == SRV_CHAT ? parse_messages(S, root, r, err) : parse_prompt(S, root, r, err);
    if (st) goto done;
    if (kind == SRV_CHAT) {   /* the template's end-of-turn marker, when it decodes as text */
        const char *ts[2];
        for (int i = 0, k = srv_tmpl_stops(&S->tmpl, ts, 2); i < k && r->n_stops < FB_MAX_STOPS; i++)
            if ((st = add_stop(r, ts[i], strlen(ts[i]), err))) goto done;
    }
    if (r->n_prompt == 0) {
        srv_error_json(err, 400, NULL, "invalid_value", kind == SRV_CHAT ? "messages" : "prompt",
                       "the prompt is empty and the tokenizer has no BOS token to start from");
        st = 400;
        goto done;
    }
    if (r->n_prompt >= S->ctx) {
        srv_error_json(err, 400, NULL, "context_length_exceeded", kind == SRV_CHAT ? "messages" : "prompt",
                       "this model's maximum context length is %d tokens, but the prompt has %d tokens", S->ctx, r->n_prompt);
        st = 400;
        goto done;
    }
    if (max_tokens > 0 && r->n_prompt + max_tokens > S->ctx) {
        srv_error_json(err, 400, NULL, "context_length_exceeded", "max_tokens",
                       "this model's maximum context length is %d tokens, but %ld were requested (%d in the prompt + %ld for the completion)",
                       S->ctx, r->n_prompt + max_tokens, r->n_prompt, max_tokens);
        st = 400;
        goto done;
    }

    r->stream = stream;
    r->n = (int)n;
    r->max_tokens = (int)max_tokens;
    r->logprobs = want_lp;
    r->top_logprobs = (int)top_lp;
    fb_gen_params *gp = &r->gp;
    gp->temperature = (float)temp;
    gp->top_p = (float)top_p;
    gp->top_k = top_k < 0 ? 0 : (int)top_k;
    gp->min_p = (float)min_p;
    gp->presence_penalty = (float)pres;
    gp->frequency_penalty = (float)freq;
    gp->repetition_penalty = (float)rep;
    gp->repetition_window = (int)last_n;
    gp->stop_at_eos = !ignore_eos;
    const uint64_t base = has_seed ? (uint64_t)seed : random_seed(S);
    r->choices = calloc((size_t)n, sizeof *r->choices);
    if (!r->choices) { srv_error_json(err, 500, NULL, NULL, NULL, "out of memory"); st = 500; goto done; }
    for (int i = 0; i < r->n; i++) {
        srv_choice *c = &r->choices[i];
        c->req = r;
        c->index = i;
        /* choice 0 draws exactly what a request with n = 1 and this seed
         * draws (and `flashblock generate --seed`); the others get seeds
         * mixed from it (xorshift streams of adjacent seeds start alike) */
        c->seed = i == 0 ? base : mix64(base + 0x9E3779B97F4A7C15ull * (uint64_t)i);
        c->seq = c->probe = -1;
    }
    snprintf(r->id, sizeof r->id, "%s-%016llx", kind == SRV_CHAT ? "chatcmpl" : "cmpl", (unsigned long long)random_seed(S));
    r->created = (long)time(NULL);
    r->t_arrival = srv_now();
done:
    json_object_put(root);
    if (st) { if (r) srv_req_release(S, r); return st; }
    *out = r;
    return 0;
}

/* ---- responses ---------------------------------------------------------------------------- */

static const char *finish_name(srv_finish f) {
    return f == SRV_FIN_STOP ? "stop" : f == SRV_FIN_LENGTH ? "length" : NULL;
}

static json_object *token_text(srv *S, int32_t id) {
    size_t len = 0;
    const char *b = fb_tokenizer_token_bytes(S->tok, id, &len);
    return jstr(b ? b : "", b ? len : 0);
}

static json_object *token_bytes(srv *S, int32_t id) {
    size_t len = 0;
    const char *b = fb_tokenizer_token_bytes(S->tok, id, &len);
    json_object *a = json_object_new_array();
    for (size_t i = 0; b && i < len; i++) json_object_array_add(a, json_object_new_int((unsigned char)b[i]));
    return a;
}

/* Logprobs of tokens [from, to) of a choice, in the shape of the request's API. */
static json_object *logprobs_json(srv *S, const srv_req *r, const srv_choice *c, int from, int to) {
    if (!r->logprobs) return NULL;
    if (r->kind == SRV_CHAT) {
        json_object *content = json_object_new_array();
        for (int i = from; i < to; i++) {
            const srv_token *t = &c->toks[i];
            json_object *e = json_object_new_object();
            json_object_object_add(e, "token", token_text(S, t->id));
            json_object_object_add(e, "logprob", jnum(t->logprob));
            json_object_object_add(e, "bytes", token_bytes(S, t->id));
            json_object *top = json_object_new_array();
            for (int k = 0; k < t->n_top; k++) {
                json_object *a = json_object_new_object();
                json_object_object_add(a, "token", token_text(S, t->top_ids[k]));
                json_object_object_add(a, "logprob", jnum(t->top_lps[k]));
                json_object_object_add(a, "bytes", token_bytes(S, t->top_ids[k]));
                json_object_array_add(top, a);
            }
            json_object_object_add(e, "top_logprobs", top);
            json_object_array_add(content, e);
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "content", content);
        json_object_object_add(o, "refusal", NULL);
        return o;
    }
    json_object *toks = json_object_new_array(), *lps = json_object_new_array(), *tops = json_object_new_array(),
                *offs = json_object_new_array();
    for (int i = from; i < to; i++) {
        const srv_token *t = &c->toks[i];
        json_object_array_add(toks, token_text(S, t->id));
        json_object_array_add(lps, jnum(t->logprob));
        json_object_array_add(offs, json_object_new_int64((int64_t)t->text_off));
        if (r->top_logprobs > 0) {
            json_object *d = json_object_new_object();
            for (int k = 0; k < t->n_top; k++) {
                json_object *key = token_text(S, t->top_ids[k]);
                json_object_object_add(d, json_object_get_string(key), jnum(t->top_lps[k]));
                json_object_put(key);
            }
            json_object_array_add(tops, d);
        } else {
            json_object_array_add(tops, NULL);
        }
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tokens", toks);
    json_object_object_add(o, "token_logprobs", lps);
    json_object_object_add(o, "top_logprobs", tops);
    json_object_object_add(o, "text_offset", offs);
    return o;
}

static json_object *usage_json(const srv_req *r) {
    long gen = 0;
    for (int i = 0; i < r->n; i++) gen += r->choices[i].n_gen;
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int(r->n_prompt));
    json_object_object_add(u, "completion_tokens", json_object_new_int64(gen));
    json_object_object_add(u, "total_tokens", json_object_new_int64(gen + r->n_prompt));
    return u;
}

/* llama.cpp's timings object: prompt = arrival to the first token (queue and
 * prefill), predicted = first token to the last. */
static json_object *timings_json(const srv_req *r) {
    long gen = 0;
    for (int i = 0; i < r->n; i++) gen += r->choices[i].n_gen;
    const double t_first = r->t_first > 0 ? r->t_first : r->t_done;
    const double pms = 1e3 * (t_first - r->t_arrival), gms = 1e3 * (r->t_done - t_first);
    json_object *t = json_object_new_object();
    json_object_object_add(t, "prompt_n", json_object_new_int(r->n_prompt));
    json_object_object_add(t, "prompt_ms", jnum(pms));
    json_object_object_add(t, "prompt_per_second", jnum(pms > 0 ? 1e3 * r->n_prompt / pms : 0));
    json_object_object_add(t, "predicted_n", json_object_new_int64(gen));
    json_object_object_add(t, "predicted_ms", jnum(gms));
    json_object_object_add(t, "predicted_per_second", jnum(gms > 0 ? 1e3 * (double)gen / gms : 0));
    return t;
}

static json_object *head(srv *S, const srv_req *r, int chunk) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(r->id));
    json_object_object_add(o, "object", json_object_new_string(r->kind == SRV_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                                                  : "text_completion"));
    json_object_object_add(o, "created", json_object_new_int64(r->created));
    json_object_object_add(o, "model", json_object_new_string(S->model_id));
    json_object_object_add(o, "system_fingerprint", json_object_new_string("flashblock-" FB_VERSION_STRING));
    return o;
}

void srv_response_json(srv *S, srv_req *r, srv_buf *out) {
    json_object *o = head(S, r, 0), *choices = json_object_new_array();
    for (int i = 0; i < r->n; i++) {
        const srv_choice *c = &r->choices[i];
        json_object *ch = json_object_new_object();
        json_object_object_add(ch, "index", json_object_new_int(i));
        json_object *text = jstr(c->text.p ? c->text.p : "", c->text.len);
        if (r->kind == SRV_CHAT) {
            json_object *m = json_object_new_object();
            json_object_object_add(m, "role", json_object_new_string("assistant"));
            json_object_object_add(m, "content", text);
            json_object_object_add(ch, "message", m);
        } else {
            json_object_object_add(ch, "text", text);
        }
        json_object_object_add(ch, "logprobs", logprobs_json(S, r, c, 0, c->n_toks_committed));
        const char *fin = finish_name(c->finish);
        json_object_object_add(ch, "finish_reason", fin ? json_object_new_string(fin) : NULL);
        json_object_array_add(choices, ch);
    }
    json_object_object_add(o, "choices", choices);
    json_object_object_add(o, "usage", usage_json(r));
    json_object_object_add(o, "timings", timings_json(r));
    put_json(out, o);
    json_object_put(o);
}

/* One SSE event with one choice. */
static void chunk(srv *S, const srv_req *r, const srv_choice *c, const char *text, size_t len, int role, int from_tok,
                  int to_tok, const char *fin, srv_buf *out) {
    json_object *o = head(S, r, 1), *choices = json_object_new_array(), *ch = json_object_new_object();
    json_object_object_add(ch, "index", json_object_new_int(c->index));
    if (r->kind == SRV_CHAT) {
        json_object *d = json_object_new_object();
        if (role) json_object_object_add(d, "role", json_object_new_string("assistant"));
        if (text) json_object_object_add(d, "content", jstr(text, len));
        json_object_object_add(ch, "delta", d);
    } else {
        json_object_object_add(ch, "text", jstr(text ? text : "", text ? len : 0));
    }
    json_object_object_add(ch, "logprobs", to_tok > from_tok ? logprobs_json(S, r, c, from_tok, to_tok) : NULL);
    json_object_object_add(ch, "finish_reason", fin ? json_object_new_string(fin) : NULL);
    json_object_array_add(choices, ch);
    json_object_object_add(o, "choices", choices);
    if (r->include_usage) json_object_object_add(o, "usage", NULL);
    srv_buf_puts(out, "data: ");
    put_json(out, o);
    srv_buf_puts(out, "\n\n");
    json_object_put(o);
}

int srv_stream_events(srv *S, srv_req *r, srv_stream *st, srv_buf *out) {
    if (st->finished) return 0;
    const size_t len0 = out->len;
    for (int i = 0; i < r->n; i++) {
        const srv_choice *c = &r->choices[i];
        if (st->finish_sent[i]) continue;
        if (r->kind == SRV_CHAT && !st->role_sent[i] && !r->error_status) {
            chunk(S, r, c, "", 0, 1, 0, 0, NULL, out);
            st->role_sent[i] = 1;
        }
        const char *text = c->text.p ? c->text.p : "";   /* no bytes yet: never NULL + 0 */
        const size_t sent = st->sent_text[i];
        size_t end = c->committed;
        if (!c->finish) end = sent + srv_utf8_complete(text + sent, end - sent);
        const int toks = c->n_toks_committed;
        const char *fin = finish_name(c->finish);
        /* the completions API carries the finish reason with the last text */
        const int fin_here = fin && r->kind == SRV_COMPLETION;
        if (end > sent || toks > st->sent_toks[i] || fin_here) {
            chunk(S, r, c, text + sent, end - sent, 0, st->sent_toks[i], toks, fin_here ? fin : NULL, out);
            st->sent_text[i] = end;
            st->sent_toks[i] = toks;
        }
        if (c->finish) {
            if (fin && r->kind == SRV_CHAT) chunk(S, r, c, NULL, 0, 0, 0, 0, fin, out);
            st->finish_sent[i] = 1;
        }
    }
    if (r->done) {
        if (r->error_status) {
            srv_buf err = {0};
            srv_error_json(&err, r->error_status, NULL, NULL, NULL, "%s", r->error_msg);
            srv_buf_puts(out, "data: ");
            srv_buf_put(out, err.p, err.len);
            srv_buf_puts(out, "\n\n");
            srv_buf_free(&err);
        } else if (r->include_usage) {   /* OpenAI's usage chunk; timings ride along */
            json_object *o = head(S, r, 1);
            json_object_object_add(o, "choices", json_object_new_array());
            json_object_object_add(o, "usage", usage_json(r));
            json_object_object_add(o, "timings", timings_json(r));
            srv_buf_puts(out, "data: ");
            put_json(out, o);
            srv_buf_puts(out, "\n\n");
            json_object_put(o);
        }
        srv_buf_puts(out, "data: [DONE]\n\n");
        st->finished = 1;
    }
    return out->len > len0;
}

/* ---- tokenize, detokenize, models -------------------------------------------------------------- */

int srv_tokenize_json(srv *S, const char *body, size_t len, srv_buf *out) {
    json_object *root = parse_body(body, len, out);
    if (!root) return 400;
    int st = check_model(S, root, out), add_special = 0, pieces = 0;
    json_object *c = field(root, "content");
    if (!c) c = field(root, "prompt");
    if (!st && (!c || !json_object_is_type(c, json_type_string))) {
        srv_error_json(out, 400, NULL, c ? "invalid_type" : "missing_field", "content", "content must be a string");
        st = 400;
    }
    if (!st && (get_bool(root, "add_special", &add_special, out) < 0 || get_bool(root, "with_pieces", &pieces, out) < 0)) st = 400;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (!st) {
        const unsigned flags = add_special ? FB_TOK_ADD_BOS : 0;
        if (fb_tokenizer_encode(S->tok, json_object_get_string(c), (size_t)json_object_get_string_len(c), flags, &ids, &n, &cap) != FB_OK) {
            srv_error_json(out, 400, NULL, "invalid_value", "content", "cannot tokenize: %s", fb_last_error());
            st = 400;
        }
    }
    if (!st) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            if (!pieces) { json_object_array_add(a, json_object_new_int(ids[i])); continue; }
            json_object *e = json_object_new_object();
            json_object_object_add(e, "id", json_object_new_int(ids[i]));
            json_object_object_add(e, "piece", token_text(S, ids[i]));
            json_object_array_add(a, e);
        }
        json_object_object_add(o, "tokens", a);
        json_object_object_add(o, "count", json_object_new_int64((int64_t)n));
        json_object_object_add(o, "max_model_len", json_object_new_int(S->ctx));
        out->len = 0;
        put_json(out, o);
        json_object_put(o);
    }
    free(ids);
    json_object_put(root);
    return st;
}

int srv_detokenize_json(srv *S, const char *body, size_t len, srv_buf *out) {
    json_object *root = parse_body(body, len, out);
    if (!root) return 400;
    int st = check_model(S, root, out), n = 0;
    json_object *t = field(root, "tokens");
    int32_t *ids = NULL;
    if (!st && (!t || !json_object_is_type(t, json_type_array))) {
        srv_error_json(out, 400, NULL, t ? "invalid_type" : "missing_field", "tokens", "tokens must be an array of token ids");
        st = 400;
    }
    if (!st) st = token_array(S, t, "tokens", &ids, &n, out);
    char *text = NULL;
    size_t tl = 0;
    if (!st && fb_tokenizer_decode(S->tok, ids, (size_t)n, &text, &tl) != FB_OK) {
        srv_error_json(out, 400, NULL, "invalid_value", "tokens", "cannot decode: %s", fb_last_error());
        st = 400;
    }
    if (!st) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "content", jstr(text ? text : "", tl));
        out->len = 0;
        put_json(out, o);
        json_object_put(o);
    }
    free(text);
    free(ids);
    json_object_put(root);
    return st;
}

void srv_models_json(srv *S, srv_buf *out, const char *one) {
    json_object *m = json_object_new_object();
    json_object_object_add(m, "id", json_object_new_string(S->model_id));
    json_object_object_add(m, "object", json_object_new_string("model"));
    json_object_object_add(m, "created", json_object_new_int64(0));
    json_object_object_add(m, "owned_by", json_object_new_string("flashblock"));
    json_object *meta = json_object_new_object();
    json_object_object_add(meta, "format", json_object_new_string(fb_llm_format(S->llm)));
    json_object_object_add(meta, "vocab_size", json_object_new_int(S->vocab));
    json_object_object_add(meta, "n_ctx", json_object_new_int(S->ctx));
    json_object_object_add(meta, "parallel", json_object_new_int(S->opt.parallel));
    json_object_object_add(meta, "chat_template", json_object_new_string(srv_tmpl_name(S->tmpl.kind)));
    json_object_object_add(meta, "paged_kv", json_object_new_boolean(1));
    json_object_object_add(meta, "kv_block_size", json_object_new_int(S->block_size));
    json_object_object_add(m, "meta", meta);
    json_object_object_add(m, "max_model_len", json_object_new_int(S->ctx));
    json_object *o = m;
    if (!one) {
        o = json_object_new_object();
        json_object_object_add(o, "object", json_object_new_string("list"));
        json_object *d = json_object_new_array();
        json_object_array_add(d, m);
        json_object_object_add(o, "data", d);
    }
    put_json(out, o);
    json_object_put(o);
}
