/* fb_llm: a model file loaded for inference, with its tokenizer (public
 * API in include/flashblock_infer.h). */
#include "core/error.h"
#include "flashblock_infer.h"
#include "infer/llm.h"
#include "infer/model_load.h"
#include <stdlib.h>

fb_status fb_llm_load(fb_llm **out, const char *model_path, const char *tokenizer) {
    return fb_llm_load_ex(out, model_path, tokenizer, NULL);
}

fb_status fb_llm_load_ex(fb_llm **out, const char *model_path, const char *tokenizer, const fb_llm_load_options *opt) {
    if (!out || !model_path) return fb_fail(FB_ERR_INVALID_ARG, "fb_llm_load: NULL argument");
    *out = NULL;
    const fb_weights w = opt ? opt->weights : FB_WEIGHTS_F32;
    if (w != FB_WEIGHTS_F32 && w != FB_WEIGHTS_Q8_0)
        return fb_fail(FB_ERR_INVALID_ARG, "fb_llm_load: weights %d is neither FB_WEIGHTS_F32 nor FB_WEIGHTS_Q8_0", (int)w);
    fb_llm *l = calloc(1, sizeof *l);
    if (!l) return fb_fail(FB_ERR_OOM, "fb_llm_load: out of memory");
    l->weights = w;
    fb_tokenizer *own = NULL;
    fb_status s = fb_model_load_weights(model_path, w == FB_WEIGHTS_Q8_0 ? FB_MODEL_Q8_0 : FB_MODEL_F32, &l->m, &own, &l->fmt,
                                        &l->q8_source);
    if (s == FB_OK && tokenizer) {
        s = fb_tokenizer_load_for_model(&l->tok, tokenizer, l->m->cfg.vocab_size);
        if (s != FB_OK) s = fb_fail(s, "tokenizer %s: %s", tokenizer, fb_last_error());
    } else if (s == FB_OK && own) {
        l->tok = own;
        own = NULL;
    } else if (s == FB_OK) {
        s = fb_fail(FB_ERR_INVALID_ARG, "%s (%s) carries no tokenizer: give one (e.g. tokenizer.bin or gpt2:DIR)", model_path,
                    fb_model_format_name(l->fmt));
    }
    fb_tokenizer_free(own);
    if (s == FB_OK && fb_tokenizer_vocab_size(l->tok) > l->m->cfg.vocab_size)
        s = fb_fail(FB_ERR_SHAPE, "tokenizer has %d tokens but the model only %d", fb_tokenizer_vocab_size(l->tok),
                    l->m->cfg.vocab_size);
    if (s != FB_OK) { fb_llm_free(l); return s; }
    *out = l;
    return FB_OK;
}

void fb_llm_free(fb_llm *l) {
    if (!l) return;
    fb_model_free(l->m);
    fb_tokenizer_free(l->tok);
    free(l);
}

const fb_model_config *fb_llm_config(const fb_llm *l) { return l ? &l->m->cfg : NULL; }
const fb_tokenizer *fb_llm_tokenizer(const fb_llm *l) { return l ? l->tok : NULL; }
const char *fb_llm_format(const fb_llm *l) { return l ? fb_model_format_name(l->fmt) : NULL; }
int fb_llm_quantized_source(const fb_llm *l) { return l ? l->q8_source : 0; }
fb_weights fb_llm_weights(const fb_llm *l) { return l ? l->weights : FB_WEIGHTS_F32; }
size_t fb_llm_weight_bytes(const fb_llm *l) { return l ? fb_model_weight_bytes(l->m) : 0; }
