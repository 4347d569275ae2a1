# Tokenizer tests (included from tests/CMakeLists.txt). Data-dependent tests
# exit 77 (skipped) without ../shared/data unless CI=true.
set(FB_TOK_DIR ${CMAKE_CURRENT_LIST_DIR})

foreach(t test_tokenizer_gpt2 test_tokenizer_llama2c test_tokenizer_train test_tokenizer_errors)
  fb_add_test(${t} ${FB_TOK_DIR}/${t}.c)
  string(REPLACE "test_" "" tname ${t})
  add_test(NAME ${tname} COMMAND ${t})
  set_tests_properties(${tname} PROPERTIES SKIP_RETURN_CODE 77 LABELS tokenizer)
endforeach()
set_tests_properties(tokenizer_llama2c PROPERTIES TIMEOUT 600)

# Live comparison with OpenAI's GPT-2 tokenizer (js-tiktoken, gpt-3-encoder)
# under node: needs `npm ci` in tests/tokenizer/node (skips otherwise, fails
# when CI=true).
fb_add_test(tok_dump ${FB_TOK_DIR}/tok_dump.c)
add_test(NAME tokenizer_node_reference
         COMMAND sh ${FB_TOK_DIR}/run_node_reference.sh $<TARGET_FILE:tok_dump> ${FB_DATA_DIR}
                 ${FB_TOK_DIR}/stress/gpt2_stress.json)
set_tests_properties(tokenizer_node_reference PROPERTIES SKIP_RETURN_CODE 77 LABELS tokenizer TIMEOUT 300)

# Fuzz targets. Always built with a plain driver (fixed + generated inputs)
# as a smoke test; with -DFB_FUZZ=ON (clang only) also as libFuzzer binaries
# fuzz_tokenizer_encode / fuzz_tokenizer_load (see docs/TOKENIZERS.md).
foreach(f fuzz_tokenizer_encode fuzz_tokenizer_load)
  fb_add_test(${f}_smoke ${FB_TOK_DIR}/fuzz/${f}.c ${FB_TOK_DIR}/fuzz/fuzz_driver.c)
  add_test(NAME tokenizer_${f}_smoke COMMAND ${f}_smoke -runs=3000)
  set_tests_properties(tokenizer_${f}_smoke PROPERTIES LABELS tokenizer)
endforeach()

option(FB_FUZZ "Build libFuzzer fuzz targets (requires clang)" OFF)
if(FB_FUZZ)
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    # the tokenizer sources are compiled into each target so that libFuzzer
    # gets coverage feedback from them (the flashblock library stays as is)
    get_filename_component(FB_TOK_REPO ${FB_TOK_DIR}/../.. ABSOLUTE)
    file(GLOB FB_TOK_LIB_SOURCES CONFIGURE_DEPENDS ${FB_TOK_REPO}/src/tokenizer/*.c)
    foreach(f fuzz_tokenizer_encode fuzz_tokenizer_load)
      add_executable(${f} ${FB_TOK_DIR}/fuzz/${f}.c ${FB_TOK_LIB_SOURCES} ${FB_TOK_REPO}/src/core/error.c
                     ${FB_TOK_REPO}/src/io/atomic_write.c)
      target_include_directories(${f} PRIVATE ${FB_TOK_REPO}/include ${FB_TOK_REPO}/src)
      target_compile_definitions(${f} PRIVATE FB_DEFAULT_DATA_DIR="${FB_DATA_DIR}")
      target_compile_options(${f} PRIVATE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
      target_link_options(${f} PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_libraries(${f} PRIVATE PkgConfig::JSONC PkgConfig::UTF8PROC m)
    endforeach()
  else()
    message(WARNING "FB_FUZZ: libFuzzer needs clang (CC=clang); tokenizer fuzz targets are not built")
  endif()
endif()
