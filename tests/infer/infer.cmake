# Inference pieces: sampler, Q8_0 quantisation and int8 matmul (the op-table
# comparison of every kernel is in test_ops; this adds the strict checks).
fb_add_test(test_sampler infer/test_sampler.c)
add_test(NAME infer_sampler COMMAND test_sampler)

fb_add_test(test_quant_q8_0 infer/test_quant_q8_0.c)
add_test(NAME infer_quant_q8_0 COMMAND test_quant_q8_0)

# The public inference API: batch invariance, fork, logprobs, stop rules, errors.
fb_add_test(test_session infer/test_session.c)
add_test(NAME infer_session COMMAND test_session)

# The paged KV cache: bitwise equal to the contiguous layout (ops and engine),
# forks, the block budget, and reference counts under churn.
fb_add_test(test_kv_paged infer/test_kv_paged.c)
add_test(NAME infer_kv_paged COMMAND test_kv_paged)

# Loading straight into Q8_0: the same blocks as quantizing the fp32 load,
# Q8_0 GGUF blocks copied exactly, no fp32 copy of the matrices, equal
# logits; with "real", on stories260K.bin from the shared data.
fb_add_test(test_q8_load infer/test_q8_load.c)
add_test(NAME infer_q8_load COMMAND test_q8_load)
add_test(NAME infer_q8_load_stories260k COMMAND test_q8_load real)
set_tests_properties(infer_q8_load_stories260k PROPERTIES SKIP_RETURN_CODE 77)

# every op call of the engine checked against its declared slot shapes
set_tests_properties(infer_session PROPERTIES ENVIRONMENT "FLASHBLOCK_OP_CHECK=1")
