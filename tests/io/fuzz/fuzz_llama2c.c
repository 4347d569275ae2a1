/* libFuzzer target for the llama2c reader (see tests/io/fuzz/fuzz_common.h). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)fb_fuzz_llama2c(data, size);
    return 0;
}
