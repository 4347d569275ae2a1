/* Typed allocation, filling and guarded running of op arguments (see op_harness.h). */
#include "op_harness.h"
#include "core/half.h"
#include "core/q8_0.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_BYTES 64
static const uint8_t GUARD = 0xA7;

static void *alloc_guarded(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes + GUARD_BYTES) != 0) return NULL;
    memset((uint8_t *)p + bytes, GUARD, GUARD_BYTES);
    return p;
}
static int guard_ok(const void *p, size_t bytes) {
    if (!p) return 1;   /* an absent optional slot */
    const uint8_t *g = (const uint8_t *)p + bytes;
    for (int i = 0; i < GUARD_BYTES; i++)
        if (g[i] != GUARD) return 0;
    return 1;
}

/* Bytes of a [rows, cols] slot whose rows are stride elements apart. */
static size_t slot_bytes(fb_dtype type, const fb_shape *s) {
    return s->rows > 0 ? (size_t)s->rows * fb_dtype_bytes(type, s->stride) : 0;
}

static void fill(void *p, fb_dtype type, const fb_shape *s, fb_test_rng *rng) {
    const int64_t n = s->rows * s->stride;
    switch (type) {
    case FB_DT_F32: fb_test_fill_normal(rng, p, (size_t)n, 1.0f); break;
    case FB_DT_I32:
        for (int64_t i = 0; i < n; i++) ((int32_t *)p)[i] = (int32_t)(fb_test_rng_u64(rng) % (uint64_t)s->bound);
        break;
    case FB_DT_F16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)p)[i] = fb_f32_to_f16(fb_test_rng_normal(rng));
        break;
    case FB_DT_BF16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)p)[i] = fb_f32_to_bf16(fb_test_rng_normal(rng));
        break;
    case FB_DT_Q8_0: {   /* every row (gaps included) valid blocks */
        float *row = malloc(sizeof(float) * (size_t)(s->stride > 0 ? s->stride : 1));
        if (!row) break;
        for (int64_t r = 0; r < s->rows; r++) {
            fb_test_fill_normal(rng, row, (size_t)s->stride, 0.5f);
            fb_q8_0_quantize_row((uint8_t *)p + (size_t)r * fb_dtype_bytes(type, s->stride), row, s->stride);
        }
        free(row);
        break;
    }
    default: break;
    }
}

/* Outputs the op only writes start as garbage: NaN floats, 0xFF bytes. */
static void fill_garbage(void *p, fb_dtype type, size_t bytes) {
    if (type == FB_DT_F32)
        for (size_t i = 0; i < bytes / 4; i++) ((float *)p)[i] = NAN;
    else memset(p, 0xFF, bytes);
}

int fb_test_op_init(fb_test_op *t, fb_op_id op, const int64_t *d, const float *f, unsigned null_in,
                    fb_test_rng *rng) {
    memset(t, 0, sizeof *t);
    t->op = op;
    t->def = fb_op_get(op);
    if (!t->def) return -1;
    t->n_in = fb_op_n_in(t->def);
    t->n_out = fb_op_n_out(t->def);
    memcpy(t->args.d, d, sizeof t->args.d);
    if (f) memcpy(t->args.f, f, sizeof t->args.f);
    t->def->shapes(d, t->in_shape, t->out_shape);
    for (int i = 0; i < t->n_in; i++) {
        const fb_dtype type = t->def->in[i].type;
        const fb_shape *s = &t->in_shape[i];
        if ((t->def->in[i].flags & FB_SLOT_OPTIONAL) && s->rows * s->cols == 0) continue;   /* absent for these dims */
        if (type == FB_DT_I32 && s->bound <= 0) {
            fprintf(stderr, "%s: i32 input %d declares no bound for its values\n", t->def->name, i);
            return -1;
        }
        t->in_bytes[i] = slot_bytes(type, s);
        if (!(t->in[i] = alloc_guarded(t->in_bytes[i]))) return -1;
        fill(t->in[i], type, s, rng);
    }
    for (int o = 0; o < t->n_out; o++) {
        const fb_dtype type = t->def->out[o].type;
        t->out_bytes[o] = slot_bytes(type, &t->out_shape[o]);
        if (!(t->out[o] = alloc_guarded(t->out_bytes[o])) || !(t->ref[o] = alloc_guarded(t->out_bytes[o])) ||
            !(t->init[o] = alloc_guarded(t->out_bytes[o])))
            return -1;
        if (t->def->out[o].flags & FB_SLOT_ACC) fill(t->init[o], type, &t->out_shape[o], rng);
        else fill_garbage(t->init[o], type, t->out_bytes[o]);
    }
    if (t->def->prepare) t->def->prepare(d, t->in, t->init, fb_test_rng_u64(rng));
    for (int i = 0; i < t->n_in; i++) {
        const fb_shape *s = &t->in_shape[i];
        t->args.in[i] = (fb_src){(null_in >> i) & 1 || !t->in[i] ? NULL : t->in[i], t->def->in[i].type, s->rows, s->cols,
                                 s->stride};
    }
    fb_test_op_reset(t, 0);
    return 0;
}

