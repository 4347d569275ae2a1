# flashblock serve (built when libmicrohttpd is found): chat templates in C,
# then the server itself on loopback (127.0.0.1, port 0) driven by Python's
# http.client: flags and startup errors, the OpenAI API and its errors,
# concurrency (batch-independent outputs, preemption, cancellation, 429),
# batch invariance (32 greedy requests together and preempted, one request
# among 63 others),
# hostile clients (bad bodies, slow and non-reading clients, dropped
# connections) and graceful shutdown, the chat page in headless Chromium,
# and the official `openai` npm client (server_openai_client, under node;
# needs `npm ci` in tests/server/node, skips without it unless CI=true).
# Each starts and stops its own server; all of them take about a minute.
fb_add_test(test_chat_template server/test_chat_template.c)
target_link_libraries(test_chat_template PRIVATE fb_server)
add_test(NAME server_chat_template COMMAND test_chat_template)
fb_add_test(test_server_util server/test_server_util.c)
target_link_libraries(test_server_util PRIVATE fb_server)
add_test(NAME server_util COMMAND test_server_util)

set(FB_SERVER_TEST_DIR ${CMAKE_CURRENT_SOURCE_DIR}/server)
add_test(NAME server_cli COMMAND ${FB_SERVER_TEST_DIR}/test_serve_cli.sh $<TARGET_FILE:flashblock_cli> ${FB_DATA_DIR})
add_test(NAME server_api COMMAND /usr/bin/python3 ${FB_SERVER_TEST_DIR}/test_api.py $<TARGET_FILE:flashblock_cli> ${FB_DATA_DIR})
add_test(NAME server_concurrency COMMAND /usr/bin/python3 ${FB_SERVER_TEST_DIR}/test_concurrency.py
         $<TARGET_FILE:flashblock_cli> ${FB_DATA_DIR})
add_test(NAME server_batch_invariance COMMAND /usr/bin/python3 ${FB_SERVER_TEST_DIR}/test_batch_invariance.py
         $<TARGET_FILE:flashblock_cli> ${FB_DATA_DIR})
add_test(NAME server_hostile COMMAND /usr/bin/python3 ${FB_SERVER_TEST_DIR}/test_hostile.py $<TARGET_FILE:flashblock_cli> ${FB_DATA_DIR})
add_test(NAME server_chat_page COMMAND /usr/bin/python3 ${FB_SERVER_TEST_DIR}/test_chat_page.py
         $<TARGET_FILE:flashblock_cli> ${FB_DATA_DIR} ${CMAKE_CURRENT_BINARY_DIR}/server/chat_page.png)
find_program(FB_NODE node)
if(FB_NODE)
  add_test(NAME server_openai_client COMMAND ${FB_NODE} ${FB_SERVER_TEST_DIR}/test_openai_client.mjs
           $<TARGET_FILE:flashblock_cli> ${FB_DATA_DIR})
else()
  add_test(NAME server_openai_client COMMAND sh -c "echo 'node not found'; [ \"$CI\" = true ] && exit 1; exit 77")
endif()
set_tests_properties(server_cli server_api server_concurrency server_batch_invariance server_hostile server_chat_page server_openai_client PROPERTIES
                     SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS server)
set_tests_properties(server_chat_template server_util PROPERTIES LABELS server)

# The request parser under fuzzing (tests/server/fuzz/fuzz_request.c): plain
# builds replay the seed corpus in CTest; -DFB_FUZZ=ON with clang builds the
# libFuzzer binary fuzz_server_request, run bounded by .ci/run.
fb_add_test(test_server_fuzz_replay server/fuzz/fuzz_request.c io/fuzz/replay_main.c)
target_link_libraries(test_server_fuzz_replay PRIVATE fb_server)
add_test(NAME server_fuzz_replay COMMAND test_server_fuzz_replay ${FB_SERVER_TEST_DIR}/fuzz/corpus)
set_tests_properties(server_fuzz_replay PROPERTIES LABELS server)
if(FB_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  target_compile_options(fb_server PRIVATE -fsanitize=fuzzer-no-link)
  add_executable(fuzz_server_request ${FB_SERVER_TEST_DIR}/fuzz/fuzz_request.c)
  target_link_libraries(fuzz_server_request PRIVATE fb_server)
  target_compile_definitions(fuzz_server_request PRIVATE FB_DEFAULT_DATA_DIR="${FB_DATA_DIR}")
  target_compile_options(fuzz_server_request PRIVATE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
  target_link_options(fuzz_server_request PRIVATE -fsanitize=fuzzer,address,undefined)
endif()
