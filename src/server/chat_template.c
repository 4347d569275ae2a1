/* Chat templates written out in C (see chat_template.h). */
#include "server/chat_template.h"
#include "server/srv.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[SRV_TMPL_COUNT] = {"chatml", "llama2", "llama3", "mistral", "zephyr", "phi3", "gemma"};

/* Markers of each template, by index (0..SRV_TMPL_MAX_SPECIALS). */
static const char *const markers[SRV_TMPL_COUNT][SRV_TMPL_MAX_SPECIALS] = {
    [SRV_TMPL_CHATML] = {"<|im_start|>", "<|im_end|>"},
    [SRV_TMPL_LLAMA2] = {"<s>", "</s>"},
    [SRV_TMPL_LLAMA3] = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"},
    [SRV_TMPL_MISTRAL] = {"<s>", "</s>"},
    [SRV_TMPL_ZEPHYR] = {"</s>"},
    [SRV_TMPL_PHI3] = {"<|system|>", "<|user|>", "<|assistant|>", "<|end|>"},
    [SRV_TMPL_GEMMA] = {"<start_of_turn>", "<end_of_turn>"},
};
/* Does the template start with BOS? */
static const int bos_first[SRV_TMPL_COUNT] = {0, 1, 1, 1, 0, 0, 1};
/* End-of-turn marker, a stop string when the vocabulary decodes it as text. */
static const char *const turn_end[SRV_TMPL_COUNT] = {"<|im_end|>", NULL, "<|eot_id|>", NULL, NULL, "<|end|>", "<end_of_turn>"};

const char *srv_tmpl_name(srv_tmpl_kind k) { return k >= 0 && k < SRV_TMPL_COUNT ? names[k] : "?"; }
const char *srv_tmpl_list(void) { return "chatml|llama2|llama3|mistral|zephyr|phi3|gemma"; }

int srv_tmpl_from_name(const char *name, srv_tmpl_kind *out) {
    for (int k = 0; k < SRV_TMPL_COUNT; k++)
        if (name && !strcmp(name, names[k])) { *out = (srv_tmpl_kind)k; return 0; }
    return -1;
}

static int has(const char *s, size_t n, const char *needle) {
    const size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(s + i, needle, m)) return 1;
    return 0;
}

int srv_tmpl_detect(const char *j, size_t n, srv_tmpl_kind *out) {
    srv_tmpl_kind k;
    if (!j || !n) return -1;
    if (has(j, n, "<|im_start|>")) k = SRV_TMPL_CHATML;
    else if (has(j, n, "<|start_header_id|>")) k = SRV_TMPL_LLAMA3;
    else if (has(j, n, "<start_of_turn>")) k = SRV_TMPL_GEMMA;
    else if (has(j, n, "<|assistant|>") && has(j, n, "<|end|>")) k = SRV_TMPL_PHI3;
    else if (has(j, n, "<|assistant|>") && has(j, n, "<|user|>")) k = SRV_TMPL_ZEPHYR;
    else if (has(j, n, "[INST]") && has(j, n, "<<SYS>>")) k = SRV_TMPL_LLAMA2;
    else if (has(j, n, "[INST]")) k = SRV_TMPL_MISTRAL;
    else return -1;
    *out = k;
    return 0;
}

void srv_tmpl_init(srv_chat_template *t, srv_tmpl_kind kind, const char *origin, const fb_tokenizer *tok) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->origin = origin;
    for (int i = 0; i < SRV_TMPL_MAX_SPECIALS; i++) {
        t->special_id[i] = -1;
        const char *m = markers[kind][i];
        if (!m || !tok) continue;
        if (!strcmp(m, "<s>")) { t->special_id[i] = fb_tokenizer_bos_id(tok); continue; }
        if (!strcmp(m, "</s>")) { t->special_id[i] = fb_tokenizer_eos_id(tok); continue; }
        const size_t ml = strlen(m);
        const int V = fb_tokenizer_vocab_size(tok);
        for (int id = 0; id < V; id++) {
            size_t len = 0;
            const char *b = fb_tokenizer_token_bytes(tok, id, &len);
            if (b && len == ml && !memcmp(b, m, ml)) { t->special_id[i] = id; break; }
        }
    }
}

