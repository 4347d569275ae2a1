# Inference through the model: KV cache vs full forward; llama2.c parity.
fb_add_test(test_kv_decode model/test_kv_decode.c)
add_test(NAME kv_cache_vs_full_forward COMMAND test_kv_decode)

add_test(NAME generate_llama2c_reference COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/model/test_generate_llama2c.sh
         $<TARGET_FILE:flashblock_cli> ${FB_DATA_DIR})
set_tests_properties(generate_llama2c_reference PROPERTIES SKIP_RETURN_CODE 77)

fb_add_test(test_llmc_load model/test_llmc_load.c)
add_test(NAME llmc_checkpoint_load COMMAND test_llmc_load)

# Loaders refuse headers their tensors do not back, before allocating; the
# files go to the fuzz_model_load seed corpus.
fb_add_test(test_load_hostile model/test_load_hostile.c)
add_test(NAME model_load_hostile COMMAND test_load_hostile ${CMAKE_BINARY_DIR}/fuzz-corpus)
set_tests_properties(model_load_hostile PROPERTIES FIXTURES_SETUP model_corpus)
# Replay of that corpus through the loader fuzz body (ASan/UBSan in CI's
# Sanitize build); -DFB_FUZZ=ON with clang adds the libFuzzer binary.
fb_add_test(test_model_load_replay model/fuzz_model_load.c io/fuzz/replay_main.c)
add_test(NAME model_load_fuzz_replay COMMAND test_model_load_replay ${CMAKE_BINARY_DIR}/fuzz-corpus/model)
set_tests_properties(model_load_fuzz_replay PROPERTIES FIXTURES_REQUIRED model_corpus)
if(FB_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_model_load ${CMAKE_CURRENT_SOURCE_DIR}/model/fuzz_model_load.c)
  target_link_libraries(fuzz_model_load PRIVATE fb_test_util)
  target_compile_options(fuzz_model_load PRIVATE -g -O1 -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_model_load PRIVATE -fsanitize=fuzzer,address,undefined)
endif()

# The public API from outside: examples/generate.c against the CLI and run.c,
# then built against an installed copy (pkg-config, find_package).
# The outside builds use this build's compiler and flags (a Sanitize build
# installs an instrumented library, which only instrumented programs link).
string(TOUPPER "${CMAKE_BUILD_TYPE}" FB_BUILD_TYPE_UPPER)
set(FB_OUTSIDE_FLAGS "${CMAKE_C_FLAGS} ${CMAKE_C_FLAGS_${FB_BUILD_TYPE_UPPER}}")
add_test(NAME example_and_install COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/model/test_example_install.sh
         $<TARGET_FILE:flashblock_cli> $<TARGET_FILE:example_generate> ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR} ${FB_DATA_DIR}
         ${CMAKE_C_COMPILER} "${FB_OUTSIDE_FLAGS}")
set_tests_properties(example_and_install PROPERTIES SKIP_RETURN_CODE 77)

# flashblock inspect (library and CLI) against PyTorch: attention statistics,
# ablated losses, residual norms and maps to 1e-5.
fb_add_test(test_inspect_torch model/test_inspect_torch.c)
add_test(NAME inspect_vs_pytorch COMMAND test_inspect_torch $<TARGET_FILE:flashblock_cli>
         ${CMAKE_CURRENT_SOURCE_DIR}/model/torch_inspect.py ${CMAKE_CURRENT_BINARY_DIR}/inspect_torch)
set_tests_properties(inspect_vs_pytorch PROPERTIES SKIP_RETURN_CODE 77)

# The reduced mode of docs/SEED_RESULTS.md (scripts/seed-results.sh --quick):
# every section present, with numbers and charts. Not in Sanitize builds,
# where its benchmarks would take too long to mean anything.
if(NOT CMAKE_BUILD_TYPE STREQUAL "Sanitize")
  add_test(NAME seed_results_quick COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/model/test_seed_results.sh $<TARGET_FILE:flashblock_cli>
           ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/seed_quick ${FB_DATA_DIR})
  set_tests_properties(seed_results_quick PROPERTIES SKIP_RETURN_CODE 77 LABELS seed TIMEOUT 900 RUN_SERIAL TRUE)
endif()
