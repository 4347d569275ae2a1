/* Fuzz target for the model loaders (fb_model_load_weights, fp32 and Q8_0: GGUF, safetensors
 * checkpoints, llm.c, llama2.c) on whole files. The loaders take a path, so
 * each input is written to one temp file first. Any outcome but a crash or
 * a status without a message is fine; ASan/UBSan catch the rest, including
 * allocation-size-too-big from a header that was trusted too early. The
 * seed corpus is written by test_load_hostile. */
#include "core/error.h"
#include "infer/model_load.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[256];
    if (!path[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/fb_fuzz_model_%ld", t && *t ? t : "/tmp", (long)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    fclose(f);
    if (w != size) { unlink(path); return 0; }
    for (int w = 0; w < 2; w++) {   /* fp32 weights, and straight into Q8_0 */
        fb_model *m = NULL;
        fb_tokenizer *tok = NULL;
        fb_clear_error();
        fb_status s = fb_model_load_weights(path, w ? FB_MODEL_Q8_0 : FB_MODEL_F32, &m, &tok, NULL, NULL);
        if (s != FB_OK && fb_last_error()[0] == '\0') abort();   /* every failure says why */
        fb_model_free(m);
        fb_tokenizer_free(tok);
    }
    unlink(path);
    return 0;
}
