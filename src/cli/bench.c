/* "flashblock bench <what>": dispatch to one benchmark. */
#include "cli/cli.h"
#include <stdio.h>
#include <string.h>

int fb_bench_attention(int argc, char **argv);
int fb_bench_block(int argc, char **argv);
int fb_bench_gemm(int argc, char **argv);
int fb_bench_threads(int argc, char **argv);
int fb_bench_generate(int argc, char **argv);
int fb_bench_train(int argc, char **argv);
int fb_bench_kv(int argc, char **argv);
int fb_bench_comm(int argc, char **argv);

int fb_cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: flashblock bench attention|block|comm|gemm|kv|train|generate|threads|tokenizer [options] [--json]\n"
                   "       flashblock bench <what> --help   for the options of one benchmark\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "attention")) return fb_bench_attention(argc - 1, argv + 1);
    if (!strcmp(argv[1], "block")) return fb_bench_block(argc - 1, argv + 1);
    if (!strcmp(argv[1], "gemm")) return fb_bench_gemm(argc - 1, argv + 1);
    if (!strcmp(argv[1], "kv")) return fb_bench_kv(argc - 1, argv + 1);
    if (!strcmp(argv[1], "comm")) return fb_bench_comm(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return fb_bench_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "generate")) return fb_bench_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "threads")) return fb_bench_threads(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tokenizer")) return fb_bench_tokenizer(argc - 1, argv + 1);
    return fb_cli_usage_error("bench", "unknown benchmark '%s'", argv[1]);
}
