/*
 * flashblock train: text → tokens → a GPT/Llama model trained with AdamW,
 * with progress on screen, DIR/loss.csv, DIR/loss.svg and an atomic
 * checkpoint DIR/model.safetensors that --resume continues bit-for-bit.
 * The loop itself is the library's trainer (train/trainer.h); this file
 * parses flags, loads data, and reports.
 */
#include "cli/args.h"
#include "cli/cli.h"
#include "core/error.h"
#include "core/runtime.h"
#include "io/atomic_write.h"
#include "flashblock.h"
#include "flashblock_tokenizer.h"
#include "model/model.h"
#include "ops/ops.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/plot.h"
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef FB_HAVE_MPI
#include "dist/dp.h"
#endif

static volatile sig_atomic_t g_interrupted = 0;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

/* Test hook (FLASHBLOCK_FAULT_NAN_STEP=k): a NaN in the gradients of step k,
 * after backward, where a real fault would show up. */
static fb_status poison_gradient(void *user, fb_model *m, long step) {
    if (step + 1 == *(const long *)user) fb_model_grads(m)[0] = NAN;
    return FB_OK;
}

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
            "parallel: mpirun -np N flashblock train ... [--dp N] [--zero 1]: data parallel over N ranks\n"
            "          (--dp defaults to all ranks; --zero 1 shards the AdamW state; --tp/--pp: not yet)\n"
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

