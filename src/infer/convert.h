/*
 * Writing models for other tools:
 *  - GGUF v3 (llama architecture for llama-preset models, gpt2 for
 *    gpt2-preset ones), tensors F32, F16 or Q8_0 (matrices whose rows are a
 *    multiple of 32 long; norms and biases stay F32), with a llama2.c /
 *    SentencePiece vocabulary embedded when one is given;
 *  - llama2.c legacy v0 checkpoints (run.c's format), used by
 *    `bench generate` so that run.c runs exactly the same weights.
 */
#ifndef FB_INFER_CONVERT_H
#define FB_INFER_CONVERT_H
#include "flashblock.h"
#include "io/gguf.h"

/* tokenizer_bin: optional llama2.c tokenizer.bin whose pieces and scores go
 * into tokenizer.ggml.* (NULL: no vocabulary in the file). */
fb_status fb_export_gguf(const char *path, fb_model *m, fb_ggml_type matrix_type, const char *tokenizer_bin);
fb_status fb_export_llama2c(const char *path, fb_model *m);
#endif
