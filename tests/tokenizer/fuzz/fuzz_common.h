/* Shared helpers of the tokenizer fuzz targets. */
#ifndef FB_FUZZ_COMMON_H
#define FB_FUZZ_COMMON_H
#include "flashblock_tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FB_DEFAULT_DATA_DIR
#define FB_DEFAULT_DATA_DIR "../shared/data"
#endif

static inline void fz_abort(const char *what) {
    fprintf(stderr, "fuzz invariant violated: %s\n", what);
    abort();
}
#endif
