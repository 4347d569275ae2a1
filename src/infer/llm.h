/* Inside of the public fb_llm handle (include/flashblock_infer.h). */
#ifndef FB_INFER_LLM_H
#define FB_INFER_LLM_H
#include "flashblock_infer.h"
#include "infer/model_load.h"
#include "model/model.h"

struct fb_llm {
    fb_model *m;
    fb_tokenizer *tok;
    fb_model_format fmt;
    int q8_source;
    fb_weights weights;
};
#endif
