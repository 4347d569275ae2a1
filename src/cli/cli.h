/* Subcommands of the flashblock CLI. Each returns the process exit code:
 * 0 success, 1 runtime error (one line on stderr), 2 usage error. */
#ifndef FB_CLI_H
#define FB_CLI_H

int fb_cmd_bench(int argc, char **argv);          /* bench/ *.c dispatch */
int fb_cmd_demo(int argc, char **argv);
int fb_cmd_tokenize(int argc, char **argv);
int fb_cmd_detokenize(int argc, char **argv);
int fb_cmd_tokenizer(int argc, char **argv);      /* "tokenizer train ..." */
int fb_bench_tokenizer(int argc, char **argv);    /* "bench tokenizer ..." */
int fb_cmd_train(int argc, char **argv);
int fb_cmd_eval(int argc, char **argv);
int fb_cmd_inspect(int argc, char **argv);
int fb_cmd_generate(int argc, char **argv);
int fb_cmd_serve(int argc, char **argv);           /* src/server/, when libmicrohttpd is found */
int fb_cmd_convert(int argc, char **argv);
int fb_cmd_quantize(int argc, char **argv);

/* Print "flashblock: error: <msg>" on stderr; returns 1. */
int fb_cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Print "flashblock: <msg>" plus a hint to use --help on stderr; returns 2. */
int fb_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
#endif
