/* libFuzzer target for the llmc reader (see tests/io/fuzz/fuzz_common.h). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)fb_fuzz_llmc(data, size);
    return 0;
}
