/*
 * flashblock bench train: one training step (forward + backward + AdamW) on
 * random data at a given shape, default the GPT-2 124M shape (12 layers,
 * 768 wide, 12 heads, vocab 50257) at B=4, T=64. Reports the median step
 * time, tokens/s, model FLOPs utilisation (6·params·tokens per second) and
 * the activation memory, with and without --recompute.
 * For comparisons: --attention standard runs standard attention
 * (materialised T×T scores) forward and backward instead of FlashAttention;
 * --lm-head unfused runs the LM head + softmax + cross-entropy unfused (the
 * [N, V] logits materialised) instead of the fused chunked op; --baseline is
 * both. Combine with or without --recompute. The variants that ran are
 * printed (and in --json).
 */
#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/runtime.h"
#include "model/model.h"
#include "ops/ops.h"
#include "train/optimizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fb_bench_train(int argc, char **argv) {
    const char *cmd = "bench train", *preset = "gpt2", *attention = "flash", *lm_head = "fused";
    long layers = 12, dim = 768, heads = 12, vocab = 50257, B = 4, T = 64, threads = 0, reps = 5, recompute = 0, baseline = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: flashblock bench train [--preset gpt2|llama] [--layers 12] [--dim 768] [--heads 12] [--vocab 50257]\n"
                   "         [--batch 4] [--ctx 64] [--threads N] [--reps 5] [--recompute] [--json]\n"
                   "         [--attention flash|standard] [--lm-head fused|unfused] [--baseline]\n"
                   "--baseline = --attention standard (T×T scores) --lm-head unfused ([N, V] logits materialised).\n");
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--recompute")) recompute = 1;
        else if (!strcmp(a, "--baseline")) baseline = 1;
        else if (!strcmp(a, "--attention")) { if (!(attention = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--lm-head")) { if (!(lm_head = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--preset")) { if (!(preset = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--layers")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 4096, &layers)) return 2; }
        else if (!strcmp(a, "--dim")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 16, &dim)) return 2; }
        else if (!strcmp(a, "--heads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 4096, &heads)) return 2; }
        else if (!strcmp(a, "--vocab")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 24, &vocab)) return 2; }
        else if (!strcmp(a, "--batch")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 16, &B)) return 2; }
        else if (!strcmp(a, "--ctx")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &T)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--reps")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 64, &reps)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (strcmp(preset, "gpt2") && strcmp(preset, "llama")) return fb_cli_usage_error(cmd, "--preset: gpt2 or llama");
    if (strcmp(attention, "flash") && strcmp(attention, "standard")) return fb_cli_usage_error(cmd, "--attention: flash or standard");
    if (strcmp(lm_head, "fused") && strcmp(lm_head, "unfused")) return fb_cli_usage_error(cmd, "--lm-head: fused or unfused");
    if (baseline) { attention = "standard"; lm_head = "unfused"; }
    if (threads == 0) threads = sysconf(_SC_NPROCESSORS_ONLN);
    fb_set_threads((int)threads);
    if (!strcmp(attention, "standard")) {
        char v[64];
        snprintf(v, sizeof v, "standard_%s", fb_isa_name(fb_cpu_best_isa()));
        if (fb_op_force_variant(FB_OP_ATTENTION_FWD, v) != FB_OK || fb_op_force_variant(FB_OP_ATTENTION_BWD, v) != FB_OK)
            return fb_cli_error("%s", fb_last_error());
    }
    if (!strcmp(lm_head, "unfused") && fb_op_force_variant(FB_OP_CROSSENTROPY_FUSED, "unfused") != FB_OK)
        return fb_cli_error("%s", fb_last_error());
    baseline = !strcmp(attention, "standard") && !strcmp(lm_head, "unfused");
    const char *v_fwd = fb_op_selected_variant(FB_OP_ATTENTION_FWD), *v_bwd = fb_op_selected_variant(FB_OP_ATTENTION_BWD);
    const char *v_ce = fb_op_selected_variant(FB_OP_CROSSENTROPY_FUSED);
    fb_model_config mc = {0};
    mc.block = !strcmp(preset, "gpt2") ? fb_block_config_gpt2((int)dim, (int)heads)
                                       : fb_block_config_llama((int)dim, (int)heads, (int)heads, (int)((8 * dim / 3 + 63) / 64 * 64));
    mc.n_layers = (int)layers;
    mc.vocab_size = (int)vocab;
    mc.max_seq = (int)T;
    mc.tied = 1;
    fb_model *m;
    if (fb_model_init(&m, &mc) != FB_OK) return fb_cli_error("%s", fb_last_error());
    fb_model_init_random(m, 1);
    if (fb_model_alloc_training(m, (int)B, (int)T, (int)recompute) != FB_OK) return fb_cli_error("%s", fb_last_error());
    fb_adamw opt;
    fb_adamw_config ac = fb_adamw_defaults();
    if (fb_adamw_init(&opt, m, &ac) != FB_OK) return fb_cli_error("%s", fb_last_error());
    const size_t N = (size_t)(B * T);
    int32_t *ids = malloc(N * 4), *tgt = malloc(N * 4);
    for (size_t i = 0; i < N; i++) { ids[i] = (int32_t)((i * 7919) % (size_t)vocab); tgt[i] = (int32_t)((i * 104729 + 1) % (size_t)vocab); }
    double t[64];
    float loss0 = 0;   /* loss of the first step: the same for every variant of the same model */
    for (long r = -1; r < reps; r++) {   /* r = -1: warm-up */
        double t0 = fb_now_sec();
        float loss;
        fb_model_zero_grad(m);
        if (fb_model_forward_backward(m, ids, tgt, (int)B, (int)T, 1.0f, &loss) != FB_OK) return fb_cli_error("%s", fb_last_error());
        if (r < 0) loss0 = loss;
        if (fb_adamw_step_scaled(&opt, m, 1e-4f, fb_clip_coef(fb_grad_norm(m), 1.0)) != FB_OK)
            return fb_cli_error("%s", fb_last_error());
        if (r >= 0) t[r] = fb_now_sec() - t0;
    }
    const double s = fb_median(t, (int)reps), params = (double)fb_model_num_params(m);
    const double flops = 6.0 * params * (double)N;
    if (json)
        printf("{\"bench\":\"train\",\"preset\":\"%s\",\"layers\":%ld,\"dim\":%ld,\"vocab\":%ld,\"batch\":%ld,\"T\":%ld,\"threads\":%ld,"
               "\"recompute\":%ld,\"params\":%.0f,\"step_s\":%.4f,\"tokens_per_s\":%.1f,\"model_gflops\":%.2f,\"activation_bytes\":%zu,"
               "\"peak_rss\":%zu,\"baseline\":%ld,\"attention_forward\":\"%s\",\"attention_backward\":\"%s\",\"lm_head\":\"%s\",\"first_loss\":%.6f}\n",
               preset, layers, dim, vocab, B, T, threads, recompute, params, s, (double)N / s, flops / s / 1e9,
               fb_model_activation_bytes(m), fb_vm_hwm_bytes(), baseline, v_fwd, v_bwd, v_ce, (double)loss0);
    else
        printf("train step %s %ldx%ld (%.1fM params) B=%ld T=%ld threads=%ld%s: %.3f s/step, %.0f tokens/s, %.1f model GFLOP/s "
               "(6·params·tokens), activations %.1f MiB, peak RSS %.1f MiB (attention %s/%s, LM head %s; first loss %.4f)\n",
               preset, layers, dim, params / 1e6, B, T, threads, recompute ? " recompute" : "", s, (double)N / s, flops / s / 1e9,
               (double)fb_model_activation_bytes(m) / 1048576.0, (double)fb_vm_hwm_bytes() / 1048576.0, v_fwd, v_bwd, v_ce, (double)loss0);
    free(ids);
    free(tgt);
    fb_adamw_free(&opt);
    fb_model_free(m);
    return 0;
}
