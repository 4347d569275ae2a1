/*
 * flashblock bench generate: decode and prefill speed on random-weight models
 * of the TinyStories shapes (vocab 32000), fp32 and Q8_0, plus the same
 * model run by llama2.c's run.c when --llama2c-run PATH (or
 * $FLASHBLOCK_PEER_LLAMA2C) names a built run.c — both engines then run the
 * identical weights, written as a llama2.c checkpoint. Also reports the
 * memory bandwidth and how close Q8_0 decode gets to its bound (bytes of
 * weights per token / bandwidth), and --long N decodes after N cached
 * tokens, reporting peak memory against weights + KV cache.
 * --contexts C1,C2,... times decode after C cached tokens three ways (no KV
 * cache, KV cache + standard attention, the engine's FlashAttention + KV
 * cache): bench_generate_context.c.
 * For peers that read other formats (bench/peers.sh): --save-models DIR
 * writes the random models as llama2.c checkpoints DIR/<shape>.bin (for
 * `flashblock convert` to GGUF) and exits; --model PATH benchmarks one
 * model file instead of the random shapes.
 */
#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/runtime.h"
#include "infer/convert.h"
#include "infer/engine.h"
#include "infer/model_load.h"
#include "model/model.h"
#include "ops/quant_q8_0.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { const char *name; int dim, layers, heads, hidden; } shape;
static const shape SHAPES[] = {{"15M", 288, 6, 6, 768}, {"42M", 512, 8, 8, 1376}, {"110M", 768, 12, 12, 2048}};

/* Streaming read bandwidth over a buffer far larger than the caches. */
static double bandwidth_gbs(void) {
    const size_t n = (size_t)256 << 20;   /* 1 GiB of floats */
    float *a = fb_aligned_alloc(n * sizeof(float));
    if (!a) return 0;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = 1.0f;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = fb_now_sec(), sum = 0;
        /* 16 independent sums per thread (the compiler makes them two
         * vector adds): one running sum would bound the loop by the add
         * latency, not by memory, on a CPU without AVX-512 */
        #pragma omp parallel reduction(+ : sum)
        {
            float s[16] = {0};
            #pragma omp for schedule(static)
            for (size_t i = 0; i < n; i += 16)
                for (int k = 0; k < 16; k++) s[k] += a[i + k];
            for (int k = 0; k < 16; k++) sum += s[k];
        }
        double gbs = (double)n * 4 / (fb_now_sec() - t0) / 1e9;
        if (sum != (double)n) gbs = 0;
        if (gbs > best) best = gbs;
    }
    free(a);
    return best;
}

int fb_bench_generate_context_point(int argc, char **argv);
int fb_bench_generate_contexts(const long *contexts, int n_ctx, const char *shapes, const char *modes, long threads, long tokens,
                               long naive_tokens, int json);

static size_t g_engine_scratch;   /* bytes of engine scratch of the last decode_tps */

static double decode_tps(fb_model *m, int q8, int tokens, int ctx, int prefill_tokens) {
    fb_engine e;
    const int rows = prefill_tokens > 256 ? 256 : (prefill_tokens > 1 ? prefill_tokens : 1);   /* prefill chunk */
    if (fb_engine_init(&e, m, &(fb_engine_options){.n_seqs = 1, .max_T = ctx, .max_rows = rows, .q8 = q8}) != FB_OK) return -1;
    const fb_block_config *c = &m->cfg.block;
    g_engine_scratch = (size_t)rows * sizeof(float) *
                       (size_t)(5 * c->d_model + 3 * c->d_ff + m->cfg.vocab_size + c->n_heads + 2 * c->n_kv_heads * (c->d_model / c->n_heads));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(prefill_tokens > 1 ? prefill_tokens : 1));
    for (int i = 0; i < prefill_tokens; i++) ids[i] = (int32_t)((i * 7919) % m->cfg.vocab_size);
    if (prefill_tokens > 0) fb_engine_prefill(&e, 0, ids, prefill_tokens, rows);
    int seq = 0;
    int32_t tok = 1;
    fb_engine_step(&e, 1, &seq, &tok, NULL);   /* warm-up */
    double t0 = fb_now_sec();
    for (int i = 0; i < tokens; i++) {
        tok = (int32_t)((tok * 31 + 7) % m->cfg.vocab_size);
        if (fb_engine_step(&e, 1, &seq, &tok, NULL) != FB_OK) break;
    }
    double tps = tokens / (fb_now_sec() - t0);
    free(ids);
    fb_engine_free(&e);
    return tps;
}

static double prefill_tps(fb_model *m, int n) {
    fb_engine e;
    if (fb_engine_init(&e, m, &(fb_engine_options){.n_seqs = 1, .max_T = n, .max_rows = n}) != FB_OK) return -1;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((i * 7919) % m->cfg.vocab_size);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        fb_kv_reset(&e.kv, 0);
        double t0 = fb_now_sec();
        fb_engine_prefill(&e, 0, ids, n, n);
        double tps = n / (fb_now_sec() - t0);
        if (tps > best) best = tps;
    }
    free(ids);
    fb_engine_free(&e);
    return best;
}

