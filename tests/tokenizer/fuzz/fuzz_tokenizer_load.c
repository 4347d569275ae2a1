/* libFuzzer target: the three vocabulary loaders on arbitrary bytes. First
 * byte selects: 0 GPT-2 (encoder.json and vocab.bpe separated by a NUL
 * byte), 1 llama2c tokenizer.bin, 2 flashblock-bpe. A load either fails
 * cleanly with a message or gives a tokenizer that encodes and decodes. */
#include "fuzz_common.h"
#include "tokenizer/tok_internal.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned sel = data[0] % 3;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    fb_tokenizer *t = NULL;
    fb_status st;
    if (sel == 0) {
        const char *z = memchr(p, 0, n);
        size_t jl = z ? (size_t)(z - p) : n;
        const char *bpe = z ? z + 1 : "";
        size_t bl = z ? n - jl - 1 : 0;
        st = fb_tok_gpt2_from_buffers(&t, p, jl, "encoder.json", bpe, bl, "vocab.bpe", "gpt2:fuzz");
    } else if (sel == 1) {
        st = fb_tok_llama2c_from_buffer(&t, (const unsigned char *)p, n, 0, "tokenizer.bin", "llama2c:fuzz");
    } else {
        st = fb_tok_trained_from_buffer(&t, p, n, "vocab.bpe", "fuzz");
    }
    if (st != FB_OK) {
        if (t || !fb_last_error()[0]) fz_abort("failed load without message or with a tokenizer");
        return 0;
    }
    static const char sample[] = "Hello, world! 'tis \xc3\xa9t\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \xff\xfe <|endoftext|>  \n";
    int32_t *ids = NULL; size_t k = 0, cap = 0;
    if (fb_tokenizer_encode(t, sample, sizeof sample - 1, FB_TOK_ADD_BOS | FB_TOK_ALLOW_SPECIAL, &ids, &k, &cap) != FB_OK)
        fz_abort("encode failed");
    for (size_t i = 0; i < k; i++) if (ids[i] < 0 || ids[i] >= fb_tokenizer_vocab_size(t)) fz_abort("id out of range");
    char *out = NULL; size_t ol;
    if (fb_tokenizer_decode(t, ids, k, &out, &ol) != FB_OK) fz_abort("decode failed");
    if (sel != 1) {   /* byte-level: exact without the special token recognition */
        free(ids); ids = NULL; cap = 0;
        fb_tokenizer_encode(t, sample, sizeof sample - 1, 0, &ids, &k, &cap);
        free(out);
        fb_tokenizer_decode(t, ids, k, &out, &ol);
        if (ol != sizeof sample - 1 || memcmp(out, sample, ol) != 0) fz_abort("round trip");
    }
    free(out); free(ids);
    fb_tokenizer_free(t);
    return 0;
}
