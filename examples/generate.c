/* Generate text with flashblock's public API: load a model, queue a prompt,
 * step the session and print each piece as it comes. Greedy by default, so
 * the output equals `flashblock generate -m MODEL -z TOK -p PROMPT -n N --temp 0`.
 *
 *   cc generate.c $(pkg-config --cflags --libs flashblock) -o generate
 *   ./generate MODEL TOKENIZER|- PROMPT [N [TEMPERATURE [SEED]]]
 */
#include <flashblock.h>
#include <flashblock_infer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "generate: %s: %s\n", what, fb_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL TOKENIZER|- PROMPT [N [TEMPERATURE [SEED]]]\n", argv[0]);
        return 2;
    }
    const char *tokenizer = strcmp(argv[2], "-") ? argv[2] : NULL;   /* "-": the model's own */
    fb_llm *llm = NULL;
    if (fb_llm_load(&llm, argv[1], tokenizer) != FB_OK) return fail(argv[1]);

    fb_session *session = NULL;
    if (fb_session_create(&session, llm, NULL) != FB_OK) return fail("session");

    fb_gen_params params = fb_gen_params_default();
    params.max_positions = argc > 4 ? atoi(argv[4]) : 256;   /* prompt included, as llama2.c's -n */
    params.temperature = argc > 5 ? (float)atof(argv[5]) : 0.0f;
    params.top_p = 0.9f;
    params.seed = argc > 6 ? strtoull(argv[6], NULL, 10) : 42;
    int seq;
    if (fb_seq_new(session, &params, &seq) != FB_OK) return fail("sequence");
    if (fb_seq_add_text(session, seq, argv[3], strlen(argv[3]), 0) != FB_OK) return fail("prompt");

    size_t len;
    const char *text = fb_seq_text(session, seq, &len);   /* the prompt as the model reads it */
    fwrite(text, 1, len, stdout);
    while (fb_session_active(session) > 0) {
        fb_seq_event ev;
        int n;
        if (fb_session_step(session, &ev, 1, &n) != FB_OK) return fail("step");
        if (n == 1) fwrite(ev.text, 1, ev.text_len, stdout);
        fflush(stdout);
    }
    printf("\n");
    fb_session_free(session);
    fb_llm_free(llm);
    return 0;
}
