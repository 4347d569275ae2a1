/*
 * flashblock generate: a thin client of the inference API
 * (include/flashblock_infer.h): load a model (ours, llama2.c, GGUF, llm.c),
 * queue the prompt(s), step the session and stream the text as it comes.
 * -n counts positions including the prompt, as llama2.c's run.c does (so
 * `-n 256` gives the same text as `run -n 256`). Several prompts (--prompts
 * FILE, or --parallel N copies of -p) decode together in one batch; sample k
 * (from 0) draws from its own random stream, seeded with seed + k.
 */
#include "cli/args.h"
#include "cli/cli.h"
#include "flashblock.h"
#include "flashblock_infer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SEQS 64
#define MAX_STOPS FB_MAX_STOPS

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
            "  --parallel N       decode N samples of the prompt together (sample k: seed + k)\n"
            "  --prompts FILE     one prompt per line, decoded together\n"
            "  --batch-size N     prefill chunk (default 512)\n"
            "  --q8               Q8_0 int8 weights for the matmuls, loaded as Q8_0 (no fp32 copy)\n"
            "  --threads N  --quiet (no speed report on stderr)\n"
            "MODEL: flashblock checkpoint (.safetensors), GGUF (llama), llama2.c .bin (v0/v1/v2), llm.c .bin.\n"
            "TOKENIZER: llama2c tokenizer.bin, gpt2:DIR, byte, or a trained vocabulary (default: the model's own).\n");
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
    fb_llm *llm = NULL;
    fb_session *sess = NULL;
    char *prompt_buf = NULL;
    const char *plist[MAX_SEQS];
    int seq_ids[MAX_SEQS];
    fb_seq_event events[MAX_SEQS];
    /* --q8: every matrix goes from the file straight into Q8_0 */
    const fb_llm_load_options lo = {.weights = q8 ? FB_WEIGHTS_Q8_0 : FB_WEIGHTS_F32};
    if (fb_llm_load_ex(&llm, model_path, tok_spec, &lo) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    const fb_model_config *mc = fb_llm_config(llm);
    if (ctx == 0) ctx = mc->max_seq;
    if (mc->block.positions == FB_POS_LEARNED && ctx > mc->max_seq) {
        fb_cli_error("--ctx %ld exceeds the model's %d learned positions", ctx, mc->max_seq);
        goto done;
    }
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
    fb_session_options so = fb_session_options_default();
    so.max_seqs = n_seqs;
    so.ctx = (int)ctx;
    so.max_batch = (int)batch_size;
    so.q8 = q8;
    if (fb_session_create(&sess, llm, &so) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    fb_gen_params gp = fb_gen_params_default();
    gp.temperature = (float)temp;
    gp.top_k = (int)top_k;
    gp.top_p = (float)top_p;
    gp.min_p = (float)min_p;
    gp.repetition_penalty = (float)repeat_penalty;
    gp.repetition_window = (int)repeat_last;
    gp.max_positions = (int)steps;
    gp.n_stops = n_stops;
    for (int q = 0; q < n_stops; q++) gp.stops[q] = stops[q];
    const int stream = n_seqs == 1;
    for (int k = 0; k < n_seqs; k++) {
        gp.seed = (uint64_t)seed + (uint64_t)k;
        if (fb_seq_new(sess, &gp, &seq_ids[k]) != FB_OK ||
            fb_seq_add_text(sess, seq_ids[k], plist[k], strlen(plist[k]), truncate_prompt) != FB_OK) {
            fb_cli_error("prompt %d: %s", k + 1, fb_last_error());
            goto done;
        }
    }
    if (stream) {   /* the prompt as the tokenizer reads it back, as run.c prints it */
        size_t len;
        const char *t = fb_seq_text(sess, seq_ids[0], &len);
        fwrite(t, 1, len, stdout);
        fflush(stdout);
    }
    while (fb_session_active(sess) > 0) {
        int n_ev = 0;
        if (fb_session_step(sess, events, MAX_SEQS, &n_ev) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
        if (!stream || !n_ev || !events[0].text_len) continue;
        fwrite(events[0].text, 1, events[0].text_len, stdout);
        fflush(stdout);
    }
    if (stream) printf("\n");
    else
        for (int k = 0; k < n_seqs; k++) printf("--- sample %d ---\n%s\n", k + 1, fb_seq_text(sess, seq_ids[k], NULL));
    fflush(stdout);
    fb_session_stats st = fb_session_get_stats(sess);
    if (!quiet)
        fprintf(stderr, "prefill: %ld tokens in %.3f s (%.1f tokens/s); decode: %ld tokens in %.3f s (%.1f tokens/s)%s\n",
                st.prefill_tokens, st.prefill_seconds, st.prefill_tokens / (st.prefill_seconds > 0 ? st.prefill_seconds : 1e-9),
                st.decode_tokens, st.decode_seconds, st.decode_tokens / (st.decode_seconds > 0 ? st.decode_seconds : 1e-9),
                q8 ? " [Q8_0]" : "");
    rc = 0;
done:
    free(prompt_buf);
    fb_session_free(sess);
    fb_llm_free(llm);
    return rc;
}
