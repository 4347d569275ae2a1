/* Workspace functions of the fast attention kernels (layouts in
 * attention_plan.h). Here, in plain C, and not in the *.simd.c files: they
 * are called while planning, on any CPU. */
#include "attention/attention_plan.h"

size_t flash_attention_forward_ws(const fb_op_args *a, int n_threads) {
    return (size_t)n_threads * flash_fwd_thread_bytes(a->d);
}

size_t flash_attention_backward_ws(const fb_op_args *a, int n_threads) {
    return flash_bwd_shared_bytes(a->d) + (size_t)n_threads * flash_bwd_thread_bytes(a->d);
}

size_t attention_decode_ws(const fb_op_args *a, int n_threads) {
    const decode_plan p = decode_plan_for(a->d, n_threads);
    return p.shared_bytes + (size_t)n_threads * p.thread_bytes;
}

size_t attention_forward_standard_ws(const fb_op_args *a, int n_threads) {
    return (size_t)n_threads * (standard_matrix_bytes(a->d) + standard_gather_bytes(a->d));
}

size_t attention_backward_standard_ws(const fb_op_args *a, int n_threads) {
    return (size_t)n_threads * 2 * standard_matrix_bytes(a->d);
}