static int train(int argc, char **argv, int rank, int world) {
    const char *cmd = "train";
    const char *data = NULL, *out = NULL, *preset = "gpt2", *tok_spec = "byte";
    long layers = 4, dim = 256, heads = 4, kv_heads = 0, ff = 0, ctx = 128, batch = 32, accum = 1, steps = 2000;
    long warmup = 100, seed = 1337, threads = 0, eval_every = 100, eval_windows = 32, save_every = 500, log_every = 10;
    long stop_after = 0;
    double lr = 2e-3, min_lr = -1, wd = 0.1, clip = 1.0, val_fraction = 0.1, time_limit = 0;
    int recompute = 0, resume = 0, quiet = 0, untied = 0, decay_all = 0;
    long dp_ranks = 0, zero = 0, tp = 1, pp = 1;
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
        LONG_FLAG("--dp", dp_ranks, 1, 1 << 20) LONG_FLAG("--zero", zero, 0, 1) LONG_FLAG("--tp", tp, 1, 1 << 20)
        LONG_FLAG("--pp", pp, 1, 1 << 20)
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (!out) return fb_cli_usage_error(cmd, "--out DIR is required");
    if (tp > 1 || pp > 1)
        return fb_cli_usage_error(cmd, "--tp/--pp: tensor and pipeline parallelism are not implemented yet (data parallel: --dp)");
#ifdef FB_HAVE_MPI
    fb_dp *dp = NULL;
    if (dp_ranks && dp_ranks != world) {
        if (rank == 0) fb_cli_usage_error(cmd, "--dp %ld but the job has %d ranks (mpirun -np %ld)", dp_ranks, world, dp_ranks);
        return 2;
    }
    if (rank != 0) quiet = 1;   /* every rank but 0 reports errors only */
    if (world > 1 && !threads) {   /* one share of the cores per rank on this host */
        const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        const long per = sysconf(_SC_NPROCESSORS_ONLN) / (local ? atol(local) : world);
        threads = per > 0 ? per : 1;
    }
#else
    if (dp_ranks > 1 || zero)
        return fb_cli_usage_error(cmd, "--dp/--zero: this build has no MPI (install libopenmpi-dev and rebuild)");
#endif
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

    int rc = 1;
    fb_tokenizer *tok = NULL;
    fb_trainer *tr = NULL;
    int32_t *tokens = NULL;
    size_t n_tokens = 0;
    fb_trainer_config tc = {.batch = (int)batch, .accum = (int)accum, .T = (int)ctx, .recompute = recompute,
                            .steps = steps, .warmup = warmup, .lr = (float)lr, .min_lr = (float)min_lr,
                            .clip = (float)clip, .eval_windows = (int)eval_windows, .rank = rank, .world = world};
    if (batch % ((long)world * accum))
        return fb_cli_usage_error(cmd, "--batch %ld must be a multiple of ranks x --accum = %d x %ld", batch, world, accum);
    if (resume) {
        fb_model_config saved;
        if (fb_checkpoint_peek(ckpt, &saved, NULL) != FB_OK) return fb_cli_error("--resume: %s", fb_last_error());
        tc.T = saved.max_seq;   /* the context the model was created with */
        if (fb_trainer_load(&tr, &tc, ckpt, (float)wd) != FB_OK) return fb_cli_error("--resume: %s", fb_last_error());
        tok_spec = fb_trainer_state(tr)->tokenizer;
        if (fb_trainer_state(tr)->step >= steps) {
            fb_cli_error("--resume: checkpoint is at step %ld, nothing left to do for --steps %ld", fb_trainer_state(tr)->step, steps);
            fb_trainer_free(tr);
            return 1;
        }
    }
    const int T = tc.T;
    if (fb_tokenizer_load(&tok, tok_spec) != FB_OK) { fb_cli_error("tokenizer %s: %s", tok_spec, fb_last_error()); goto done; }
    if (fb_data_load(data, tok, &tokens, &n_tokens) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    fb_data_split split;
    if (fb_data_split_make(tokens, n_tokens, val_fraction, T, &split) != FB_OK) { fb_cli_error("%s: %s", data, fb_last_error()); goto done; }
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
        mc.max_seq = T;
        mc.tied = !untied;
        fb_model *m = NULL;
        if (fb_model_init(&m, &mc) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
        fb_model_init_random(m, (uint64_t)seed);
        fb_adamw_config ac = fb_adamw_defaults();
        ac.lr = (float)lr;
        ac.weight_decay = (float)wd;
        ac.decay_all = decay_all;
        if (fb_trainer_create(&tr, &tc, m, &ac, (uint64_t)seed, fb_tokenizer_spec(tok)) != FB_OK) {
            fb_cli_error("%s", fb_last_error());
            if (!tr) fb_model_free(m);
            goto done;
        }
    }
    if (fb_trainer_set_data(tr, &split) != FB_OK) { fb_cli_error("%s: %s", data, fb_last_error()); goto done; }
#ifdef FB_HAVE_MPI
    if (world > 1 && fb_dp_create(&dp, MPI_COMM_WORLD, tr, (int)zero) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
#endif
    /* FLASHBLOCK_FAULT_NAN_STEP=k poisons a gradient at step k (tests the NaN stop). */
    long fault_step = getenv("FLASHBLOCK_FAULT_NAN_STEP") ? atol(getenv("FLASHBLOCK_FAULT_NAN_STEP")) : 0;
    /* FLASHBLOCK_FAULT_KILL=rank:step kills that rank after that step (tests that the job stops, no hang). */
    long kill_rank = -1, kill_step = 0;
    if (getenv("FLASHBLOCK_FAULT_KILL") && sscanf(getenv("FLASHBLOCK_FAULT_KILL"), "%ld:%ld", &kill_rank, &kill_step) != 2) kill_step = 0;
    if (fault_step) {
        fb_trainer_hooks hk = {.after_backward = poison_gradient, .user = &fault_step};
        fb_trainer_set_hooks(tr, &hk);
    }
    fb_model *m = fb_trainer_model(tr);
    const fb_train_state *stp = fb_trainer_state(tr);

    /* loss.csv: keep the rows up to the resumed step, append from there. */
    curve cv = {0};
    {
        FILE *old = resume && rank == 0 ? fopen(csv, "r") : NULL;
        char line[512];
        char *kept = NULL;
        size_t klen = 0;
        if (old) {
            while (fgets(line, sizeof line, old)) {
                double s, tr, va;
                if (sscanf(line, "%lf,%lf,%lf", &s, &tr, &va) >= 2 && s <= (double)stp->step) {
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
        fb_status ws = rank == 0 ? fb_atomic_open(&af, csv) : FB_ERR_IO;
        if (rank != 0) ws = FB_OK;
        else if (ws == FB_OK) {
            static const char header[] = "step,train_loss,val_loss,lr,tokens_per_s,elapsed_s\n";
            ws = fb_atomic_write(&af, header, sizeof header - 1);
            if (ws == FB_OK && kept) ws = fb_atomic_write(&af, kept, klen);
            ws = ws == FB_OK ? fb_atomic_commit(&af) : ws;
        }
        free(kept);
        if (ws != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    }
    FILE *csvf = rank == 0 ? fopen(csv, "a") : NULL;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (!quiet)
        printf("model: %s preset, %d layers, d_model %d, %d heads (%d kv), d_ff %d, ctx %d, vocab %d: %.2fM parameters\n"
               "data:  %s: %zu tokens (%zu train, %zu val), tokenizer %s; batch %ld (%ld x %ld accum), %d threads%s\n"
               "kernels: attention forward %s, backward %s\n",
               m->cfg.block.mlp == FB_MLP_SWIGLU ? "llama" : "gpt2", m->cfg.n_layers, m->cfg.block.d_model,
               m->cfg.block.n_heads, m->cfg.block.n_kv_heads, m->cfg.block.d_ff, T, m->cfg.vocab_size,
               (double)fb_model_num_params(m) / 1e6, data, n_tokens, split.n_train, split.n_val, stp->tokenizer, batch,
               batch / accum, accum, fb_get_threads(), recompute ? ", activation recompute" : "",
               fb_op_selected_variant(FB_OP_ATTENTION_FWD), fb_op_selected_variant(FB_OP_ATTENTION_BWD));
#ifdef FB_HAVE_MPI
    if (!quiet && dp)
        printf("parallel: %d data-parallel ranks x %d threads%s; AdamW state %zu bytes (%.1f MiB) per rank\n", world,
               fb_get_threads(), zero ? ", ZeRO-1 (moments sharded)" : "", fb_dp_optimizer_bytes(dp),
               (double)fb_dp_optimizer_bytes(dp) / 1048576.0);
#endif
    const double t0 = fb_now_sec();
    const long start_step = stp->step;
    rc = 0;
    while (stp->step < steps) {
        fb_step_info si;
        fb_status ss = fb_trainer_step(tr, &si);
        if (kill_step && stp->step == kill_step && rank == kill_rank) raise(SIGKILL);   /* test: a rank dies */
        if (ss != FB_OK) {
            fb_cli_error("step %ld: %s; stopping, the last checkpoint %s is intact", stp->step + 1, fb_last_error(), ckpt);
            rc = 1;
#ifdef FB_HAVE_MPI
            if (dp && ss != FB_ERR_NUMERIC) MPI_Abort(MPI_COMM_WORLD, 1);   /* a failure on one rank stops all (no hang) */
#endif
            break;
        }
#ifdef FB_HAVE_MPI
        if (dp) {   /* report the global batch: mean loss, tokens of every rank */
            si.loss = fb_dp_mean(dp, si.loss);
            si.tokens *= world;
        }
#endif
        const double elapsed = fb_now_sec() - t0, tok_rate = (double)si.tokens / si.seconds;
        double val = NAN;
        const int last = stp->step == steps;
        if (rank == 0 && ((eval_every && stp->step % eval_every == 0) || last)) {
            float v;
            if (fb_trainer_evaluate(tr, &v) == FB_OK) val = v;
        }
        if (csvf) {
            fprintf(csvf, "%ld,%.6f,%.6f,%.6g,%.1f,%.2f\n", stp->step, si.loss, val, (double)si.lr, tok_rate, elapsed);
            fflush(csvf);
        }
        curve_add(&cv, (double)stp->step, si.loss, val);
        if (!quiet && (stp->step % log_every == 0 || isfinite(val) || stp->step == start_step + 1)) {
            char el[32], eta[32], vbuf[32] = "";
            fmt_time(elapsed, el, sizeof el);
            fmt_time(elapsed / (double)(stp->step - start_step) * (double)(steps - stp->step), eta, sizeof eta);
            if (isfinite(val)) snprintf(vbuf, sizeof vbuf, " | val %.4f", val);
            printf("step %6ld/%ld | loss %.4f%s | lr %.2e | norm %.2f | %.0f tok/s | %s elapsed | ETA %s\n", stp->step, steps,
                   si.loss, vbuf, (double)si.lr, si.grad_norm, tok_rate, el, eta);
            fflush(stdout);
        }
        if (isfinite(val)) write_plot(out, &cv);
        int time_up = (time_limit > 0 && elapsed >= time_limit) || (stop_after && stp->step - start_step >= stop_after);
        int interrupted = g_interrupted;
#ifdef FB_HAVE_MPI
        if (dp) {   /* every rank saves and stops at the same step */
            const int flags = fb_dp_any(dp, (time_up ? 1 : 0) | (interrupted ? 2 : 0));
            time_up = flags & 1;
            interrupted = (flags & 2) != 0;
        }
#endif
        if ((save_every && stp->step % save_every == 0) || last || interrupted || time_up) {
            fb_status sv;
#ifdef FB_HAVE_MPI
            if (dp) sv = fb_dp_save(dp, ckpt);
            else
#endif
                sv = fb_trainer_save(tr, ckpt);
            if (sv != FB_OK) { fb_cli_error("saving %s: %s", ckpt, fb_last_error()); rc = 1; break; }
        }
        if (interrupted) { if (rank == 0) fprintf(stderr, "interrupted: checkpoint saved at step %ld in %s (continue with --resume)\n", stp->step, ckpt); break; }
        if (time_up) { if (rank == 0) fprintf(stderr, "stopping early: checkpoint saved at step %ld in %s (continue with --resume)\n", stp->step, ckpt); write_plot(out, &cv); break; }
    }
    if (csvf) fclose(csvf);
#ifdef FB_HAVE_MPI
    if (dp && !quiet) {
        const fb_dp_stats ds = fb_dp_get_stats(dp);
        if (ds.steps)
            printf("communication: %.1f MB sent per step per rank; %.0f%% of it hidden behind backward (waited %.3f s of %.3f s in flight per step)\n",
                   ds.bytes_sent / ds.steps / 1e6, ds.comm_seconds > 0 ? 100.0 * (1.0 - ds.wait_seconds / ds.comm_seconds) : 100.0,
                   ds.wait_seconds / ds.steps, ds.comm_seconds / ds.steps);
    }
#endif
    if (rc == 0 && rank == 0) {
        write_plot(out, &cv);
        if (!quiet) printf("saved %s (step %ld, best val loss %.4f); loss curve %s/loss.svg\n", ckpt, stp->step, (double)stp->best_val, out);
    }
    free(cv.step); free(cv.train); free(cv.val);
done:
#ifdef FB_HAVE_MPI
    fb_dp_free(dp);
#endif
    free(tokens);
    fb_tokenizer_free(tok);
    fb_trainer_free(tr);
    return rc;
}

/* Under mpirun (or with --dp/--zero) MPI brackets the whole run; a rank that
 * fails aborts the job, since the others may be waiting in a collective. */
int fb_cmd_train(int argc, char **argv) {
    int rank = 0, world = 1;
#ifdef FB_HAVE_MPI
    int use_mpi = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE");
    for (int i = 1; i < argc; i++) use_mpi |= !strcmp(argv[i], "--dp") || !strcmp(argv[i], "--zero");
    if (use_mpi) {
        int provided;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world);
    }
    const int rc = train(argc, argv, rank, world);
    if (use_mpi) {
        if (rc != 0 && world > 1) MPI_Abort(MPI_COMM_WORLD, rc);
        MPI_Finalize();
    }
    return rc;
#else
    return train(argc, argv, rank, world);
#endif
}
