/*
 * flashblock train: text → tokens → a GPT/Llama model trained with AdamW,
 * with progress on screen, DIR/loss.csv, DIR/loss.svg and an atomic
 * checkpoint DIR/model.safetensors that --resume continues bit-for-bit.
 */
#include "cli/args.h"
#include "cli/bench_util.h"
#include "cli/cli.h"
#include "core/error.h"
#include "core/runtime.h"
#include "io/atomic_write.h"
#include "flashblock.h"
#include "flashblock_tokenizer.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/plot.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t g_interrupted = 0;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

static void usage(FILE *f) {
    fprintf(f,
            "usage: flashblock train [--data FILE] --out DIR [options]\n"
            "model:    --preset gpt2|llama (gpt2)  --layers N (4)  --dim D (256)  --heads H (4)\n"
            "          --kv-heads K (= heads)  --ff F (preset rule)  --ctx T (128)  --untied\n"
            "data:     --data FILE (default: Tiny Shakespeare from ../shared/data, else a Debian fortunes file)\n"
            "          --tokenizer SPEC (byte | gpt2:DIR | llama2c:FILE | trained vocab file; default byte)\n"
            "          --val-fraction F (0.1)\n"
            "training: --batch B (32)  --accum K (1)  --steps S (2000)  --lr LR (2e-3)  --min-lr LR (lr/10)\n"
            "          --warmup W (100)  --wd W (0.1, matrices only)  --decay-all  --clip C (1.0)  --seed S (1337)\n"
            "          --recompute (activation checkpointing)\n"
            "          --threads N  --eval-every N (100)  --eval-windows N (32)  --save-every N (500)\n"
            "          --log-every N (10)  --time-limit SECONDS  --stop-after N (steps this run)\n"
            "          --resume  --quiet\n"
            "Writes DIR/model.safetensors, DIR/loss.csv, DIR/loss.svg. Ctrl-C saves and exits.\n");
}

typedef struct {
    double *step, *train, *val;
    int n, cap;
} curve;

static void curve_add(curve *c, double step, double train, double val) {
    if (c->n == c->cap) {
        int nc = c->cap ? 2 * c->cap : 256;
        double *a = realloc(c->step, sizeof(double) * (size_t)nc), *b = a ? realloc(c->train, sizeof(double) * (size_t)nc) : NULL;
        double *v = b ? realloc(c->val, sizeof(double) * (size_t)nc) : NULL;
        if (a) c->step = a;
        if (b) c->train = b;
        if (!v) return;
        c->val = v;
        c->cap = nc;
    }
    c->step[c->n] = step; c->train[c->n] = train; c->val[c->n] = val; c->n++;
}

static void write_plot(const char *dir, const curve *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    double *vs = malloc(sizeof(double) * (size_t)(c->n + 1)), *vy = malloc(sizeof(double) * (size_t)(c->n + 1));
    int nv = 0;
    for (int i = 0; vs && vy && i < c->n; i++)
        if (isfinite(c->val[i])) { vs[nv] = c->step[i]; vy[nv] = c->val[i]; nv++; }
    fb_plot_series s[2] = {{"train loss", c->step, c->train, c->n}, {"val loss", vs, vy, nv}};
    if (fb_plot_svg(path, "training loss", "step", "loss (nats/token)", s, 2, 0, 0) != FB_OK)
        fprintf(stderr, "flashblock: warning: %s\n", fb_last_error());
    free(vs);
    free(vy);
}

/* Mean loss over up to n_windows evenly spaced windows of the split. */
static fb_status evaluate(fb_model *m, const int32_t *tok, size_t n, int B, int T, int n_windows, int32_t *ids,
                          int32_t *tgt, float *out) {
    size_t span = n - (size_t)T;
    double sum = 0;
    int done = 0;
    while (done < n_windows) {
        int b = n_windows - done < B ? n_windows - done : B;
        for (int i = 0; i < b; i++) {
            size_t start = (size_t)(((double)(done + i) / (double)n_windows) * (double)span);
            memcpy(ids + (size_t)i * T, tok + start, sizeof(int32_t) * (size_t)T);
            memcpy(tgt + (size_t)i * T, tok + start + 1, sizeof(int32_t) * (size_t)T);
        }
        float l;
        FB_TRY(fb_model_forward(m, ids, tgt, b, T, &l));
        sum += (double)l * b;
        done += b;
    }
    *out = (float)(sum / n_windows);
    return FB_OK;
}

