/*
 * Chat templates: OpenAI messages -> prompt tokens.
 *
 * The known templates are written out in C (no Jinja): chatml, llama2,
 * llama3, mistral, zephyr, phi3, gemma. A GGUF's tokenizer.chat_template
 * is recognised by its markers (as llama.cpp does); --chat-template forces
 * one. Special markers ("<|im_start|>", "<|eot_id|>", ...) become their
 * token when the vocabulary has it as one piece, else they are encoded as
 * text; "<s>" / "</s>" are the tokenizer's BOS / EOS.
 */
#ifndef FB_SERVER_CHAT_TEMPLATE_H
#define FB_SERVER_CHAT_TEMPLATE_H
#include "flashblock_tokenizer.h"
#include <stddef.h>
#include <stdint.h>

typedef enum srv_tmpl_kind {
    SRV_TMPL_CHATML = 0, SRV_TMPL_LLAMA2, SRV_TMPL_LLAMA3, SRV_TMPL_MISTRAL,
    SRV_TMPL_ZEPHYR, SRV_TMPL_PHI3, SRV_TMPL_GEMMA, SRV_TMPL_COUNT
} srv_tmpl_kind;

#define SRV_TMPL_MAX_SPECIALS 8
typedef struct srv_chat_template {
    srv_tmpl_kind kind;
    const char *origin;                       /* "gguf", "--chat-template" or "default" */
    int special_id[SRV_TMPL_MAX_SPECIALS];    /* resolved ids of the kind's markers (-1: text) */
} srv_chat_template;

typedef struct srv_chat_msg {
    const char *role;                         /* system, developer, user, assistant, tool */
    const char *content;
    size_t content_len;
} srv_chat_msg;

const char *srv_tmpl_name(srv_tmpl_kind k);
/* "chatml|llama2|..." for help texts. */
const char *srv_tmpl_list(void);
/* 0 and *out on a known name, else -1. */
int srv_tmpl_from_name(const char *name, srv_tmpl_kind *out);
/* Recognise a Jinja chat template by its markers: 0 and *out, else -1. */
int srv_tmpl_detect(const char *jinja, size_t len, srv_tmpl_kind *out);
/* Resolve the markers of t->kind against the vocabulary (tok may be NULL:
 * everything is text). */
void srv_tmpl_init(srv_chat_template *t, srv_tmpl_kind kind, const char *origin, const fb_tokenizer *tok);

/* Extra stop strings of the template (its end-of-turn marker as text). */
int srv_tmpl_stops(const srv_chat_template *t, const char **stops, int cap);

/* The prompt as tokens: BOS first when the template starts with it or the
 * vocabulary is SentencePiece (as fb_seq_add_text does), then the rendered
 * conversation ending with the assistant's header. *ids is malloc'd.
 * Returns 0, or -1 with a message in err (unknown role). */
int srv_tmpl_tokens(const srv_chat_template *t, const fb_tokenizer *tok, const srv_chat_msg *m, int n,
                    int32_t **ids, int *n_ids, char *err, size_t err_cap);
/* The same conversation as text, markers written out (no BOS): for tests
 * and logs. *out is malloc'd and NUL-terminated. */
int srv_tmpl_text(const srv_chat_template *t, const srv_chat_msg *m, int n, char **out, size_t *len,
                  char *err, size_t err_cap);
#endif