void fb_test_op_reset(fb_test_op *t, unsigned null_out) {
    for (int o = 0; o < t->n_out; o++) {
        const fb_shape *s = &t->out_shape[o];
        memcpy(t->out[o], t->init[o], t->out_bytes[o]);
        t->args.out[o] = (fb_dst){(null_out >> o) & 1 ? NULL : t->out[o], t->def->out[o].type, s->rows, s->cols, s->stride};
    }
}

fb_status fb_test_op_run(fb_test_op *t, const fb_kernel *k, int n_threads, size_t short_by, int *ws_ok) {
    for (int o = 0; o < t->n_out; o++) memcpy(t->out[o], t->init[o], t->out_bytes[o]);
    const size_t need = fb_kernel_workspace(k, &t->args, n_threads);
    const size_t bytes = need > short_by ? need - short_by : 0;
    void *ws = bytes ? alloc_guarded(bytes) : NULL;
    if (bytes && !ws) return FB_ERR_OOM;
    if (ws) memset(ws, 0xFF, bytes);   /* garbage: kernels must not expect zeroed scratch */
    t->args.ws = (fb_workspace){ws, bytes};
    const int saved = omp_get_max_threads();
    omp_set_num_threads(n_threads);
    const fb_status st = k->fn(&t->args);
    omp_set_num_threads(saved);
    if (ws_ok) *ws_ok = !ws || guard_ok(ws, bytes);
    free(ws);
    t->args.ws = (fb_workspace){NULL, 0};
    return st;
}

void fb_test_op_keep_ref(fb_test_op *t) {
    for (int o = 0; o < t->n_out; o++) memcpy(t->ref[o], t->out[o], t->out_bytes[o]);
}

int fb_test_op_guards_ok(const fb_test_op *t) {
    for (int i = 0; i < t->n_in; i++)
        if (!guard_ok(t->in[i], t->in_bytes[i])) return 0;
    for (int o = 0; o < t->n_out; o++)
        if (!guard_ok(t->out[o], t->out_bytes[o])) return 0;
    return 1;
}

double fb_test_op_err(const fb_test_op *t, int o) {
    if (t->def->out[o].type != FB_DT_F32) return memcmp(t->out[o], t->ref[o], t->out_bytes[o]) ? INFINITY : 0.0;
    const float *got = t->out[o], *ref = t->ref[o];
    const size_t n = t->out_bytes[o] / 4;
    double maxref = 1e-6, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(ref[i])) { if (!isnan(got[i])) return INFINITY; continue; }
        if (fabs((double)ref[i]) > maxref) maxref = fabs((double)ref[i]);
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= maxdiff)) maxdiff = d;
    }
    return isfinite(maxdiff) ? maxdiff / maxref : INFINITY;
}

void fb_test_op_free(fb_test_op *t) {
    for (int i = 0; i < FB_OP_MAX_IN; i++) free(t->in[i]);
    for (int o = 0; o < FB_OP_MAX_OUT; o++) { free(t->out[o]); free(t->ref[o]); free(t->init[o]); }
    memset(t, 0, sizeof *t);
}

void fb_test_args_complete(fb_op_id op, fb_op_args *a) {
    const fb_op_def *def = fb_op_get(op);
    if (!def) return;
    fb_shape in[FB_OP_MAX_IN], out[FB_OP_MAX_OUT];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    def->shapes(a->d, in, out);
    for (int i = 0; i < fb_op_n_in(def); i++)
        a->in[i] = (fb_src){a->in[i].data, def->in[i].type, in[i].rows, in[i].cols, in[i].stride};
    for (int o = 0; o < fb_op_n_out(def); o++)
        a->out[o] = (fb_dst){a->out[o].data, def->out[o].type, out[o].rows, out[o].cols, out[o].stride};
}

fb_status fb_test_run_kernel(const fb_kernel *k, fb_op_args *a, int n_threads) {
    fb_workspace ws = {NULL, 0};
    fb_status st = fb_workspace_reserve(&ws, fb_kernel_workspace(k, a, n_threads));
    if (st != FB_OK) return st;
    a->ws = ws;
    const int saved = omp_get_max_threads();
    omp_set_num_threads(n_threads);
    st = k->fn(a);
    omp_set_num_threads(saved);
    a->ws = (fb_workspace){NULL, 0};
    fb_workspace_free(&ws);
    return st;
}
