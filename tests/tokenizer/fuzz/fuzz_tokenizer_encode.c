/* libFuzzer target: encode arbitrary bytes with each tokenizer, decode, and
 * require exact round trips (byte-level kinds: decode(encode(x)) == x;
 * llama2c with BOS: also == x, thanks to <0xHH> byte fallback), equality of
 * the streaming decoder, and ids within the vocabulary. */
#include "fuzz_common.h"
#include <stdint.h>

static fb_tokenizer *fz_tok[3];   /* byte, gpt2 (file, else a tiny in-memory one), tok512 (else a tiny one) */

static void fz_init(void) {
    if (fz_tok[0]) return;
    const char *root = getenv("FLASHBLOCK_DATA");
    if (!root || !*root) root = FB_DEFAULT_DATA_DIR;
    char spec[4200];
    if (fb_tokenizer_load(&fz_tok[0], "byte") != FB_OK) fz_abort("byte tokenizer");
    snprintf(spec, sizeof spec, "gpt2:%s/gpt2", root);
    if (fb_tokenizer_load(&fz_tok[1], spec) != FB_OK) {
        /* no data: a tiny GPT-2 style vocabulary built in memory */
        static char store[256][4];
        const char *toks[258];
        int n = 0;
        for (int b = 0; b < 256; b++) {
            int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            unsigned cp = keep ? (unsigned)b : 256u + (unsigned)n++;
            if (cp < 0x80) { store[b][0] = (char)cp; store[b][1] = 0; }
            else { store[b][0] = (char)(0xC0 | (cp >> 6)); store[b][1] = (char)(0x80 | (cp & 0x3F)); store[b][2] = 0; }
            toks[b] = store[b];
        }
        toks[256] = "\xc4\xa0t"; toks[257] = "<|endoftext|>";
        const char *merges[] = { "\xc4\xa0 t" };
        if (fb_tokenizer_from_gpt2(&fz_tok[1], toks, 258, merges, 1) != FB_OK) fz_abort("small gpt2");
    }
    snprintf(spec, sizeof spec, "llama2c:%s/llama2c/tok512.bin", root);
    if (fb_tokenizer_load(&fz_tok[2], spec) != FB_OK) {
        const char *pieces[262]; float scores[262];
        static char bp[256][8];
        pieces[0] = "<unk>"; pieces[1] = "\n<s>\n"; pieces[2] = "\n</s>\n";
        for (int b = 0; b < 256; b++) { snprintf(bp[b], 8, "<0x%02X>", b); pieces[3 + b] = bp[b]; }
        pieces[259] = " "; pieces[260] = "ab"; pieces[261] = " ab";
        for (int i = 0; i < 262; i++) scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
        if (fb_tokenizer_from_sentencepiece(&fz_tok[2], pieces, scores, 262, 1, 2) != FB_OK) fz_abort("small spm");
    }
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init();
    if (size < 1) return 0;
    unsigned sel = data[0] % 3, flags = (data[0] >> 2) & 7u;
    const fb_tokenizer *t = fz_tok[sel];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (sel == 2) flags |= FB_TOK_ADD_BOS;
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    if (fb_tokenizer_encode(t, text, len, flags, &ids, &n, &cap) != FB_OK) fz_abort("encode failed");
    int vs = fb_tokenizer_vocab_size(t);
    for (size_t i = 0; i < n; i++) if (ids[i] < 0 || ids[i] >= vs) fz_abort("id out of range");
    char *out = NULL; size_t ol = 0;
    /* decode without the added BOS/EOS of byte-level kinds */
    size_t skip = 0, cut = 0;
    if (sel != 2) {
        if ((flags & FB_TOK_ADD_BOS) && fb_tokenizer_bos_id(t) >= 0) skip = 1;
        if ((flags & FB_TOK_ADD_EOS) && fb_tokenizer_eos_id(t) >= 0) cut = 1;
    } else if ((flags & FB_TOK_ADD_EOS) && fb_tokenizer_eos_id(t) >= 0) cut = 1;
    if (n < skip + cut) fz_abort("missing bos/eos");
    if (fb_tokenizer_decode(t, ids ? ids + skip : NULL, n - skip - cut, &out, &ol) != FB_OK) fz_abort("decode failed");
    int special = sel == 1 && (flags & FB_TOK_ALLOW_SPECIAL);   /* <|endoftext|> decodes to its text: still exact */
    (void)special;
    if (ol != len || memcmp(out, text, len) != 0) fz_abort("decode(encode(x)) != x");
    fb_token_decoder *d = NULL;
    if (fb_token_decoder_init(&d, t) != FB_OK) fz_abort("decoder init");
    size_t pos = 0;
    for (size_t i = skip; i < n - cut; i++) {
        const char *b; size_t bl;
        if (fb_token_decoder_push(d, ids[i], &b, &bl) != FB_OK) fz_abort("push");
        if (pos + bl > ol || memcmp(out + pos, b, bl) != 0) fz_abort("streaming decode differs");
        pos += bl;
    }
    const char *b; size_t bl;
    fb_token_decoder_flush(d, &b, &bl);
    if (pos + bl != ol || memcmp(out + pos, b, bl) != 0) fz_abort("streaming flush differs");
    fb_token_decoder_free(d);
    free(out);
    free(ids);
    return 0;
}
