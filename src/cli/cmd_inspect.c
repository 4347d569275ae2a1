/*
 * flashblock inspect -m MODEL --data FILE [--out DIR] [--json]
 * What the attention heads do and what each block's attention and MLP are
 * worth, on held-out windows of FILE tokenized with the model's tokenizer
 * (definitions in src/model/inspect.h):
 *   per layer and head: normalised attention entropy, mean attention
 *   distance, share on the first and on the previous token;
 *   loss intact, with each block's attention output removed, with each
 *   block's MLP output removed; the residual stream's norm layer by layer;
 *   attention maps of a sample window, one SVG grid per layer.
 * Windows: --windows N of --ctx T (+1) tokens, evenly spaced over the last
 * --val-fraction of the tokens (0.1: the validation split `flashblock train`
 * holds out with its default; 1: the whole file).
 * --init-seed S replaces the weights by the model's random initialisation
 * with seed S (`flashblock train` initialises with --seed, default 1337): the
 * same model before training.
 * --out DIR writes summary.json, report.md (tables + images), attn_layerL.svg,
 * ablation.svg and resid_norm.svg; --json prints the summary on stdout.
 */
#include "cli/args.h"
#include "cli/cli.h"
#include "core/runtime.h"
#include "flashblock.h"
#include "flashblock_tokenizer.h"
#include "infer/model_load.h"
#include "io/atomic_write.h"
#include "model/inspect.h"
#include "model/model.h"
#include "train/data.h"
#include "train/plot.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: flashblock inspect -m MODEL --data FILE [-z TOKENIZER] [--out DIR] [--json]\n"
            "         [--windows 16] [--ctx T (min(max_seq, 256))] [--batch 4] [--map-tokens S (min(T, 32))]\n"
            "         [--val-fraction 0.1] [--init-seed S] [--label TEXT] [--threads N]\n"
            "Attention entropy (1 = uniform), mean distance, first/previous-token share per layer and head;\n"
            "loss with each block's attention or MLP output removed; residual norm per layer; attention maps.\n"
            "Windows come from the last --val-fraction of FILE's tokens (1: all of it).\n"
            "--init-seed S: inspect the model's random initialisation with seed S instead of its weights.\n"
            "--out DIR: summary.json, report.md, attn_layerL.svg, ablation.svg, resid_norm.svg.\n");
}

/* JSON string body: escapes quotes, backslashes and control bytes. */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void json_array(FILE *f, const double *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.9g", i ? "," : "", v[i]);
    fputc(']', f);
}

static void json_matrix(FILE *f, const double *v, int L, int H) {
    fputc('[', f);
    for (int l = 0; l < L; l++) {
        if (l) fputc(',', f);
        json_array(f, v + (size_t)l * (size_t)H, H);
    }
    fputc(']', f);
}

typedef struct {
    const char *model, *data, *label, *format, *tok_spec;
    long init_seed;   /* -1: trained weights */
    size_t n_tokens, n_region, params;
    double val_fraction;
} inspect_info;

