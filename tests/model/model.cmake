# Inference through the model: KV cache vs full forward; llama2.c parity.
fb_add_test(test_kv_decode model/test_kv_decode.c)
add_test(NAME kv_cache_vs_full_forward COMMAND test_kv_decode)

add_test(NAME generate_llama2c_reference COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/model/test_generate_llama2c.sh
         $<TARGET_FILE:flashblock_cli> ${FB_DATA_DIR})
set_tests_properties(generate_llama2c_reference PROPERTIES SKIP_RETURN_CODE 77)

fb_add_test(test_llmc_load model/test_llmc_load.c)
add_test(NAME llmc_checkpoint_load COMMAND test_llmc_load)
