/*
 * flashblock — tokenizers (see docs/TOKENIZERS.md).
 *
 * Four kinds behind one opaque handle:
 *   "byte"          id = byte value (0..255), no special tokens.
 *   "gpt2:DIR"      OpenAI GPT-2 byte-level BPE from DIR/encoder.json and
 *                   DIR/vocab.bpe; output identical to OpenAI's tokenizer.
 *   "llama2c:FILE"  llama2.c tokenizer.bin (SentencePiece BPE with byte
 *                   fallback); encode/decode identical to llama2.c run.c.
 *   PATH            a vocabulary trained by fb_tokenizer_train_bpe()
 *                   ("flashblock-bpe 1" text format).
 *
 * All functions are thread-safe on a shared const fb_tokenizer (encode keeps
 * its word cache per call). Failures return a non-zero fb_status and
 * fb_last_error() names the file and the offset or line at fault.
 */
#ifndef FLASHBLOCK_TOKENIZER_H
#define FLASHBLOCK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "flashblock.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fb_tokenizer fb_tokenizer;

typedef enum fb_tokenizer_kind {
    FB_TOKENIZER_BYTE = 0,
    FB_TOKENIZER_GPT2 = 1,      /* GPT-2 byte-level BPE (also from_gpt2) */
    FB_TOKENIZER_LLAMA2C = 2,   /* SentencePiece-style (llama2c file, from_sentencepiece) */
    FB_TOKENIZER_TRAINED = 3,   /* flashblock-bpe vocabulary */
} fb_tokenizer_kind;

/* Encode flags. */
#define FB_TOK_ADD_BOS       1u  /* prepend bos id (no-op if the tokenizer has none) */
#define FB_TOK_ADD_EOS       2u  /* append eos id (no-op if none) */
#define FB_TOK_ALLOW_SPECIAL 4u  /* recognise "<|endoftext|>" in the text as the special id
                                    (otherwise it is encoded as ordinary text) */

/* spec: "byte", "gpt2:DIR", "llama2c:FILE" (vocabulary size = every entry in
 * the file) or a path to a trained vocabulary file. */
fb_status fb_tokenizer_load(fb_tokenizer **out, const char *spec);
/* llama2c tokenizer.bin with the vocabulary size from the model header
 * (reads exactly vocab_size entries, trailing bytes ignored as run.c does;
 * vocab_size <= 0 reads to the end of the file). */
fb_status fb_tokenizer_load_llama2c(fb_tokenizer **out, const char *path, int vocab_size);

/* In-memory vocabularies (GGUF stores these).
 * SentencePiece: pieces as raw UTF-8 with U+2581 already turned into ' ' or
 * not (both are accepted: "▁" is converted to ' '), scores, BOS/EOS ids (-1 if
 * none). Encoding follows llama2.c run.c (byte fallback to id byte+3 when that
 * id exists, else to "<0xHH>" pieces, else to id 0).
 * GPT-2: token strings in the byte-to-unicode alphabet (as encoder.json),
 * token i has id i; merges "left right" in priority order. */
fb_status fb_tokenizer_from_sentencepiece(fb_tokenizer **out, const char *const *pieces,
                                          const float *scores, int n, int bos_id, int eos_id);
fb_status fb_tokenizer_from_gpt2(fb_tokenizer **out, const char *const *tokens, int n_tokens,
                                 const char *const *merges, int n_merges);

void fb_tokenizer_free(fb_tokenizer *t);

fb_tokenizer_kind fb_tokenizer_get_kind(const fb_tokenizer *t);
int fb_tokenizer_vocab_size(const fb_tokenizer *t);
int fb_tokenizer_bos_id(const fb_tokenizer *t);   /* -1 if none */
int fb_tokenizer_eos_id(const fb_tokenizer *t);   /* -1 if none */
/* The spec it was loaded from (checkpoints record it); for in-memory
 * constructors "sentencepiece:memory" / "gpt2:memory". */
const char *fb_tokenizer_spec(const fb_tokenizer *t);
/* Raw bytes of one token as decode() emits them out of context (NULL if the
 * id is out of range). For llama2c byte pieces this is the single byte. */
const char *fb_tokenizer_token_bytes(const fb_tokenizer *t, int32_t id, size_t *len);

/* Encode len bytes of text (any bytes; need not be valid UTF-8 or
 * NUL-terminated). *ids is a growable malloc'd array of capacity *cap (both
 * may start as NULL/0); on success it holds *n_ids ids from index 0. */
fb_status fb_tokenizer_encode(const fb_tokenizer *t, const char *text, size_t len, unsigned flags,
                              int32_t **ids, size_t *n_ids, size_t *cap);
/* Encode into a caller buffer of cap ids. *n_ids receives the number of ids
 * the text needs; FB_ERR_SHAPE (nothing else changed) if that exceeds cap. */
fb_status fb_tokenizer_encode_into(const fb_tokenizer *t, const char *text, size_t len,
                                   unsigned flags, int32_t *buf, size_t cap, size_t *n_ids);

/* Streaming decoder: push one id, receive the bytes that are complete.
 * Incomplete UTF-8 sequences are held back until completed (or until an
 * invalid continuation proves them invalid, then emitted as they are), so
 * the concatenation of all outputs plus flush() equals decode() exactly.
 * llama2c rules: a piece after BOS loses its leading space, "<0xHH>" pieces
 * become the byte, BOS itself emits nothing. The returned pointer is valid
 * until the next call on the decoder. */
typedef struct fb_token_decoder fb_token_decoder;
fb_status fb_token_decoder_init(fb_token_decoder **out, const fb_tokenizer *t);
fb_status fb_token_decoder_push(fb_token_decoder *d, int32_t id, const char **bytes, size_t *len);
fb_status fb_token_decoder_flush(fb_token_decoder *d, const char **bytes, size_t *len);
void fb_token_decoder_reset(fb_token_decoder *d);
void fb_token_decoder_free(fb_token_decoder *d);

/* Whole sequence: *text is malloc'd (NUL-terminated for convenience; *len
 * excludes the terminator). Out-of-range ids are FB_ERR_INVALID_ARG. */
fb_status fb_tokenizer_decode(const fb_tokenizer *t, const int32_t *ids, size_t n,
                              char **text, size_t *len);

/* Byte-level BPE training with GPT-2 pre-tokenization: the 256 byte tokens,
 * then merges of the most frequent adjacent pair (ties: smallest left id,
 * then smallest right id), then "<|endoftext|>" as the last id. vocab_size
 * counts all of them (>= 257). Writes the flashblock-bpe file to out_path
 * (atomically: temp file + rename). progress (optional) is called now and
 * then with the number of merges done and wanted. */
typedef void (*fb_bpe_progress_fn)(void *user, int merges_done, int merges_wanted);
fb_status fb_tokenizer_train_bpe(const char *data, size_t len, int vocab_size, const char *out_path,
                                 fb_bpe_progress_fn progress, void *user);

#ifdef __cplusplus
}
#endif
#endif /* FLASHBLOCK_TOKENIZER_H */