static void write_json(FILE *f, const inspect_info *in, const fb_inspect_report *r, int with_maps) {
    fprintf(f, "{\"model\":");
    json_str(f, in->model);
    fprintf(f, ",\"label\":");
    json_str(f, in->label);
    fprintf(f, ",\"format\":\"%s\",\"tokenizer\":", in->format);
    json_str(f, in->tok_spec);
    fprintf(f, ",\"data\":");
    json_str(f, in->data);
    if (in->init_seed >= 0) fprintf(f, ",\"init_seed\":%ld", in->init_seed);
    else fprintf(f, ",\"init_seed\":null");
    fprintf(f, ",\"params\":%zu,\"tokens\":%zu,\"heldout_tokens\":%zu,\"val_fraction\":%.6g,\"layers\":%d,\"heads\":%d,"
               "\"kv_heads\":%d,\"ctx\":%d,\"windows\":%d,\"queries_per_head\":%zu,\"map_tokens\":%d",
            in->params, in->n_tokens, in->n_region, in->val_fraction, r->n_layers, r->n_heads, r->n_kv_heads, r->ctx,
            r->n_windows, r->n_queries, r->map_tokens);
    fprintf(f, ",\"loss\":%.9g,\"loss_no_attn\":", r->loss);
    json_array(f, r->loss_no_attn, r->n_layers);
    fprintf(f, ",\"loss_no_mlp\":");
    json_array(f, r->loss_no_mlp, r->n_layers);
    fprintf(f, ",\"resid_norm\":");
    json_array(f, r->resid_norm, r->n_layers + 1);
    static const char *names[4] = {"entropy", "distance", "first", "prev"};
    const double *vals[4] = {r->entropy, r->distance, r->first, r->prev};
    for (int k = 0; k < 4; k++) {
        fprintf(f, ",\"%s\":", names[k]);
        json_matrix(f, vals[k], r->n_layers, r->n_heads);
    }
    if (with_maps && r->map_tokens) {
        fprintf(f, ",\"map_files\":[");
        for (int l = 0; l < r->n_layers; l++) fprintf(f, "%s\"attn_layer%d.svg\"", l ? "," : "", l);
        fputc(']', f);
    }
    fprintf(f, "}\n");
}

static double mean_heads(const double *v, int l, int H) {
    double s = 0;
    for (int h = 0; h < H; h++) s += v[(size_t)l * (size_t)H + (size_t)h];
    return s / H;
}

static void print_human(const inspect_info *in, const fb_inspect_report *r) {
    const int L = r->n_layers, H = r->n_heads;
    printf("%s (%s, %.2fM parameters%s) on %s: %d windows of %d tokens from the last %zu of %zu tokens\n", in->model, in->format,
           (double)in->params / 1e6, in->init_seed >= 0 ? ", random initialisation" : "", in->data, r->n_windows, r->ctx,
           in->n_region, in->n_tokens);
    printf("loss intact %.4f nats/token\n", r->loss);
    printf("%5s %9s %9s %9s %9s %11s %11s %11s\n", "layer", "entropy", "distance", "first", "prev", "no_attn", "no_mlp",
           "resid_norm");
    for (int l = 0; l < L; l++)
        printf("%5d %9.4f %9.2f %9.4f %9.4f %11.4f %11.4f %11.3f\n", l, mean_heads(r->entropy, l, H), mean_heads(r->distance, l, H),
               mean_heads(r->first, l, H), mean_heads(r->prev, l, H), r->loss_no_attn[l], r->loss_no_mlp[l], r->resid_norm[l]);
    printf("%5s %9s %9s %9s %9s %11s %11s %11.3f\n", "out", "", "", "", "", "", "", r->resid_norm[L]);
    printf("(entropy, distance, first, prev: means over the %d heads; per head with --json or --out)\n", H);
}