int srv_tmpl_stops(const srv_chat_template *t, const char **stops, int cap) {
    if (cap > 0 && turn_end[t->kind]) { stops[0] = turn_end[t->kind]; return 1; }
    return 0;
}

/* ---- rendering: a stream of text runs and markers -------------------------------- */

typedef struct sink {
    const srv_chat_template *t;
    const fb_tokenizer *tok;      /* NULL: text mode */
    srv_buf text;                 /* text mode: everything; token mode: the pending run */
    int32_t *ids;
    size_t n, cap;
    int fail;
} sink;

static void push_id(sink *k, int32_t id) {
    if (k->n == k->cap) {
        size_t nc = k->cap ? 2 * k->cap : 256;
        int32_t *p = realloc(k->ids, nc * sizeof *p);
        if (!p) { k->fail = 1; return; }
        k->ids = p;
        k->cap = nc;
    }
    k->ids[k->n++] = id;
}

static void flush_run(sink *k) {
    if (!k->tok || !k->text.len) return;
    int32_t *tmp = NULL;
    size_t n = 0, cap = 0;
    if (fb_tokenizer_encode(k->tok, k->text.p, k->text.len, 0, &tmp, &n, &cap) != FB_OK) k->fail = 1;
    for (size_t i = 0; i < n; i++) push_id(k, tmp[i]);
    free(tmp);
    k->text.len = 0;
}

static void T(sink *k, const char *s) { srv_buf_puts(&k->text, s); }
static void Tn(sink *k, const char *s, size_t n) { srv_buf_put(&k->text, s, n); }
/* Marker i of the template: its token when resolved, else its text. */
static void S(sink *k, int i) {
    const char *m = markers[k->t->kind][i];
    if (k->tok && k->t->special_id[i] >= 0) {
        flush_run(k);
        push_id(k, k->t->special_id[i]);
    } else if (k->tok && (!strcmp(m, "<s>") || !strcmp(m, "</s>"))) {
        /* no BOS/EOS in this vocabulary: nothing */
    } else {
        T(k, m);
    }
}

static int role_of(const char *r) {   /* 0 system, 1 user, 2 assistant, -1 unknown */
    if (!strcmp(r, "system") || !strcmp(r, "developer")) return 0;
    if (!strcmp(r, "user") || !strcmp(r, "tool")) return 1;
    if (!strcmp(r, "assistant")) return 2;
    return -1;
}

