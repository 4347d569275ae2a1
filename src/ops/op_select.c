/* Choosing and running the variants of the op table (op_table.c): the
 * first variant whose backend is available and whose CPU feature needs are
 * usable, overrides, the dtype check of fb_op_run, workspace queries. */
#include "ops/ops.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/q8_0.h"
#include "core/runtime.h"
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const char *fb_dtype_name(fb_dtype t) {
    switch (t) {
    case FB_DT_NONE: return "none";
    case FB_DT_F32: return "f32";
    case FB_DT_F16: return "f16";
    case FB_DT_BF16: return "bf16";
    case FB_DT_Q8_0: return "q8_0";
    case FB_DT_I32: return "i32";
    default: return "?";
    }
}

size_t fb_dtype_bytes(fb_dtype t, int64_t n) {
    if (n <= 0) return 0;
    switch (t) {
    case FB_DT_F32: case FB_DT_I32: return 4 * (size_t)n;
    case FB_DT_F16: case FB_DT_BF16: return 2 * (size_t)n;
    case FB_DT_Q8_0: return fb_q8_0_row_bytes(n);
    default: return 0;
    }
}

const char *fb_backend_name(fb_backend b) { return b == FB_BACKEND_CPU ? "cpu" : "?"; }

int fb_op_n_in(const fb_op_def *def) {
    int n = 0;
    while (n < FB_OP_MAX_IN && def->in[n].type != FB_DT_NONE) n++;
    return n;
}
int fb_op_n_out(const fb_op_def *def) {
    int n = 0;
    while (n < FB_OP_MAX_OUT && def->out[n].type != FB_DT_NONE) n++;
    return n;
}

/* The backend whose variants the table selects. Callers pass host
 * pointers, so only CPU variants qualify; a GPU backend gets its own
 * selection (docs/ARCHITECTURE.md, "Ops: adding a backend"). */
static int backend_selected(fb_backend b) { return b == FB_BACKEND_CPU; }

int fb_kernel_runnable(const fb_kernel *k) {
    return k && k->fn && backend_selected(k->backend) && (k->needs & ~fb_cpu_features()) == 0;
}

static const fb_kernel *selected[FB_OP_COUNT];
static int check_mode;   /* FLASHBLOCK_OP_CHECK=1: fb_op_validate on every run */
static int ready;
static pthread_once_t ready_once = PTHREAD_ONCE_INIT;

static fb_status force_variant(fb_op_id op, const char *variant);

static void select_all(void) {
    fb_runtime_init();
    for (int op = 0; op < FB_OP_COUNT; op++) {
        const fb_op_def *def = fb_op_get((fb_op_id)op);
        if (!def) continue;
        selected[op] = &def->reference;
        /* Variants are listed best first: take the first this machine runs. */
        for (const fb_kernel *k = def->variants; k && k->fn; k++)
            if (fb_kernel_runnable(k)) { selected[op] = k; break; }
    }
    /* FLASHBLOCK_KERNEL_<OP NAME>=variant overrides, e.g.
     * FLASHBLOCK_KERNEL_ATTENTION_FORWARD=standard_avx512 */
    for (int op = 0; op < FB_OP_COUNT; op++) {
        const fb_op_def *def = fb_op_get((fb_op_id)op);
        if (!def) continue;
        char env[96] = "FLASHBLOCK_KERNEL_";
        size_t len = strlen(env);
        for (const char *p = def->name; *p && len + 1 < sizeof env; p++) env[len++] = (char)toupper(*p);
        env[len] = '\0';
        const char *v = getenv(env);
        if (v) (void)force_variant((fb_op_id)op, v);   /* not fb_op_force_variant: we are inside the once */
    }
    const char *chk = getenv("FLASHBLOCK_OP_CHECK");
    check_mode = chk && strcmp(chk, "0") != 0;
}

static void first_select(void) {
    select_all();
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
}

static inline void ensure_selected(void) {
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) pthread_once(&ready_once, first_select);
}

void fb_ops_select(void) {
    ensure_selected();
    select_all();
}

const fb_kernel *fb_op_selected(fb_op_id op) {
    ensure_selected();
    return (unsigned)op < FB_OP_COUNT ? selected[op] : NULL;
}

const char *fb_op_selected_variant(fb_op_id op) {
    const fb_kernel *k = fb_op_selected(op);
    return k ? k->name : NULL;
}

fb_status fb_op_force_variant(fb_op_id op, const char *variant) {
    ensure_selected();
    return force_variant(op, variant);
}

static fb_status force_variant(fb_op_id op, const char *variant) {
    const fb_op_def *def = fb_op_get(op);
    if (!def || !variant) return fb_fail(FB_ERR_INVALID_ARG, "unknown op");
    if (strcmp(variant, "reference") == 0) {
        selected[op] = &def->reference;
        return FB_OK;
    }
    for (const fb_kernel *k = def->variants; k && k->fn; k++)
        if (strcmp(k->name, variant) == 0) {
            if (!fb_kernel_runnable(k)) {
                char why[256];
                return fb_fail(FB_ERR_UNSUPPORTED, "%s: variant %s cannot run here: %s", def->name, variant,
                               fb_cpu_explain_missing(k->needs, why, sizeof why));
            }
            selected[op] = k;
            return FB_OK;
        }
    return fb_fail(FB_ERR_INVALID_ARG, "%s: no variant named '%s'", def->name, variant);
}

