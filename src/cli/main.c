/* flashblock command-line entry point: global setup, then one subcommand. */
#include "cli/cli.h"
#include "cli/thread_policy.h"
#include "core/cpu.h"
#include "flashblock.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fb_cli_error(const char *fmt, ...) {
    va_list ap;
    fputs("flashblock: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int fb_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "flashblock %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'flashblock %s --help')\n", cmd);
    return 2;
}

static void usage(FILE *f) {
    fprintf(f,
            "flashblock %s — a transformer engine in C built around FlashAttention\n"
            "\n"
            "usage: flashblock <command> [options]\n"
            "\n"
            "commands:\n"
            "  train                train a GPT/Llama model on a text file (progress, loss curve, checkpoints)\n"
            "  eval                 loss and perplexity of a checkpoint on a file\n"
            "  inspect              attention statistics, ablations and maps of a model on a file\n"
            "  generate             generate text from a model (ours, llama2.c, GGUF, llm.c)\n"
            "  serve                OpenAI-compatible HTTP server with continuous batching and a chat page\n"
            "  convert              write a model as GGUF or llama2.c\n"
            "  quantize             write a model as GGUF with Q8_0 weights\n"
            "  tokenize, detokenize text <-> token ids with a tokenizer\n"
            "  tokenizer train      learn a byte-level BPE vocabulary\n"
            "  demo                 run one transformer block and the attention benchmark\n"
            "  bench attention      FlashAttention vs standard vs naive attention\n"
            "  bench block          one transformer block forward vs its GEMMs\n"
            "  bench gemm           fp32 GEMM throughput (the roofline we compare to)\n"
            "  bench train          one training step at the GPT-2 124M shape\n"
            "  bench generate       decode/prefill speed (optionally beside llama2.c run.c)\n"
            "  bench threads        OpenMP wait policy, idle vs loaded cores\n"
            "  bench tokenizer      tokenizer encode/decode/train speed\n"
            "\n"
            "global options: --help, --version\n"
            "environment: FLASHBLOCK_ISA=generic|avx2|avx512 caps the kernel ISA;\n"
            "  FLASHBLOCK_DISABLE=avx512_vnni,... drops single CPU features;\n"
            "  FLASHBLOCK_KERNEL_<OP>=variant picks an op's kernel;\n"
            "  OMP_WAIT_POLICY / GOMP_SPINCOUNT (default here: bounded spinning, GOMP_SPINCOUNT=%s;\n"
            "  see docs/ARCHITECTURE.md, Threads).\n",
            FB_VERSION_STRING, FB_DEFAULT_SPINCOUNT);
}

/* OpenMP reads its wait policy once, when the runtime loads, before main().
 * Unbounded spinning collapses when other processes share the cores, and
 * sleeping at once makes decode (dozens of short parallel regions per token)
 * pay a wake-up per region; so unless the user chose a policy we re-run
 * ourselves with bounded spinning: GOMP_SPINCOUNT for GCC's libgomp,
 * KMP_BLOCKTIME (ms) for LLVM's libomp. `flashblock bench threads` measures
 * the three policies on idle and loaded cores. */
static void ensure_wait_policy(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("KMP_BLOCKTIME") || getenv("FLASHBLOCK_NO_REEXEC"))
        return;
    setenv("GOMP_SPINCOUNT", FB_DEFAULT_SPINCOUNT, 1);
    setenv("KMP_BLOCKTIME", "1", 1);
    setenv("FLASHBLOCK_NO_REEXEC", "1", 1);
    /* exec the real path (not /proc/self/exe) so the process keeps its name */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        execv(self, argv);
    }
    /* exec failed: carry on with the runtime's default policy. */
}

int main(int argc, char **argv) {
    ensure_wait_policy(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        char feat[512];
        printf("flashblock %s (kernels: %s; cpu features: %s)\n", FB_VERSION_STRING, fb_isa_name(fb_cpu_best_isa()),
               fb_cpu_features_str(fb_cpu_features(), feat, sizeof feat));
        return 0;
    }
    if (!strcmp(cmd, "bench")) return fb_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo")) return fb_cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return fb_cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return fb_cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect")) return fb_cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return fb_cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return fb_cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert")) return fb_cmd_convert(argc - 1, argv + 1);
    if (!strcmp(cmd, "quantize")) return fb_cmd_quantize(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return fb_cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "detokenize")) return fb_cmd_detokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenizer")) return fb_cmd_tokenizer(argc - 1, argv + 1);
    fprintf(stderr, "flashblock: unknown command '%s' (see 'flashblock --help')\n", cmd);
    return 2;
}
