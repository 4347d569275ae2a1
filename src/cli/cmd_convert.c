/*
 * flashblock convert -m IN -o OUT [--type f32|f16|q8_0] [-z tokenizer.bin]
 * flashblock quantize IN OUT [-z tokenizer.bin]      (= convert --type q8_0)
 * IN: any model generate reads. OUT: *.gguf (GGUF v3) or *.bin (llama2.c v0).
 */
#include "cli/args.h"
#include "cli/cli.h"
#include "infer/convert.h"
#include "infer/model_load.h"
#include <stdio.h>
#include <string.h>

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int convert(const char *cmd, const char *in, const char *out, const char *type, const char *tok_bin) {
    fb_ggml_type t;
    if (!strcmp(type, "f32")) t = FB_GGML_F32;
    else if (!strcmp(type, "f16")) t = FB_GGML_F16;
    else if (!strcmp(type, "q8_0")) t = FB_GGML_Q8_0;
    else return fb_cli_usage_error(cmd, "--type: expected f32, f16 or q8_0, got '%s'", type);
    const int gguf = ends_with(out, ".gguf");
    if (!gguf && !ends_with(out, ".bin")) return fb_cli_usage_error(cmd, "output must end in .gguf (GGUF) or .bin (llama2.c)");
    if (!gguf && t != FB_GGML_F32) return fb_cli_usage_error(cmd, "llama2.c output is fp32 only");
    fb_model *m = NULL;
    fb_tokenizer *tok = NULL;
    fb_model_format fmt;
    if (fb_model_load_any(in, &m, &tok, &fmt, NULL) != FB_OK) return fb_cli_error("%s", fb_last_error());
    fb_tokenizer_free(tok);
    fb_status s = gguf ? fb_export_gguf(out, m, t, tok_bin) : fb_export_llama2c(out, m);
    fb_model_free(m);
    if (s != FB_OK) return fb_cli_error("%s", fb_last_error());
    fprintf(stderr, "wrote %s (%s, %s)\n", out, gguf ? "GGUF" : "llama2.c v0", gguf ? type : "f32");
    return 0;
}

int fb_cmd_convert(int argc, char **argv) {
    const char *cmd = "convert", *in = NULL, *out = NULL, *type = "f32", *tok = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: flashblock convert -m IN -o OUT.gguf|OUT.bin [--type f32|f16|q8_0] [-z tokenizer.bin]\n"
                   "IN: flashblock checkpoint, GGUF, llama2.c or llm.c file. OUT.gguf: GGUF v3 (llama or gpt2\n"
                   "architecture); OUT.bin: llama2.c legacy checkpoint. -z embeds a llama2.c vocabulary in GGUF.\n");
            return 0;
        } else if (!strcmp(a, "-m")) { if (!(in = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-o")) { if (!(out = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--type")) { if (!(type = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-z")) { if (!(tok = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (!in || !out) return fb_cli_usage_error(cmd, "-m IN and -o OUT are required");
    return convert(cmd, in, out, type, tok);
}

int fb_cmd_quantize(int argc, char **argv) {
    const char *cmd = "quantize", *pos[2] = {NULL, NULL}, *tok = NULL;
    int np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: flashblock quantize IN OUT.gguf [-z tokenizer.bin]\n"
                   "Writes OUT as GGUF with Q8_0 matrices (blocks of 32 int8 + fp16 scale); norms stay F32.\n");
            return 0;
        } else if (!strcmp(a, "-z")) { if (!(tok = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (a[0] == '-' && a[1]) return fb_cli_usage_error(cmd, "unknown option '%s'", a);
        else if (np < 2) pos[np++] = a;
        else return fb_cli_usage_error(cmd, "too many arguments");
    }
    if (np != 2) return fb_cli_usage_error(cmd, "IN and OUT are required");
    if (!ends_with(pos[1], ".gguf")) return fb_cli_usage_error(cmd, "OUT must end in .gguf");
    return convert(cmd, pos[0], pos[1], "q8_0", tok);
}