/* ---- argument checks ---- */

static fb_status slot_error(const fb_op_def *def, const char *dir, int i, const fb_slot_decl *decl, int present,
                            fb_dtype got) {
    if (!present)
        return fb_fail(FB_ERR_INVALID_ARG, "%s: %s[%d] (%s) is NULL but required", def->name, dir, i, decl->name);
    return fb_fail(FB_ERR_INVALID_ARG, "%s: %s[%d] (%s) is %s, the op takes %s", def->name, dir, i, decl->name,
                   fb_dtype_name(got), fb_dtype_name(decl->type));
}

/* The cheap check of every run: each declared slot has its dtype, or is
 * NULL and optional. Slots beyond the declared ones are not looked at. */
static inline fb_status check_types(const fb_op_def *def, const fb_op_args *a) {
    for (int i = 0; i < FB_OP_MAX_IN && def->in[i].type; i++) {
        const int present = a->in[i].data != NULL;
        if (present ? a->in[i].type != def->in[i].type : !(def->in[i].flags & FB_SLOT_OPTIONAL))
            return slot_error(def, "in", i, &def->in[i], present, a->in[i].type);
    }
    for (int i = 0; i < FB_OP_MAX_OUT && def->out[i].type; i++) {
        const int present = a->out[i].data != NULL;
        if (present ? a->out[i].type != def->out[i].type : !(def->out[i].flags & FB_SLOT_OPTIONAL))
            return slot_error(def, "out", i, &def->out[i], present, a->out[i].type);
    }
    return FB_OK;
}

static fb_status check_shape(const fb_op_def *def, const char *dir, int i, int64_t rows, int64_t cols,
                             int64_t stride, const fb_shape *want) {
    if (rows == want->rows && cols == want->cols && stride == want->stride) return FB_OK;
    return fb_fail(FB_ERR_SHAPE, "%s: %s[%d] is [%lld, %lld] stride %lld, the dims make it [%lld, %lld] stride %lld",
                   def->name, dir, i, (long long)rows, (long long)cols, (long long)stride, (long long)want->rows,
                   (long long)want->cols, (long long)want->stride);
}

fb_status fb_op_validate(fb_op_id op, const fb_op_args *a) {
    const fb_op_def *def = fb_op_get(op);
    if (!def || !a) return fb_fail(FB_ERR_INVALID_ARG, "fb_op_validate: unknown op %d or NULL arguments", (int)op);
    FB_TRY(check_types(def, a));
    fb_shape in[FB_OP_MAX_IN], out[FB_OP_MAX_OUT];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    def->shapes(a->d, in, out);
    for (int i = 0; i < fb_op_n_in(def); i++)
        if (a->in[i].data)
            FB_TRY(check_shape(def, "in", i, a->in[i].rows, a->in[i].cols, a->in[i].stride, &in[i]));
    for (int i = 0; i < fb_op_n_out(def); i++)
        if (a->out[i].data)
            FB_TRY(check_shape(def, "out", i, a->out[i].rows, a->out[i].cols, a->out[i].stride, &out[i]));
    return FB_OK;
}

fb_status fb_op_run(fb_op_id op, const fb_op_args *a) {
    if ((unsigned)op >= FB_OP_COUNT || !a)
        return fb_fail(FB_ERR_INVALID_ARG, "fb_op_run: unknown op %d or NULL arguments", (int)op);
    ensure_selected();
    const fb_kernel *k = selected[op];
    if (!k) return fb_fail(FB_ERR_UNSUPPORTED, "fb_op_run: op %d has no table entry", (int)op);
    if (check_mode) FB_TRY(fb_op_validate(op, a));
    else FB_TRY(check_types(fb_op_get(op), a));
    return k->fn(a);
}

/* ---- workspaces ---- */

size_t fb_kernel_workspace(const fb_kernel *k, const fb_op_args *a, int n_threads) {
    if (!k || !k->workspace || !a) return 0;
    return k->workspace(a, n_threads > 0 ? n_threads : 1);
}

size_t fb_op_workspace(fb_op_id op, const fb_op_args *a, int n_threads) {
    return fb_kernel_workspace(fb_op_selected(op), a, n_threads);
}

void fb_ws_plan(size_t *need, fb_op_id op, const fb_op_args *a, int n_threads) {
    const size_t n = fb_op_workspace(op, a, n_threads);
    if (n > *need) *need = n;
}

fb_status fb_ws_check(const fb_op_args *a, size_t need, const char *kernel) {
    if (need == 0) return FB_OK;
    if (!a->ws.data || a->ws.bytes < need)
        return fb_fail(FB_ERR_WORKSPACE, "%s: needs a workspace of %zu bytes, got %zu (plan with fb_op_workspace "
                       "for the largest shapes and the thread count)", kernel, need, a->ws.data ? a->ws.bytes : 0);
    if ((uintptr_t)a->ws.data % 64)
        return fb_fail(FB_ERR_WORKSPACE, "%s: workspace is not 64-byte aligned", kernel);
    return FB_OK;
}