/* run.c prints "achieved tok/s: X" on stderr. */
static double run_llama2c(const char *run, const char *model, const char *tok, int steps, int threads) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=%d '%s' '%s' -z '%s' -t 1.0 -s 42 -n %d -i 'Once' 2>&1 >/dev/null", threads, run,
             model, tok, steps);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512];
    double tps = -1;
    while (fgets(line, sizeof line, p)) {
        const char *s = strstr(line, "achieved tok/s:");
        if (s) tps = atof(s + 15);
    }
    pclose(p);
    return tps;
}

int fb_bench_generate(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--context-point")) return fb_bench_generate_context_point(argc, argv);
    const char *cmd = "bench generate", *peer = getenv("FLASHBLOCK_PEER_LLAMA2C"), *tok = NULL, *only = NULL, *modes = "naive,kv,flash";
    const char *model_path = NULL, *save_dir = NULL;
    long threads = 0, tokens = 128, prefill = 512, long_ctx = 0, naive_tokens = 2, contexts[16];
    int json = 0, n_ctx = 0, tokens_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: flashblock bench generate [--shapes 15M,42M,110M] [--threads N] [--tokens 128] [--prefill 512]\n"
                   "         [--llama2c-run PATH -z tokenizer.bin] [--long N] [--json] [--model PATH] [--save-models DIR]\n"
                   "         [--contexts 4096,32768 [--naive-tokens 2] [--modes naive,kv,flash]]   (decode after C cached tokens: no cache,\n"
                   "          KV cache + standard attention, FlashAttention + KV cache; --tokens default 16, shape 15M)\n");
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--shapes")) { if (!(only = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--model") || !strcmp(a, "-m")) { if (!(model_path = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--save-models")) { if (!(save_dir = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--llama2c-run")) { if (!(peer = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-z")) { if (!(tok = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--threads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--tokens")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &tokens)) return 2; tokens_given = 1; }
        else if (!strcmp(a, "--modes")) {
            if (!(modes = fb_arg_value(cmd, argc, argv, &i))) return 2;
            char buf[128];
            snprintf(buf, sizeof buf, "%s", modes);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (strcmp(t, "naive") && strcmp(t, "kv") && strcmp(t, "flash"))
                    return fb_cli_usage_error(cmd, "--modes: unknown mode '%s' (naive, kv, flash)", t);
        }
        else if (!strcmp(a, "--naive-tokens")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &naive_tokens)) return 2; }
        else if (!strcmp(a, "--contexts")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long_list(cmd, a, v, 1, 1 << 22, contexts, 16, &n_ctx)) return 2; }
        else if (!strcmp(a, "--prefill")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 16, &prefill)) return 2; }
        else if (!strcmp(a, "--long")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &long_ctx)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (peer && !tok) return fb_cli_usage_error(cmd, "--llama2c-run needs -z tokenizer.bin (a 32000-token llama2.c tokenizer)");
    if (threads == 0) threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (n_ctx) return fb_bench_generate_contexts(contexts, n_ctx, only ? only : "15M", modes, threads, tokens_given ? tokens : 16, naive_tokens, json);
    fb_set_threads((int)threads);
    if (save_dir) {
        for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++) {
            const shape *sh = &SHAPES[si];
            if (only && !strstr(only, sh->name)) continue;
            fb_model_config mc = {0};
            mc.block = fb_block_config_llama(sh->dim, sh->heads, sh->heads, sh->hidden);
            mc.n_layers = sh->layers;
            mc.vocab_size = 32000;
            mc.max_seq = 1024;
            mc.tied = 1;
            fb_model *m;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.bin", save_dir, sh->name);
            if (fb_model_init(&m, &mc) != FB_OK) return fb_cli_error("%s", fb_last_error());
            fb_model_init_random(m, 1);
            const fb_status st = fb_export_llama2c(path, m);
            fb_model_free(m);
            if (st != FB_OK) return fb_cli_error("%s: %s", path, fb_last_error());
            printf("%s\n", path);
        }
        return 0;
    }
    const double bw = long_ctx ? 0 : bandwidth_gbs();   /* its 1 GiB buffer would dominate the peak RSS of --long */
    if (!json) printf("memory bandwidth (streaming read, %ld threads): %.1f GB/s\n", threads, bw);
    char tmpdir[] = "/tmp/flashblock-bench-XXXXXX";
    if (peer && !mkdtemp(tmpdir)) return fb_cli_error("cannot create a temporary directory");
    const size_t n_shapes = model_path ? 1 : sizeof SHAPES / sizeof SHAPES[0];
    for (size_t si = 0; si < n_shapes; si++) {
        shape file_shape = {0};
        const shape *sh = &SHAPES[si];
        fb_model_config mc = {0};
        fb_model *m;
        if (model_path) {   /* one model file: its own shape */
            fb_tokenizer *ftok = NULL;
            fb_model_format fmt;
            int q8_source = 0;
            if (fb_model_load_any(model_path, &m, &ftok, &fmt, &q8_source) != FB_OK)
                return fb_cli_error("%s: %s", model_path, fb_last_error());
            fb_tokenizer_free(ftok);
            mc = m->cfg;
            const char *base = strrchr(model_path, '/');
            file_shape = (shape){base ? base + 1 : model_path, mc.block.d_model, mc.n_layers, mc.block.n_heads, mc.block.d_ff};
            sh = &file_shape;
            if (long_ctx && mc.max_seq < long_ctx + tokens + 2)
                return fb_cli_error("--long %ld: the model's context is %d", long_ctx, mc.max_seq);
        } else {
            if (only && !strstr(only, sh->name)) continue;
            mc.block = fb_block_config_llama(sh->dim, sh->heads, sh->heads, sh->hidden);
            mc.n_layers = sh->layers;
            mc.vocab_size = 32000;
            mc.max_seq = long_ctx ? (int)long_ctx + (int)tokens + 2 : 1024;
            mc.tied = 1;
            if (fb_model_init(&m, &mc) != FB_OK) return fb_cli_error("%s", fb_last_error());
            fb_model_init_random(m, 1);
        }
        const int ctx = mc.max_seq < 1024 || long_ctx ? mc.max_seq : 1024;
        if (long_ctx) {
            double t0 = fb_now_sec();
            double tps = decode_tps(m, 0, (int)tokens, ctx, (int)long_ctx);
            size_t hwm = fb_vm_hwm_bytes();
            const double wbytes = (double)fb_model_num_params(m) * 4, kvb = 2.0 * mc.n_layers * ctx * sh->dim * 4;
            const double sc = (double)g_engine_scratch, mib = 1048576.0;
            if (json)
                printf("{\"bench\":\"generate_long\",\"shape\":\"%s\",\"cached\":%ld,\"threads\":%ld,\"decode_tps\":%.2f,"
                       "\"peak_rss\":%zu,\"weights_bytes\":%.0f,\"kv_bytes\":%.0f,\"engine_scratch_bytes\":%.0f}\n",
                       sh->name, long_ctx, threads, tps, hwm, wbytes, kvb, sc);
            else
                printf("%s decode after %ld cached tokens, %ld threads: %.1f tokens/s; peak RSS %.1f MiB = weights %.1f + KV cache "
                       "%.1f + engine scratch (256-token prefill chunks) %.1f + %.1f other (%.1f s)\n",
                       sh->name, long_ctx, threads, tps, (double)hwm / mib, wbytes / mib, kvb / mib, sc / mib,
                       ((double)hwm - wbytes - kvb - sc) / mib, fb_now_sec() - t0);
            fb_model_free(m);
            continue;
        }
        double f32 = decode_tps(m, 0, (int)tokens, ctx, 0);
        double q8 = decode_tps(m, 1, (int)tokens, ctx, 0);
        double pf = prefill_tps(m, (int)prefill);
        /* bytes streamed per token: every matrix once (LM head included) */
        const double params = (double)fb_model_num_params(m);
        const double q8_bytes = params * 34.0 / 32.0, f32_bytes = params * 4.0;
        double peer_tps = -1;
        if (peer) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.bin", tmpdir, sh->name);
            if (fb_export_llama2c(path, m) == FB_OK) {
                peer_tps = run_llama2c(peer, path, tok, (int)tokens + 1, (int)threads);
                unlink(path);
            }
        }
        if (json)
            printf("{\"bench\":\"generate\",\"shape\":\"%s\",\"threads\":%ld,\"decode_f32_tps\":%.2f,\"decode_q8_tps\":%.2f,"
                   "\"prefill_tps\":%.2f,\"prefill_tokens\":%ld,\"llama2c_tps\":%.2f,\"bandwidth_gbs\":%.2f,"
                   "\"q8_bound_fraction\":%.3f,\"f32_bound_fraction\":%.3f}\n",
                   sh->name, threads, f32, q8, pf, prefill, peer_tps, bw, q8 * q8_bytes / 1e9 / bw, f32 * f32_bytes / 1e9 / bw);
        else {
            printf("%-5s (%.1fM params) %ld threads: decode fp32 %.1f tok/s, Q8_0 %.1f tok/s (%.0f%% of the bandwidth bound); "
                   "prefill %ld: %.1f tok/s",
                   sh->name, params / 1e6, threads, f32, q8, 100 * q8 * q8_bytes / 1e9 / bw, prefill, pf);
            if (peer_tps > 0) printf("; llama2.c run.c %.1f tok/s (ours %.2fx)", peer_tps, f32 / peer_tps);
            printf("\n");
        }
        fflush(stdout);
        fb_model_free(m);
    }
    if (peer) rmdir(tmpdir);
    return 0;
}