static int write_report(const char *dir, const inspect_info *in, const fb_inspect_report *r, const fb_tokenizer *tok,
                        const int32_t *window0) {
    const int L = r->n_layers, H = r->n_heads, S = r->map_tokens;
    char path[4096];
    /* attention maps: one grid per layer */
    char **labels = S ? calloc((size_t)S, sizeof(char *)) : NULL;
    for (int i = 0; labels && i < S; i++) {
        size_t len = 0;
        const char *b = fb_tokenizer_token_bytes(tok, window0[i], &len);
        labels[i] = calloc(24, 1);
        /* up to 4 characters; SentencePiece's word marker U+2581 shown as a space */
        for (size_t k = 0, chars = 0, o = 0; labels[i] && b && k < len && chars < 4 && o + 4 < 24; chars++) {
            const unsigned char c = (unsigned char)b[k];
            size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (k + n > len) n = len - k;
            if (n == 3 && !memcmp(b + k, "\xe2\x96\x81", 3)) labels[i][o++] = ' ';
            else { memcpy(labels[i] + o, b + k, n); o += n; }
            k += n;
        }
    }
    fb_heatmap *maps = S ? calloc((size_t)H, sizeof *maps) : NULL;
    char(*titles)[64] = S ? calloc((size_t)H, sizeof *titles) : NULL;
    int rc = 0;
    for (int l = 0; S && l < L && rc == 0; l++) {
        if (!maps || !titles || !labels) { rc = fb_cli_error("out of memory"); break; }
        for (int h = 0; h < H; h++) {
            snprintf(titles[h], sizeof titles[h], "head %d: entropy %.2f", h, r->entropy[(size_t)l * (size_t)H + (size_t)h]);
            maps[h] = (fb_heatmap){titles[h], r->maps + ((size_t)l * (size_t)H + (size_t)h) * (size_t)S * (size_t)S};
        }
        char title[512];
        snprintf(title, sizeof title, "%s: layer %d attention, first %d tokens of window 0 (row = query)", in->label, l, S);
        snprintf(path, sizeof path, "%s/attn_layer%d.svg", dir, l);
        if (fb_plot_heatmaps_svg(path, title, maps, H, S, H <= 4 ? H : 4, (const char *const *)labels) != FB_OK)
            rc = fb_cli_error("%s", fb_last_error());
    }
    for (int i = 0; labels && i < S; i++) free(labels[i]);
    free(labels);
    free(maps);
    free(titles);
    if (rc) return rc;
    /* ablation and residual-norm charts */
    double *xs = malloc(sizeof(double) * (size_t)(L + 1)), *full = malloc(sizeof(double) * (size_t)L);
    if (!xs || !full) { free(xs); free(full); return fb_cli_error("out of memory"); }
    for (int l = 0; l <= L; l++) xs[l] = l;
    for (int l = 0; l < L; l++) full[l] = r->loss;
    fb_plot_series abl[3] = {{"attention removed", xs, r->loss_no_attn, L}, {"MLP removed", xs, r->loss_no_mlp, L},
                             {"intact", xs, full, L}};
    snprintf(path, sizeof path, "%s/ablation.svg", dir);
    if (fb_plot_svg(path, "loss with one block's attention or MLP removed", "layer", "loss (nats/token)", abl, 3, 0, 0) != FB_OK)
        rc = fb_cli_error("%s", fb_last_error());
    fb_plot_series rn = {"mean L2 norm per token", xs, r->resid_norm, L + 1};
    snprintf(path, sizeof path, "%s/resid_norm.svg", dir);
    if (!rc && fb_plot_svg(path, "residual stream norm entering each layer (last: after the last block)", "layer", "norm", &rn, 1,
                           0, 0) != FB_OK)
        rc = fb_cli_error("%s", fb_last_error());
    free(xs);
    free(full);
    if (rc) return rc;
    /* summary.json */
    snprintf(path, sizeof path, "%s/summary.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return fb_cli_error("cannot write %s", path);
    write_json(f, in, r, 1);
    if (fclose(f) != 0) return fb_cli_error("cannot write %s", path);
    /* report.md */
    snprintf(path, sizeof path, "%s/report.md", dir);
    if (!(f = fopen(path, "w"))) return fb_cli_error("cannot write %s", path);
    fprintf(f, "# Inspection: %s\n\n", in->label);
    fprintf(f, "Model `%s` (%s, %d layers, %d heads (%d KV), %.2fM parameters)%s; data `%s`: %d windows of %d tokens evenly "
               "spaced over the last %zu of its %zu tokens (tokenizer `%s`). Produced by `flashblock inspect`.\n\n",
            in->model, in->format, L, H, r->n_kv_heads, (double)in->params / 1e6,
            in->init_seed >= 0 ? ", **weights replaced by its random initialisation**" : "", in->data, r->n_windows, r->ctx,
            in->n_region, in->n_tokens, in->tok_spec);
    fprintf(f, "Attention statistics are means over the %zu queries per head at positions 1..%d of each window: "
               "entropy is normalised by log(visible positions) (1.0 = uniform), distance is in tokens back, "
               "first/previous are the shares of attention on the window's first token and on the previous token.\n\n",
            r->n_queries, r->ctx - 1);
    fprintf(f, "## Per layer (means over heads) and ablations\n\n");
    fprintf(f, "Loss intact: **%.4f** nats/token.\n\n", r->loss);
    fprintf(f, "| layer | entropy | distance | first | previous | loss, attention removed | Δ | loss, MLP removed | Δ | residual norm in |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int l = 0; l < L; l++)
        fprintf(f, "| %d | %.3f | %.2f | %.3f | %.3f | %.4f | %+.4f | %.4f | %+.4f | %.3f |\n", l, mean_heads(r->entropy, l, H),
                mean_heads(r->distance, l, H), mean_heads(r->first, l, H), mean_heads(r->prev, l, H), r->loss_no_attn[l],
                r->loss_no_attn[l] - r->loss, r->loss_no_mlp[l], r->loss_no_mlp[l] - r->loss, r->resid_norm[l]);
    fprintf(f, "| out | | | | | | | | | %.3f |\n\n", r->resid_norm[L]);
    fprintf(f, "![ablations](ablation.svg)\n\n![residual norm](resid_norm.svg)\n\n");
    fprintf(f, "## Per head\n\n| layer | head | entropy | distance | first | previous |\n|---|---|---|---|---|---|\n");
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            const size_t k = (size_t)l * (size_t)H + (size_t)h;
            fprintf(f, "| %d | %d | %.3f | %.2f | %.3f | %.3f |\n", l, h, r->entropy[k], r->distance[k], r->first[k], r->prev[k]);
        }
    if (S) {
        fprintf(f, "\n## Attention maps\n\nWindow 0, its first %d tokens (row = query, column = key; opacity = √p).\n\n", S);
        for (int l = 0; l < L; l++) fprintf(f, "![layer %d](attn_layer%d.svg)\n\n", l, l);
    }
    if (fclose(f) != 0) return fb_cli_error("cannot write %s", path);
    return 0;
}

int fb_cmd_inspect(int argc, char **argv) {
    const char *cmd = "inspect", *model_path = NULL, *data = NULL, *tok_spec = NULL, *out_dir = NULL, *label = NULL;
    long windows = 16, ctx = 0, batch = 4, map_tokens = -1, init_seed = -1, threads = 0;
    double val_fraction = 0.1;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model_path = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-z") || !strcmp(a, "--tokenizer")) { if (!(tok_spec = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--data")) { if (!(data = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--out")) { if (!(out_dir = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--label")) { if (!(label = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--windows")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1 << 20, &windows)) return 2; }
        else if (!strcmp(a, "--ctx")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 2, 1 << 22, &ctx)) return 2; }
        else if (!strcmp(a, "--batch")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 4096, &batch)) return 2; }
        else if (!strcmp(a, "--map-tokens")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 0, 256, &map_tokens)) return 2; }
        else if (!strcmp(a, "--init-seed")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 0, 1L << 62, &init_seed)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, v, 1, 1024, &threads)) return 2; }
        else if (!strcmp(a, "--val-fraction")) { if (!(v = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_double(cmd, a, v, 1e-6, 1.0, &val_fraction)) return 2; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (!model_path || !data) return fb_cli_usage_error(cmd, "-m MODEL and --data FILE are required");
    if (threads) fb_set_threads((int)threads);
    fb_model *m = NULL;
    fb_tokenizer *tok = NULL;
    int32_t *tokens = NULL, *win = NULL;
    size_t n = 0;
    fb_model_format fmt;
    fb_inspect_report rep = {0};
    int rc = 1;
    if (fb_model_load_any(model_path, &m, &tok, &fmt, NULL) != FB_OK) return fb_cli_error("%s", fb_last_error());
    if (tok_spec) {
        fb_tokenizer_free(tok);
        tok = NULL;
        if (fb_tokenizer_load_for_model(&tok, tok_spec, m->cfg.vocab_size) != FB_OK) {
            fb_cli_error("tokenizer %s: %s", tok_spec, fb_last_error());
            goto done;
        }
    }
    if (!tok) { fb_cli_error("%s carries no tokenizer: give one with -z", model_path); goto done; }
    if (fb_tokenizer_vocab_size(tok) > m->cfg.vocab_size) {
        fb_cli_error("tokenizer has %d tokens, the model only %d", fb_tokenizer_vocab_size(tok), m->cfg.vocab_size);
        goto done;
    }
    if (ctx == 0) ctx = m->cfg.max_seq < 256 ? m->cfg.max_seq : 256;
    if (ctx > m->cfg.max_seq) { fb_cli_error("--ctx %ld exceeds the model's context of %d tokens", ctx, m->cfg.max_seq); goto done; }
    if (ctx < 2) { fb_cli_error("the model's context (%d) is too short to inspect", m->cfg.max_seq); goto done; }
    if (map_tokens < 0) map_tokens = ctx < 32 ? ctx : 32;
    if (map_tokens > ctx) { fb_cli_error("--map-tokens %ld exceeds the context of %ld tokens", map_tokens, ctx); goto done; }
    if (fb_data_load(data, tok, &tokens, &n) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    /* the held-out region: the trainer's split (last val_fraction, at least one window) */
    const size_t need = (size_t)ctx + 1;
    size_t n_region = (size_t)((double)n * val_fraction);
    if (n_region < need) n_region = need;
    if (n_region > n) n_region = n;
    if (n < need) { fb_cli_error("%s: %zu tokens, a window needs %zu (--ctx %ld)", data, n, need, ctx); goto done; }
    const int32_t *region = tokens + (n - n_region);
    if (!(win = malloc(sizeof(int32_t) * need * (size_t)windows))) { fb_cli_error("out of memory"); goto done; }
    for (long w = 0; w < windows; w++) {
        const size_t start = windows > 1 ? (size_t)((double)(n_region - need) * (double)w / (double)(windows - 1)) : 0;
        memcpy(win + (size_t)w * need, region + start, sizeof(int32_t) * need);
    }
    if (init_seed >= 0) fb_model_init_random(m, (uint64_t)init_seed);
    const fb_inspect_config ic = {.ctx = (int)ctx, .batch = (int)batch, .map_tokens = (int)map_tokens};
    if (fb_inspect_run(m, win, (int)windows, &ic, &rep) != FB_OK) { fb_cli_error("%s", fb_last_error()); goto done; }
    const inspect_info info = {.model = model_path, .data = data, .label = label ? label : model_path,
                               .format = fb_model_format_name(fmt), .tok_spec = fb_tokenizer_spec(tok), .init_seed = init_seed,
                               .n_tokens = n, .n_region = n_region, .params = fb_model_num_params(m), .val_fraction = val_fraction};
    if (out_dir) {
        if (fb_mkdir_p(out_dir) != FB_OK) { fb_cli_error("--out: %s", fb_last_error()); goto done; }
        if (write_report(out_dir, &info, &rep, tok, win) != 0) goto done;
    }
    if (json) write_json(stdout, &info, &rep, out_dir != NULL);
    else {
        print_human(&info, &rep);
        if (out_dir) printf("wrote %s/report.md, summary.json and the attention maps\n", out_dir);
    }
    rc = 0;
done:
    fb_inspect_report_free(&rep);
    free(win);
    free(tokens);
    fb_tokenizer_free(tok);
    fb_model_free(m);
    return rc;
}
