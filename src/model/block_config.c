/* Block configuration: presets, name parsing and validation. Every error
 * names the offending field. */
#include "core/error.h"
#include "flashblock.h"
#include <limits.h>
#include <math.h>
#include <string.h>

fb_block_config fb_block_config_gpt2(int d_model, int n_heads) {
    fb_block_config c = {0};
    c.d_model = d_model;
    c.n_heads = n_heads;
    c.n_kv_heads = n_heads;
    c.head_dim = n_heads > 0 ? d_model / n_heads : 0;
    c.d_ff = d_model > 0 && d_model <= INT_MAX / 4 ? 4 * d_model : 0;   /* 0: refused by validation */
    c.norm = FB_NORM_LAYERNORM;
    c.norm_eps = 1e-5f;
    c.mlp = FB_MLP_GELU_TANH;
    c.positions = FB_POS_LEARNED;
    c.rope_theta = 10000.0f;
    c.bias = 1;
    return c;
}

fb_block_config fb_block_config_llama(int d_model, int n_heads, int n_kv_heads, int d_ff) {
    fb_block_config c = {0};
    c.d_model = d_model;
    c.n_heads = n_heads;
    c.n_kv_heads = n_kv_heads;
    c.head_dim = n_heads > 0 ? d_model / n_heads : 0;
    c.d_ff = d_ff;
    c.norm = FB_NORM_RMSNORM;
    c.norm_eps = 1e-5f;
    c.mlp = FB_MLP_SWIGLU;
    c.positions = FB_POS_ROPE;
    c.rope_theta = 10000.0f;
    c.bias = 0;
    return c;
}

fb_status fb_norm_from_name(const char *name, fb_norm_kind *out) {
    if (!name || !out) return fb_fail(FB_ERR_INVALID_ARG, "norm: NULL argument");
    if (strcmp(name, "layernorm") == 0) *out = FB_NORM_LAYERNORM;
    else if (strcmp(name, "rmsnorm") == 0) *out = FB_NORM_RMSNORM;
    else return fb_fail(FB_ERR_CONFIG, "norm: unknown name '%s' (layernorm | rmsnorm)", name);
    return FB_OK;
}

fb_status fb_mlp_from_name(const char *name, fb_mlp_kind *out) {
    if (!name || !out) return fb_fail(FB_ERR_INVALID_ARG, "mlp: NULL argument");
    if (strcmp(name, "gelu_tanh") == 0) *out = FB_MLP_GELU_TANH;
    else if (strcmp(name, "gelu") == 0) *out = FB_MLP_GELU;
    else if (strcmp(name, "swiglu") == 0) *out = FB_MLP_SWIGLU;
    else return fb_fail(FB_ERR_CONFIG, "mlp: unknown name '%s' (gelu_tanh | gelu | swiglu)", name);
    return FB_OK;
}

fb_status fb_pos_from_name(const char *name, fb_pos_kind *out) {
    if (!name || !out) return fb_fail(FB_ERR_INVALID_ARG, "positions: NULL argument");
    if (strcmp(name, "learned") == 0) *out = FB_POS_LEARNED;
    else if (strcmp(name, "rope") == 0) *out = FB_POS_ROPE;
    else return fb_fail(FB_ERR_CONFIG, "positions: unknown name '%s' (learned | rope)", name);
    return FB_OK;
}

fb_status fb_block_config_validate(const fb_block_config *c) {
    if (!c) return fb_fail(FB_ERR_INVALID_ARG, "block config: NULL pointer");
    if (c->d_model <= 0) return fb_fail(FB_ERR_CONFIG, "d_model: must be > 0 (got %d)", c->d_model);
    if (c->n_heads <= 0) return fb_fail(FB_ERR_CONFIG, "n_heads: must be > 0 (got %d)", c->n_heads);
    if (c->d_model % c->n_heads)
        return fb_fail(FB_ERR_CONFIG, "n_heads: d_model %d is not divisible by n_heads %d", c->d_model, c->n_heads);
    if (c->n_kv_heads <= 0) return fb_fail(FB_ERR_CONFIG, "n_kv_heads: must be > 0 (got %d)", c->n_kv_heads);
    if (c->n_heads % c->n_kv_heads)
        return fb_fail(FB_ERR_CONFIG, "n_kv_heads: n_heads %d is not a multiple of n_kv_heads %d", c->n_heads,
                       c->n_kv_heads);
    if (c->head_dim != 0 && c->head_dim != c->d_model / c->n_heads)
        return fb_fail(FB_ERR_CONFIG, "head_dim: %d != d_model / n_heads = %d", c->head_dim, c->d_model / c->n_heads);
    if (c->d_ff <= 0) return fb_fail(FB_ERR_CONFIG, "d_ff: must be > 0 (got %d)", c->d_ff);
    if (c->norm != FB_NORM_LAYERNORM && c->norm != FB_NORM_RMSNORM)
        return fb_fail(FB_ERR_CONFIG, "norm: unknown kind %d", (int)c->norm);
    if (!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps))
        return fb_fail(FB_ERR_CONFIG, "norm_eps: must be a finite number > 0");
    if (c->mlp != FB_MLP_GELU_TANH && c->mlp != FB_MLP_GELU && c->mlp != FB_MLP_SWIGLU)
        return fb_fail(FB_ERR_CONFIG, "mlp: unknown kind %d", (int)c->mlp);
    if (c->positions != FB_POS_LEARNED && c->positions != FB_POS_ROPE)
        return fb_fail(FB_ERR_CONFIG, "positions: unknown kind %d", (int)c->positions);
    if (c->positions == FB_POS_ROPE) {
        if ((c->d_model / c->n_heads) % 2)
            return fb_fail(FB_ERR_CONFIG, "head_dim: RoPE needs an even head_dim (got %d)", c->d_model / c->n_heads);
        if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta))
            return fb_fail(FB_ERR_CONFIG, "rope_theta: must be a finite number > 0");
    }
    if (c->bias != 0 && c->bias != 1) return fb_fail(FB_ERR_CONFIG, "bias: must be 0 or 1 (got %d)", c->bias);
    return FB_OK;
}
