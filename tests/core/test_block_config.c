/* Block configuration validation: each invalid field is rejected with a
 * message naming it; presets validate; bad API arguments return errors. */
#include "flashblock.h"
#include "test_util.h"
#include <string.h>

static void expect_error(fb_block_config c, const char *field) {
    fb_block *b = NULL;
    fb_status s = fb_block_init(&b, &c);
    FB_CHECK(s == FB_ERR_CONFIG, "expected FB_ERR_CONFIG for %s, got %d", field, (int)s);
    FB_CHECK(b == NULL, "block returned for invalid %s", field);
    FB_CHECK(strstr(fb_last_error(), field) != NULL, "message '%s' does not name %s", fb_last_error(), field);
}

int main(void) {
    fb_block_config g = fb_block_config_gpt2(768, 12), l = fb_block_config_llama(288, 6, 2, 768);
    FB_CHECK(fb_block_config_validate(&g) == FB_OK, "gpt2 preset invalid: %s", fb_last_error());
    FB_CHECK(fb_block_config_validate(&l) == FB_OK, "llama preset invalid: %s", fb_last_error());
    FB_CHECK(g.norm == FB_NORM_LAYERNORM && g.bias && g.mlp == FB_MLP_GELU_TANH && g.positions == FB_POS_LEARNED &&
                 g.d_ff == 3072, "gpt2 preset fields");
    FB_CHECK(l.norm == FB_NORM_RMSNORM && !l.bias && l.mlp == FB_MLP_SWIGLU && l.positions == FB_POS_ROPE &&
                 l.n_kv_heads == 2, "llama preset fields");
    fb_block_config c;
    c = g; c.d_model = 0; expect_error(c, "d_model");
    c = g; c.n_heads = 0; expect_error(c, "n_heads");
    c = g; c.n_heads = 7; expect_error(c, "n_heads");
    c = g; c.n_kv_heads = 5; expect_error(c, "n_kv_heads");
    c = g; c.n_kv_heads = 0; expect_error(c, "n_kv_heads");
    c = g; c.head_dim = 32; expect_error(c, "head_dim");
    c = g; c.d_ff = 0; expect_error(c, "d_ff");
    c = g; c.norm = (fb_norm_kind)7; expect_error(c, "norm");
    c = g; c.norm_eps = 0; expect_error(c, "norm_eps");
    c = g; c.mlp = (fb_mlp_kind)9; expect_error(c, "mlp");
    c = g; c.positions = (fb_pos_kind)3; expect_error(c, "positions");
    c = l; c.rope_theta = -1; expect_error(c, "rope_theta");
    c = fb_block_config_llama(30, 6, 6, 64); expect_error(c, "head_dim");   /* odd head_dim with RoPE */
    c = g; c.bias = 2; expect_error(c, "bias");
    fb_norm_kind nk; fb_mlp_kind mk; fb_pos_kind pk;
    FB_CHECK(fb_norm_from_name("rmsnorm", &nk) == FB_OK && nk == FB_NORM_RMSNORM, "norm name");
    FB_CHECK(fb_norm_from_name("batchnorm", &nk) == FB_ERR_CONFIG && strstr(fb_last_error(), "norm"), "bad norm name");
    FB_CHECK(fb_mlp_from_name("swiglu", &mk) == FB_OK && mk == FB_MLP_SWIGLU, "mlp name");
    FB_CHECK(fb_mlp_from_name("relu", &mk) == FB_ERR_CONFIG && strstr(fb_last_error(), "mlp"), "bad mlp name");
    FB_CHECK(fb_pos_from_name("rope", &pk) == FB_OK && pk == FB_POS_ROPE, "pos name");
    FB_CHECK(fb_pos_from_name("alibi", &pk) == FB_ERR_CONFIG && strstr(fb_last_error(), "positions"), "bad pos name");
    /* API misuse */
    FB_CHECK(fb_block_init(NULL, &g) == FB_ERR_INVALID_ARG, "NULL out");
    fb_block *b = NULL;
    FB_CHECK(fb_block_init(&b, NULL) == FB_ERR_INVALID_ARG, "NULL config");
    FB_CHECK(fb_block_init(&b, &g) == FB_OK, "init: %s", fb_last_error());
    float x[768], y[768];
    FB_CHECK(fb_block_forward(b, y, NULL, 1, 1, 0) == FB_ERR_INVALID_ARG, "NULL x");
    FB_CHECK(fb_block_forward(b, y, x, 0, 1, 0) == FB_ERR_SHAPE, "B=0");
    FB_CHECK(fb_block_forward(b, y, x, 1, -3, 0) == FB_ERR_SHAPE, "T<0");
    FB_CHECK(fb_block_forward(b, x, x, 1, 1, 0) == FB_ERR_INVALID_ARG, "aliasing");
    fb_block_free(b);
    fb_block_free(NULL);
    return fb_test_finish("test_block_config");
}
