# Core tests: op table (every fast variant vs its reference), block config
# validation, whole-block parity with PyTorch.
fb_add_test(test_ops core/test_ops.c)
add_test(NAME ops_vs_reference COMMAND test_ops)

# CPU feature mask, its overrides and selection by feature needs, under each override.
fb_add_test(test_cpu_features core/test_cpu_features.c)
add_test(NAME cpu_features COMMAND test_cpu_features)
add_test(NAME cpu_features_isa_avx2 COMMAND test_cpu_features)
set_tests_properties(cpu_features_isa_avx2 PROPERTIES ENVIRONMENT "FLASHBLOCK_ISA=avx2")
add_test(NAME cpu_features_disable COMMAND test_cpu_features)
set_tests_properties(cpu_features_disable PROPERTIES ENVIRONMENT "FLASHBLOCK_DISABLE=avx512_vnni,fma")

fb_add_test(test_attention_determinism core/test_attention_determinism.c)
add_test(NAME attention_backward_determinism COMMAND test_attention_determinism)

fb_add_test(test_block_config core/test_block_config.c)
add_test(NAME block_config COMMAND test_block_config)

fb_add_test(test_block_torch core/test_block_torch.c)
add_test(NAME block_vs_pytorch COMMAND test_block_torch ${CMAKE_CURRENT_SOURCE_DIR}/core/torch_block.py
         ${CMAKE_CURRENT_BINARY_DIR}/block_torch)
set_tests_properties(block_vs_pytorch PROPERTIES SKIP_RETURN_CODE 77)

add_test(NAME cli_errors COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/core/test_cli_errors.sh $<TARGET_FILE:flashblock_cli>)

fb_add_test(test_grad_check core/test_grad_check.c)
add_test(NAME grad_check COMMAND test_grad_check)

fb_add_test(test_gemm core/test_gemm.c)
add_test(NAME sgemm_vs_reference COMMAND test_gemm)

add_test(NAME output_dirs COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/core/test_output_dirs.sh $<TARGET_FILE:flashblock_cli>
         ${CMAKE_CURRENT_BINARY_DIR}/output_dirs)
