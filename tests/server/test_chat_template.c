/* Chat templates of flashblock serve: the text of every template for one
 * conversation, recognition of GGUF Jinja templates by their markers, names,
 * and token rendering (markers become their token when the vocabulary has
 * them, BOS first for SentencePiece vocabularies, unknown roles refused). */
#include "server/chat_template.h"
#include "test_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const srv_chat_msg conv[] = {
    {"system", "Be brief.", 9}, {"user", "Hi", 2}, {"assistant", "Hello!", 6}, {"user", "Why?", 4},
};

static void expect_text(srv_tmpl_kind k, const char *want) {
    srv_chat_template t;
    srv_tmpl_init(&t, k, "test", NULL);
    char *out = NULL, err[128];
    size_t len = 0;
    FB_CHECK(srv_tmpl_text(&t, conv, 4, &out, &len, err, sizeof err) == 0, "%s: %s", srv_tmpl_name(k), err);
    FB_CHECK(out && len == strlen(want) && !strcmp(out, want), "%s:\n got  [%s]\n want [%s]", srv_tmpl_name(k), out ? out : "", want);
    free(out);
}

static void test_texts(void) {
    expect_text(SRV_TMPL_CHATML, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                                 "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n");
    expect_text(SRV_TMPL_LLAMA2, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Why? [/INST]");
    expect_text(SRV_TMPL_MISTRAL, "[INST] Be brief.\n\nHi [/INST]Hello!</s><s>[INST] Why? [/INST]");
    expect_text(SRV_TMPL_LLAMA3, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                                 "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                                 "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                                 "<|start_header_id|>user<|end_header_id|>\n\nWhy?<|eot_id|>"
                                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_text(SRV_TMPL_ZEPHYR, "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nWhy?</s>\n<|assistant|>\n");
    expect_text(SRV_TMPL_PHI3, "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nWhy?<|end|>\n<|assistant|>\n");
    expect_text(SRV_TMPL_GEMMA, "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                                "<start_of_turn>user\nWhy?<end_of_turn>\n<start_of_turn>model\n");
}

static void test_detect(void) {
    static const struct { const char *jinja; int kind; } cases[] = {
        {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}", SRV_TMPL_CHATML},
        {"{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}", SRV_TMPL_LLAMA3},
        {"{% if messages[0]['role'] == 'system' %}{{ '[INST] <<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}", SRV_TMPL_LLAMA2},
        {"{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}", SRV_TMPL_MISTRAL},
        {"{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}", SRV_TMPL_GEMMA},
        {"{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}", SRV_TMPL_PHI3},
        {"{{ '<|user|>\\n' + message['content'] + eos_token }}{{ '<|assistant|>' }}", SRV_TMPL_ZEPHYR},
        {"{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\\n{% endfor %}", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_tmpl_kind k = SRV_TMPL_COUNT;
        const int rc = srv_tmpl_detect(cases[i].jinja, strlen(cases[i].jinja), &k);
        if (cases[i].kind < 0) FB_CHECK(rc == -1, "case %zu: an unknown template was recognised as %s", i, srv_tmpl_name(k));
        else FB_CHECK(rc == 0 && (int)k == cases[i].kind, "case %zu: detected %s, want %s", i, rc ? "nothing" : srv_tmpl_name(k),
                      srv_tmpl_name((srv_tmpl_kind)cases[i].kind));
    }
    FB_CHECK(srv_tmpl_detect("", 0, &(srv_tmpl_kind){0}) == -1, "empty template recognised");
    for (int k = 0; k < SRV_TMPL_COUNT; k++) {
        srv_tmpl_kind back;
        FB_CHECK(srv_tmpl_from_name(srv_tmpl_name((srv_tmpl_kind)k), &back) == 0 && (int)back == k, "name round trip %d", k);
        FB_CHECK(strstr(srv_tmpl_list(), srv_tmpl_name((srv_tmpl_kind)k)) != NULL, "%s missing from the list", srv_tmpl_name((srv_tmpl_kind)k));
    }
    FB_CHECK(srv_tmpl_from_name("jinja", &(srv_tmpl_kind){0}) == -1, "unknown name accepted");
}

/* A SentencePiece vocabulary: <unk> <s> </s>, the 256 byte pieces, then the
 * two chatml markers as single pieces. */
static fb_tokenizer *small_vocab(int *im_start, int *im_end) {
    enum { N = 3 + 256 + 2 };
    char *pieces[N];
    float scores[N];
    char buf[N][16];
    for (int i = 0; i < N; i++) {
        if (i == 0) strcpy(buf[i], "<unk>");
        else if (i == 1) strcpy(buf[i], "<s>");
        else if (i == 2) strcpy(buf[i], "</s>");
        else if (i < 259) snprintf(buf[i], sizeof buf[i], "<0x%02X>", i - 3);
        else strcpy(buf[i], i == 259 ? "<|im_start|>" : "<|im_end|>");
        pieces[i] = buf[i];
        scores[i] = 0.0f;
    }
    fb_tokenizer *t = NULL;
    FB_CHECK(fb_tokenizer_from_sentencepiece(&t, (const char *const *)pieces, scores, N, 1, 2) == FB_OK, "vocab: %s", fb_last_error());
    *im_start = 259;
    *im_end = 260;
    return t;
}

static void test_tokens(void) {
    int s, e;
    fb_tokenizer *tok = small_vocab(&s, &e);
    if (!tok) return;
    srv_chat_template t;
    srv_tmpl_init(&t, SRV_TMPL_CHATML, "test", tok);
    FB_CHECK(t.special_id[0] == s && t.special_id[1] == e, "markers resolved to %d %d, want %d %d", t.special_id[0], t.special_id[1], s, e);
    int32_t *ids = NULL;
    int n = 0;
    char err[128];
    FB_CHECK(srv_tmpl_tokens(&t, tok, conv + 1, 1, &ids, &n, err, sizeof err) == 0, "tokens: %s", err);
    /* BOS, <|im_start|>, "user\nHi" as text, <|im_end|>, "\n", <|im_start|>, "assistant\n" */
    FB_CHECK(n > 6 && ids[0] == 1 && ids[1] == s, "starts with BOS and the marker: %d %d", n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1);
    int starts = 0, ends = 0;
    for (int i = 0; i < n; i++) { starts += ids[i] == s; ends += ids[i] == e; }
    FB_CHECK(starts == 2 && ends == 1, "markers as tokens: %d starts, %d ends", starts, ends);
    char *text = NULL;
    size_t len = 0;
    FB_CHECK(fb_tokenizer_decode(tok, ids, (size_t)n, &text, &len) == FB_OK && strstr(text, "assistant\n"), "decoded: %s", text ? text : "");
    free(text);
    free(ids);
    /* llama2: <s> and </s> between turns are BOS and EOS */
    srv_tmpl_init(&t, SRV_TMPL_LLAMA2, "test", tok);
    FB_CHECK(srv_tmpl_tokens(&t, tok, conv, 4, &ids, &n, err, sizeof err) == 0, "llama2 tokens: %s", err);
    int bos = 0, eos = 0;
    for (int i = 0; i < n; i++) { bos += ids[i] == 1; eos += ids[i] == 2; }
    FB_CHECK(ids[0] == 1 && bos == 2 && eos == 1, "llama2: %d BOS, %d EOS", bos, eos);
    free(ids);
    const srv_chat_msg bad[] = {{"wizard", "x", 1}};
    ids = NULL;
    FB_CHECK(srv_tmpl_tokens(&t, tok, bad, 1, &ids, &n, err, sizeof err) == -1 && strstr(err, "wizard") && !ids, "unknown role: %s", err);
    const char *stops[2];
    srv_tmpl_init(&t, SRV_TMPL_LLAMA3, "test", NULL);
    FB_CHECK(srv_tmpl_stops(&t, stops, 2) == 1 && !strcmp(stops[0], "<|eot_id|>"), "llama3 stop string");
    fb_tokenizer_free(tok);
}

int main(void) {
    test_texts();
    test_detect();
    test_tokens();
    return fb_test_finish("test_chat_template");
}
