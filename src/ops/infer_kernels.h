/* Kernels of the inference ops (decode attention, Q8_0 matmul), declared
 * for the op table; see ops.h for their argument slots. */
#ifndef FB_OPS_INFER_KERNELS_H
#define FB_OPS_INFER_KERNELS_H
#include "ops/ops.h"

FB_DECLARE_SIMD(attention_decode);

void matmul_q8_0_forward_ref(const fb_op_args *a);
FB_DECLARE_SIMD(matmul_q8_0_forward);
/* AVX-512 VNNI (vpdpbusd) when the CPU has it, else the plain AVX-512 path. */
void matmul_q8_0_forward_vnni_avx512(const fb_op_args *a);
void matmul_q8_0_sizes(const int64_t *d, size_t *in, size_t *out);
void matmul_q8_0_prepare(const int64_t *d, float **in, uint64_t seed);
#endif
