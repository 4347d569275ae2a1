# Inference pieces: sampler, Q8_0 quantisation and int8 matmul (the op-table
# comparison of every kernel is in test_ops; this adds the strict checks).
fb_add_test(test_sampler infer/test_sampler.c)
add_test(NAME infer_sampler COMMAND test_sampler)

fb_add_test(test_quant_q8_0 infer/test_quant_q8_0.c)
add_test(NAME infer_quant_q8_0 COMMAND test_quant_q8_0)

# The public inference API: batch invariance, fork, logprobs, stop rules, errors.
fb_add_test(test_session infer/test_session.c)
add_test(NAME infer_session COMMAND test_session)
# every op call of the engine checked against its declared slot shapes
set_tests_properties(infer_session PROPERTIES ENVIRONMENT "FLASHBLOCK_OP_CHECK=1")
