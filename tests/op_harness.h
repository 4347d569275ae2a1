/*
 * Arguments of one op for given dims, allocated and filled by the declared
 * dtype of every slot (src/ops/ops.h, fb_op_def): f32 normal(0, 1), i32
 * uniform in [0, bound), q8_0 valid blocks (quantised normal values), f16
 * and bf16 converted normals; then the op's prepare hook. Every buffer has
 * guard words behind it; outputs start from NaN garbage (ACC outputs from
 * random values), and kernels run with a workspace of exactly the bytes
 * they declare, garbage-filled, guarded too.
 */
#ifndef FB_TEST_OP_HARNESS_H
#define FB_TEST_OP_HARNESS_H
#include "ops/ops.h"
#include "test_util.h"

typedef struct fb_test_op {
    fb_op_id op;
    const fb_op_def *def;
    int n_in, n_out;
    fb_shape in_shape[FB_OP_MAX_IN], out_shape[FB_OP_MAX_OUT];
    size_t in_bytes[FB_OP_MAX_IN], out_bytes[FB_OP_MAX_OUT];
    void *in[FB_OP_MAX_IN];                      /* inputs */
    void *out[FB_OP_MAX_OUT];                    /* where kernels write */
    void *init[FB_OP_MAX_OUT];                   /* starting values of the outputs */
    void *ref[FB_OP_MAX_OUT];                    /* the reference's result (fb_test_op_keep_ref) */
    fb_op_args args;                             /* slots point at in[] and out[]; ws empty */
} fb_test_op;

/* 0 on success. null_in: bit k makes in[k] NULL (an absent optional slot). */
int  fb_test_op_init(fb_test_op *t, fb_op_id op, const int64_t *d, const float *f, unsigned null_in,
                     fb_test_rng *rng);
/* Outputs back to their starting values; bit k of null_out makes out[k] NULL. */
void fb_test_op_reset(fb_test_op *t, unsigned null_out);
/* Runs kernel k (reset outputs first) with n_threads OpenMP threads at most
 * and a workspace of its declared size (minus `short_by` bytes when the test
 * wants the too-small path). *ws_ok: the workspace guard is intact. */
fb_status fb_test_op_run(fb_test_op *t, const fb_kernel *k, int n_threads, size_t short_by, int *ws_ok);
void fb_test_op_keep_ref(fb_test_op *t);
/* Guard words behind every input and output intact. */
int  fb_test_op_guards_ok(const fb_test_op *t);
/* Max error of output o against the reference, relative to the reference's
 * largest magnitude; elements the reference left unwritten (NaN) must stay
 * NaN. Non-f32 outputs must match bit for bit (0 or INFINITY). */
double fb_test_op_err(const fb_test_op *t, int o);
void fb_test_op_free(fb_test_op *t);

/* For arguments built by hand with data pointers only ({.in = {{x}, {w}}}):
 * every slot gets the declared dtype and the shape the dims give. */
void fb_test_args_complete(fb_op_id op, fb_op_args *a);
/* Runs kernel k on a (a->ws replaced by a fresh workspace of the declared
 * size for n_threads threads, freed after). */
fb_status fb_test_run_kernel(const fb_kernel *k, fb_op_args *a, int n_threads);
#endif
