# Training tests: whole-model parity with PyTorch; training mechanics
# (accumulation, recompute, resume, bad input) through the library and CLI.
fb_add_test(test_model_torch train/test_model_torch.c)
add_test(NAME model_vs_pytorch COMMAND test_model_torch ${CMAKE_CURRENT_SOURCE_DIR}/train/torch_model.py
         ${CMAKE_CURRENT_BINARY_DIR}/model_torch)
set_tests_properties(model_vs_pytorch PROPERTIES SKIP_RETURN_CODE 77)

fb_add_test(test_train_mechanics train/test_train_mechanics.c)
add_test(NAME train_mechanics COMMAND test_train_mechanics)
# every op call of training forward/backward checked against its declared slot shapes
set_tests_properties(train_mechanics PROPERTIES ENVIRONMENT "FLASHBLOCK_OP_CHECK=1")

add_test(NAME train_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/train/test_train_cli.sh $<TARGET_FILE:flashblock_cli>
         ${CMAKE_CURRENT_BINARY_DIR}/train_cli)
set_tests_properties(train_cli PROPERTIES SKIP_RETURN_CODE 77)

# Data parallelism on OpenMPI: DP, ZeRO-1, 2 and 4 ranks, resume across
# layouts, a dying rank, two hosts in network namespaces (needs MPI).
if(MPI_C_FOUND)
  add_test(NAME train_mpi COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/train/test_mpi.sh $<TARGET_FILE:flashblock_cli>
           ${CMAKE_CURRENT_BINARY_DIR}/train_mpi)
  set_tests_properties(train_mpi PROPERTIES TIMEOUT 900)
endif()
