/*
 * Load a model from any supported file into an fb_model (fp32, or Q8_0
 * matrices: fb_model_load_weights), detecting the
 * format from its first bytes:
 *   "GGUF"                  GGUF v2/v3, llama architecture (F32/F16/BF16/Q8_0)
 *   u64 len + '{'           safetensors checkpoint written by flashblock train
 *   int32 20240326          llm.c GPT-2 checkpoint (v3 fp32, v5 bf16)
 *   "ak42"                  llama2.c export v1 (fp32) / v2 (int8)
 *   anything else           llama2.c legacy v0 (run.c)
 * Also yields the model's tokenizer when the file names or embeds one
 * (checkpoint metadata, GGUF vocabulary); llama2.c and llm.c files need one
 * given with -z.
 */
#ifndef FB_INFER_MODEL_LOAD_H
#define FB_INFER_MODEL_LOAD_H
#include "flashblock.h"
#include "flashblock_tokenizer.h"
#include "model/model.h"

typedef enum fb_model_format {
    FB_FMT_SAFETENSORS, FB_FMT_GGUF, FB_FMT_LLMC, FB_FMT_LLAMA2C
} fb_model_format;

/* *tok is set when the file carries its tokenizer, else NULL. q8_source is
 * set when the weights were stored as Q8_0 (GGUF) or int8 (llama2.c v2). */
fb_status fb_model_load_any(const char *path, fb_model **m, fb_tokenizer **tok, fb_model_format *fmt, int *q8_source);
/* The same with the weights held as w (model.h). FB_MODEL_Q8_0: each
 * matrix goes straight from the file into the model's Q8_0 store — Q8_0
 * GGUF blocks copied as they are, every other type (f32, f16, bf16,
 * llama2.c int8) quantized row by row through one row buffer per thread —
 * and is never held as fp32; each chunk of rows read has its file pages
 * dropped at once. */
fb_status fb_model_load_weights(const char *path, fb_model_weights w, fb_model **m, fb_tokenizer **tok,
                                fb_model_format *fmt, int *q8_source);
const char *fb_model_format_name(fb_model_format f);

/* The tokenizer named on a command line (-z) for a model of vocab_size
 * tokens: "byte", "gpt2:DIR", "llama2c:FILE", or a bare file — a trained
 * flashblock vocabulary (its "flashblock-bpe" header) or else a llama2.c
 * tokenizer.bin read for exactly vocab_size tokens, as run.c does. */
fb_status fb_tokenizer_load_for_model(fb_tokenizer **out, const char *spec, int vocab_size);
#endif