static int render(sink *k, const srv_chat_msg *m, int n, char *err, size_t err_cap) {
    for (int i = 0; i < n; i++)
        if (role_of(m[i].role) < 0) {
            snprintf(err, err_cap, "messages[%d].role: unknown role '%s' (system, developer, user, assistant, tool)", i, m[i].role);
            return -1;
        }
    const srv_tmpl_kind kind = k->t->kind;
    switch (kind) {
    case SRV_TMPL_CHATML:
        for (int i = 0; i < n; i++) {
            S(k, 0); T(k, m[i].role); T(k, "\n"); Tn(k, m[i].content, m[i].content_len); S(k, 1); T(k, "\n");
        }
        S(k, 0); T(k, "assistant\n");
        break;
    case SRV_TMPL_LLAMA3:
        for (int i = 0; i < n; i++) {
            S(k, 0); T(k, m[i].role); S(k, 1); T(k, "\n\n"); Tn(k, m[i].content, m[i].content_len); S(k, 2);
        }
        S(k, 0); T(k, "assistant"); S(k, 1); T(k, "\n\n");
        break;
    case SRV_TMPL_LLAMA2:
    case SRV_TMPL_MISTRAL: {
        /* [INST] (system) user [/INST] assistant</s><s>[INST] user [/INST] ... */
        const srv_chat_msg *sys = NULL;
        int first_user = 1, after_assistant = 0;
        for (int i = 0; i < n; i++) {
            const int r = role_of(m[i].role);
            if (r == 0) { sys = &m[i]; continue; }
            if (r == 1) {
                if (after_assistant) S(k, 0);
                T(k, "[INST] ");
                if (sys && first_user) {
                    if (kind == SRV_TMPL_LLAMA2) { T(k, "<<SYS>>\n"); Tn(k, sys->content, sys->content_len); T(k, "\n<</SYS>>\n\n"); }
                    else { Tn(k, sys->content, sys->content_len); T(k, "\n\n"); }
                }
                Tn(k, m[i].content, m[i].content_len);
                T(k, " [/INST]");
                first_user = 0;
                after_assistant = 0;
            } else {
                if (kind == SRV_TMPL_LLAMA2) T(k, " ");
                Tn(k, m[i].content, m[i].content_len);
                if (kind == SRV_TMPL_LLAMA2) T(k, " ");
                S(k, 1);
                after_assistant = 1;
            }
        }
        break;
    }
    case SRV_TMPL_ZEPHYR:
        for (int i = 0; i < n; i++) {
            const int r = role_of(m[i].role);
            T(k, r == 0 ? "<|system|>\n" : r == 1 ? "<|user|>\n" : "<|assistant|>\n");
            Tn(k, m[i].content, m[i].content_len); S(k, 0); T(k, "\n");
        }
        T(k, "<|assistant|>\n");
        break;
    case SRV_TMPL_PHI3:
        for (int i = 0; i < n; i++) {
            S(k, role_of(m[i].role)); T(k, "\n"); Tn(k, m[i].content, m[i].content_len); S(k, 3); T(k, "\n");
        }
        S(k, 2); T(k, "\n");
        break;
    case SRV_TMPL_GEMMA: {
        /* no system role: it opens the first user turn */
        const srv_chat_msg *sys = NULL;
        for (int i = 0; i < n; i++) {
            const int r = role_of(m[i].role);
            if (r == 0) { sys = &m[i]; continue; }
            S(k, 0); T(k, r == 2 ? "model\n" : "user\n");
            if (sys && r == 1) { Tn(k, sys->content, sys->content_len); T(k, "\n\n"); sys = NULL; }
            Tn(k, m[i].content, m[i].content_len); S(k, 1); T(k, "\n");
        }
        S(k, 0); T(k, "model\n");
        break;
    }
    default:
        snprintf(err, err_cap, "unknown chat template");
        return -1;
    }
    flush_run(k);
    if (k->fail || k->text.oom) { snprintf(err, err_cap, "chat template: out of memory or encoding failed"); return -1; }
    return 0;
}

int srv_tmpl_tokens(const srv_chat_template *t, const fb_tokenizer *tok, const srv_chat_msg *m, int n,
                    int32_t **ids, int *n_ids, char *err, size_t err_cap) {
    sink k = {.t = t, .tok = tok};
    const int bos = fb_tokenizer_bos_id(tok);
    if (bos >= 0 && (bos_first[t->kind] || fb_tokenizer_get_kind(tok) == FB_TOKENIZER_LLAMA2C)) push_id(&k, bos);
    int rc = render(&k, m, n, err, err_cap);
    srv_buf_free(&k.text);
    if (rc) { free(k.ids); return -1; }
    *ids = k.ids;
    *n_ids = (int)k.n;
    return 0;
}

int srv_tmpl_text(const srv_chat_template *t, const srv_chat_msg *m, int n, char **out, size_t *len,
                  char *err, size_t err_cap) {
    sink k = {.t = t, .tok = NULL};
    int rc = render(&k, m, n, err, err_cap);
    if (rc) { srv_buf_free(&k.text); return -1; }
    if (!k.text.p) srv_buf_put(&k.text, "", 0);
    *out = k.text.p;
    *len = k.text.len;
    return 0;
}