/* The default corpus: Tiny Shakespeare beside the checkout, else fortunes. */
static const char *default_data(void) {
    static char path[4096];
    const char *root = getenv("FLASHBLOCK_DATA");
    const char *cands[] = {"../shared/data", "../../shared/data", "../../../shared/data"};
    if (root && *root) {
        snprintf(path, sizeof path, "%s/tinyshakespeare/input.txt", root);
        if (access(path, R_OK) == 0) return path;
    }
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        snprintf(path, sizeof path, "%s/tinyshakespeare/input.txt", cands[i]);
        if (access(path, R_OK) == 0) return path;
    }
    if (access("/usr/share/games/fortunes/fortunes", R_OK) == 0) return "/usr/share/games/fortunes/fortunes";
    return NULL;
}

static void fmt_time(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

#define LONG_FLAG(name, var, lo, hi) \
    else if (!strcmp(a, name)) { const char *v_ = fb_arg_value(cmd, argc, argv, &i); if (!v_ || !fb_arg_long(cmd, a, v_, lo, hi, &var)) return 2; }
#define DOUBLE_FLAG(name, var, lo, hi) \
    else if (!strcmp(a, name)) { const char *v_ = fb_arg_value(cmd, argc, argv, &i); if (!v_ || !fb_arg_double(cmd, a, v_, lo, hi, &var)) return 2; }
#define STR_FLAG(name, var) \
    else if (!strcmp(a, name)) { if (!(var = fb_arg_value(cmd, argc, argv, &i))) return 2; }

int fb_cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    const char *data = NULL, *out = NULL, *preset = "gpt2", *tok_spec = "byte";
    long layers = 4, dim = 256, heads = 4, kv_heads = 0, ff = 0, ctx = 128, batch = 32, accum = 1, steps = 2000;
    long warmup = 100, seed = 1337, threads = 0, eval_every = 100, eval_windows = 32, save_every = 500, log_every = 10;
    long stop_after = 0;
    double lr = 2e-3, min_lr = -1, wd = 0.1, clip = 1.0, val_fraction = 0.1, time_limit = 0;
    int recompute = 0, resume = 0, quiet = 0, untied = 0, decay_all = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--recompute")) recompute = 1;
        else if (!strcmp(a, "--resume")) resume = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--untied")) untied = 1;
        else if (!strcmp(a, "--decay-all")) decay_all = 1;
        STR_FLAG("--data", data) STR_FLAG("--out", out) STR_FLAG("--preset", preset) STR_FLAG("--tokenizer", tok_spec)
        LONG_FLAG("--layers", layers, 1, 4096) LONG_FLAG("--dim", dim, 1, 1 << 16) LONG_FLAG("--heads", heads, 1, 4096)
        LONG_FLAG("--kv-heads", kv_heads, 1, 4096) LONG_FLAG("--ff", ff, 1, 1 << 20) LONG_FLAG("--ctx", ctx, 1, 1 << 20)
        LONG_FLAG("--batch", batch, 1, 1 << 20) LONG_FLAG("--accum", accum, 1, 1 << 20) LONG_FLAG("--steps", steps, 1, 1L << 40)
        LONG_FLAG("--warmup", warmup, 0, 1L << 40) LONG_FLAG("--seed", seed, 0, 1L << 62) LONG_FLAG("--threads", threads, 1, 1024)
        LONG_FLAG("--eval-every", eval_every, 0, 1L << 40) LONG_FLAG("--eval-windows", eval_windows, 1, 1 << 20)
        LONG_FLAG("--save-every", save_every, 0, 1L << 40) LONG_FLAG("--log-every", log_every, 1, 1L << 40)
        DOUBLE_FLAG("--lr", lr, 0, 10) DOUBLE_FLAG("--min-lr", min_lr, 0, 10) DOUBLE_FLAG("--wd", wd, 0, 10)
        DOUBLE_FLAG("--clip", clip, 0, 1e9) DOUBLE_FLAG("--val-fraction", val_fraction, 0.0001, 0.9)
        DOUBLE_FLAG("--time-limit", time_limit, 0, 1e9) LONG_FLAG("--stop-after", stop_after, 1, 1L << 40)
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (!out) return fb_cli_usage_error(cmd, "--out DIR is required");
    if (strcmp(preset, "gpt2") && strcmp(preset, "llama")) return fb_cli_usage_error(cmd, "--preset: expected gpt2 or llama, got '%s'", preset);
    if (batch % accum) return fb_cli_usage_error(cmd, "--batch %ld must be a multiple of --accum %ld", batch, accum);
    if (!(lr > 0)) return fb_cli_usage_error(cmd, "--lr must be > 0");
    if (min_lr < 0) min_lr = lr / 10;
    if (!data && !(data = default_data()))
        return fb_cli_error("no --data given and no default corpus found (../shared/data/tinyshakespeare/input.txt or /usr/share/games/fortunes/fortunes)");
    if (threads) fb_set_threads((int)threads);
    if (fb_mkdir_p(out) != FB_OK) return fb_cli_error("--out: %s", fb_last_error());
    char ckpt[4096], csv[4096];
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", out);
    snprintf(csv, sizeof csv, "%s/loss.csv", out);

    fb_model *m = NULL;
    fb_adamw opt = {0};
    fb_train_state st = {0};
    st.best_val = NAN;
    fb_rng rng;
    int rc = 1;
    fb_tokenizer *tok = NULL;
    int32_t *tokens = NULL;
    size_t n_tokens = 0;
    if (resume) {
        if (fb_checkpoint_load(ckpt, &m, &opt, &st) != FB_OK) return fb_cli_error("--resume: %s", fb_last_error());
        tok_spec = st.tokenizer;
        rng.s = st.rng;
        ctx = m->cfg.max_seq;   /* the context the model was created with */
        opt.cfg.weight_decay = (float)wd;
        if (st.step >= steps) { fb_model_free(m); fb_adamw_free(&opt); return fb_cli_error("--resume: checkpoint is at step %ld, nothing left to do for --steps %ld", st.step, steps); }
    }
    if (fb_tokenizer_load(&tok, tok_spec) != FB_OK) { fb_cli_error("tokenizer %s: %s", tok_spec, fb_last_error()); goto done; }
    if (fb_data_load(data, tok, &tokens, &n_tokens) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    fb_data_split split;
    if (fb_data_split_make(tokens, n_tokens, val_fraction, (int)ctx, &split) != FB_OK) { fb_cli_error("%s: %s", data, fb_last_error()); goto done; }
    if (!resume) {
        fb_model_config mc = {0};
        if (!strcmp(preset, "gpt2")) {
            mc.block = fb_block_config_gpt2((int)dim, (int)heads);
            if (ff) mc.block.d_ff = (int)ff;
            if (kv_heads) mc.block.n_kv_heads = (int)kv_heads;
        } else {
            mc.block = fb_block_config_llama((int)dim, (int)heads, (int)(kv_heads ? kv_heads : heads),
                                             (int)(ff ? ff : ((8 * dim / 3 + 31) / 32) * 32));
        }
        mc.n_layers = (int)layers;
        mc.vocab_size = fb_tokenizer_vocab_size(tok);
        mc.max_seq = (int)ctx;
        mc.tied = !untied;
        if (fb_model_init(&m, &mc) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
        fb_model_init_random(m, (uint64_t)seed);
        fb_adamw_config ac = fb_adamw_defaults();
        ac.lr = (float)lr;
        ac.weight_decay = (float)wd;
        ac.decay_all = decay_all;
        if (fb_adamw_init(&opt, m, &ac) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
        fb_rng_seed(&rng, (uint64_t)seed);
        snprintf(st.tokenizer, sizeof st.tokenizer, "%s", fb_tokenizer_spec(tok));
    }
    const int micro = (int)(batch / accum), T = (int)ctx;
    if (fb_model_alloc_training(m, micro, T, recompute) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)micro * (size_t)T), *tgt = malloc(sizeof(int32_t) * (size_t)micro * (size_t)T);
    if (!ids || !tgt) { free(ids); free(tgt); fb_cli_error("out of memory"); goto done; }

    /* loss.csv: keep the rows up to the resumed step, append from there. */
    curve cv = {0};
    {
        FILE *old = resume ? fopen(csv, "r") : NULL;
        char line[512];
        char *kept = NULL;
        size_t klen = 0;
        if (old) {
            while (fgets(line, sizeof line, old)) {
                double s, tr, va;
                if (sscanf(line, "%lf,%lf,%lf", &s, &tr, &va) >= 2 && s <= (double)st.step) {
                    char *nk = realloc(kept, klen + strlen(line) + 1);
                    if (!nk) break;
                    kept = nk;
                    memcpy(kept + klen, line, strlen(line) + 1);
                    klen += strlen(line);
                    if (sscanf(line, "%lf,%lf,%lf", &s, &tr, &va) < 3) va = NAN;
                    curve_add(&cv, s, tr, va);
                }
            }
            fclose(old);
        }
        /* replaced atomically: a crash here keeps the old curve */
        fb_atomic_file af;
        fb_status ws = fb_atomic_open(&af, csv);
        if (ws == FB_OK) {
            static const char header[] = "step,train_loss,val_loss,lr,tokens_per_s,elapsed_s\n";
            ws = fb_atomic_write(&af, header, sizeof header - 1);
            if (ws == FB_OK && kept) ws = fb_atomic_write(&af, kept, klen);
            ws = ws == FB_OK ? fb_atomic_commit(&af) : ws;
        }
        free(kept);
        if (ws != FB_OK) { fb_cli_error("%s", fb_last_error()); free(ids); free(tgt); goto done; }
    }
    FILE *csvf = fopen(csv, "a");
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (!quiet)
        printf("model: %s preset, %d layers, d_model %d, %d heads (%d kv), d_ff %d, ctx %d, vocab %d: %.2fM parameters\n"
               "data:  %s: %zu tokens (%zu train, %zu val), tokenizer %s; batch %ld (%d x %ld accum), %d threads%s\n",
               m->cfg.block.mlp == FB_MLP_SWIGLU ? "llama" : "gpt2", m->cfg.n_layers, m->cfg.block.d_model,
               m->cfg.block.n_heads, m->cfg.block.n_kv_heads, m->cfg.block.d_ff, T, m->cfg.vocab_size,
               (double)fb_model_num_params(m) / 1e6, data, n_tokens, split.n_train, split.n_val, st.tokenizer, batch,
               micro, accum, fb_get_threads(), recompute ? ", activation recompute" : "");
    const double t0 = fb_now_sec();
    const long start_step = st.step;
    /* FLASHBLOCK_FAULT_NAN_STEP=k poisons a gradient at step k (tests the NaN stop). */
    const long fault_step = getenv("FLASHBLOCK_FAULT_NAN_STEP") ? atol(getenv("FLASHBLOCK_FAULT_NAN_STEP")) : 0;
    double tok_rate = 0;
    rc = 0;
    for (long step = st.step; step < steps; step++) {
        const double ts = fb_now_sec();
        fb_model_zero_grad(m);
        double loss_sum = 0;
        for (long k = 0; k < accum; k++) {
            fb_data_random_batch(split.train, split.n_train, micro, T, &rng, ids, tgt);
            float l;
            if (fb_model_forward_backward(m, ids, tgt, micro, T, 1.0f / (float)accum, &l) != FB_OK) {
                fb_cli_error("step %ld: %s; stopping, the last checkpoint %s is intact", step + 1, fb_last_error(), ckpt);
                rc = 1;
                break;
            }
            loss_sum += l;
        }
        if (rc) break;
        if (fault_step && st.step + 1 == fault_step) fb_model_grads(m)[0] = NAN;   /* test hook */
        const double norm = fb_grad_norm(m);
        if (!isfinite(norm)) {
            fb_cli_error("step %ld: gradient norm is not finite; stopping, the last checkpoint %s is intact", step + 1, ckpt);
            rc = 1;
            break;
        }
        const float cur_lr = fb_lr_schedule(step, warmup, steps, (float)lr, (float)min_lr);
        fb_adamw_step_scaled(&opt, m, cur_lr, fb_clip_coef(norm, clip));   /* clipping fused into the update */
        st.step = step + 1;
        const double train_loss = loss_sum / (double)accum;
        const double dt = fb_now_sec() - ts, elapsed = fb_now_sec() - t0;
        tok_rate = (double)batch * T / dt;
        double val = NAN;
        const int last = st.step == steps;
        if ((eval_every && st.step % eval_every == 0) || last) {
            float v;
            if (evaluate(m, split.val, split.n_val, micro, T, (int)eval_windows, ids, tgt, &v) == FB_OK) {
                val = v;
                if (!(st.best_val <= v)) st.best_val = v;
            }
        }
        if (csvf) {
            fprintf(csvf, "%ld,%.6f,%.6f,%.6g,%.1f,%.2f\n", st.step, train_loss, val, (double)cur_lr, tok_rate, elapsed);
            fflush(csvf);
        }
        curve_add(&cv, (double)st.step, train_loss, val);
        if (!quiet && (st.step % log_every == 0 || isfinite(val) || st.step == start_step + 1)) {
            char el[32], eta[32], vbuf[32] = "";
            fmt_time(elapsed, el, sizeof el);
            fmt_time(elapsed / (double)(st.step - start_step) * (double)(steps - st.step), eta, sizeof eta);
            if (isfinite(val)) snprintf(vbuf, sizeof vbuf, " | val %.4f", val);
            printf("step %6ld/%ld | loss %.4f%s | lr %.2e | norm %.2f | %.0f tok/s | %s elapsed | ETA %s\n", st.step, steps,
                   train_loss, vbuf, (double)cur_lr, norm, tok_rate, el, eta);
            fflush(stdout);
        }
        if (isfinite(val)) write_plot(out, &cv);
        const int time_up = (time_limit > 0 && elapsed >= time_limit) || (stop_after && st.step - start_step >= stop_after);
        if ((save_every && st.step % save_every == 0) || last || g_interrupted || time_up) {
            st.rng = rng.s;
            if (fb_checkpoint_save(ckpt, m, &opt, &st) != FB_OK) { fb_cli_error("saving %s: %s", ckpt, fb_last_error()); rc = 1; break; }
        }
        if (g_interrupted) { fprintf(stderr, "interrupted: checkpoint saved at step %ld in %s (continue with --resume)\n", st.step, ckpt); break; }
        if (time_up) { fprintf(stderr, "stopping early: checkpoint saved at step %ld in %s (continue with --resume)\n", st.step, ckpt); write_plot(out, &cv); break; }
    }
    if (csvf) fclose(csvf);
    if (rc == 0) {
        write_plot(out, &cv);
        if (!quiet) printf("saved %s (step %ld, best val loss %.4f); loss curve %s/loss.svg\n", ckpt, st.step, (double)st.best_val, out);
    }
    free(cv.step); free(cv.train); free(cv.val);
    free(ids);
    free(tgt);
done:
    free(tokens);
    fb_tokenizer_free(tok);
    fb_adamw_free(&opt);
    fb_model_free(m);
    return rc;
}
