# Tests for src/io (model file formats). Included from tests/CMakeLists.txt.
set(FB_IO_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

fb_add_test(test_io_llama2c_real ${FB_IO_TEST_DIR}/test_llama2c_real.c)
add_test(NAME io_llama2c_real COMMAND test_io_llama2c_real)
set_tests_properties(io_llama2c_real PROPERTIES SKIP_RETURN_CODE 77 LABELS io)

foreach(t llama2c llmc)
  fb_add_test(test_io_${t} ${FB_IO_TEST_DIR}/test_${t}.c)
  add_test(NAME io_${t} COMMAND test_io_${t})
  set_tests_properties(io_${t} PROPERTIES LABELS io)
endforeach()

foreach(t basics safetensors gguf)
  fb_add_test(test_io_${t} ${FB_IO_TEST_DIR}/test_${t}.c)
  add_test(NAME io_${t} COMMAND test_io_${t})
  set_tests_properties(io_${t} PROPERTIES LABELS io)
endforeach()

# Truncation/mutation sweep; also writes the fuzz seed corpora into the build tree.
set(FB_IO_CORPUS ${CMAKE_BINARY_DIR}/fuzz-corpus)
fb_add_test(test_io_hostile ${FB_IO_TEST_DIR}/test_hostile.c)
target_include_directories(test_io_hostile PRIVATE ${FB_IO_TEST_DIR})
add_test(NAME io_hostile COMMAND test_io_hostile ${FB_IO_CORPUS})
set_tests_properties(io_hostile PROPERTIES LABELS io FIXTURES_SETUP io_corpus)

# Fuzz targets. Plain builds: replay drivers run over the seed corpora in
# CTest (under the Sanitize build this is the bounded CI fuzz smoke test).
# -DFB_FUZZ=ON with clang: libFuzzer binaries fuzz_<format> with ASan+UBSan,
# compiled together with the io sources so the readers are instrumented.
set(FB_IO_FUZZ_TARGETS safetensors gguf llama2c llmc)
foreach(f ${FB_IO_FUZZ_TARGETS})
  fb_add_test(test_io_replay_${f} ${FB_IO_TEST_DIR}/fuzz/fuzz_${f}.c ${FB_IO_TEST_DIR}/fuzz/replay_main.c)
  target_include_directories(test_io_replay_${f} PRIVATE ${FB_IO_TEST_DIR})
  add_test(NAME io_fuzz_replay_${f} COMMAND test_io_replay_${f} ${FB_IO_CORPUS}/${f})
  set_tests_properties(io_fuzz_replay_${f} PROPERTIES LABELS io FIXTURES_REQUIRED io_corpus)
endforeach()

if(FB_FUZZ)
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    get_filename_component(FB_IO_REPO ${FB_IO_TEST_DIR}/../.. ABSOLUTE)
    file(GLOB FB_IO_LIB_SOURCES CONFIGURE_DEPENDS ${FB_IO_REPO}/src/io/*.c)
    foreach(f ${FB_IO_FUZZ_TARGETS})
      add_executable(fuzz_${f} ${FB_IO_TEST_DIR}/fuzz/fuzz_${f}.c ${FB_IO_LIB_SOURCES} ${FB_IO_REPO}/src/core/error.c
                     ${FB_IO_REPO}/src/core/q8_0.c)
      target_include_directories(fuzz_${f} PRIVATE ${FB_IO_REPO}/include ${FB_IO_REPO}/src ${FB_IO_TEST_DIR})
      target_compile_options(fuzz_${f} PRIVATE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
      target_link_options(fuzz_${f} PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_libraries(fuzz_${f} PRIVATE PkgConfig::JSONC m)
    endforeach()
  else()
    message(WARNING "FB_FUZZ: libFuzzer needs clang (CC=clang); io fuzz targets are not built")
  endif()
endif()

# Independent python implementation (tests/io/oracle.py, numpy) as the oracle.
fb_add_test(test_io_python ${FB_IO_TEST_DIR}/test_python.c)
target_link_libraries(test_io_python PRIVATE PkgConfig::JSONC)
add_test(NAME io_python_oracle COMMAND test_io_python)
set_tests_properties(io_python_oracle PROPERTIES SKIP_RETURN_CODE 77 LABELS io)
