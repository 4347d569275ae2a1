/* Pieces of flashblock serve that need no server: UTF-8 hold-back and
 * sanitising for JSON, the byte buffer, and srv_rng_advance — a sampler
 * seeded with the state after k draws continues the stream exactly, on
 * every sampling path (what a preempted, recomputed choice relies on). */
#include "infer/sampler.h"
#include "server/srv.h"
#include "test_util.h"
#include <stdlib.h>
#include <string.h>

static void test_utf8(void) {
    static const struct { const char *s; size_t complete; } cases[] = {
        {"abc", 3}, {"caf\xC3\xA9", 5}, {"caf\xC3", 3}, {"\xE2\x98", 0}, {"x\xE2\x98\x95", 4}, {"\xF0\x9F\x98", 0},
        {"\xF0\x9F\x98\x80!", 5}, {"\xFF", 1}, {"a\xC3(", 3}, {"", 0}, {"\xED\xA0\x80", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const size_t n = strlen(cases[i].s), got = srv_utf8_complete(cases[i].s, n);
        FB_CHECK(got == cases[i].complete, "complete(case %zu) = %zu, want %zu", i, got, cases[i].complete);
    }
    static const struct { const char *in, *out; } san[] = {
        {"plain", "plain"}, {"caf\xC3\xA9", "caf\xC3\xA9"}, {"a\xFF" "b", "a\xEF\xBF\xBD" "b"},
        {"\xC3(", "\xEF\xBF\xBD("}, {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},   /* overlong */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},            /* surrogate */
        {"end\xE2\x98", "end\xEF\xBF\xBD\xEF\xBF\xBD"},
    };
    for (size_t i = 0; i < sizeof san / sizeof *san; i++) {
        srv_buf b = {0};
        srv_utf8_sanitize(&b, san[i].in, strlen(san[i].in));
        FB_CHECK(b.p && !strcmp(b.p, san[i].out), "sanitize(case %zu) = [%s]", i, b.p ? b.p : "(null)");
        srv_buf_free(&b);
    }
    srv_buf b = {0};
    srv_utf8_sanitize(&b, NULL, 0);
    FB_CHECK(b.len == 0, "sanitize of nothing");
    srv_buf_free(&b);
}

static void test_buf(void) {
    srv_buf b = {0};
    for (int i = 0; i < 1000; i++) srv_buf_printf(&b, "%d,", i);
    srv_buf_put(&b, "\0x", 2);
    FB_CHECK(!b.oom && b.len == 3890 + 2 && !strncmp(b.p, "0,1,2,", 6) && b.p[b.len] == '\0', "buffer: len %zu", b.len);
    srv_buf_free(&b);
    FB_CHECK(b.p == NULL && b.len == 0 && b.cap == 0, "freed buffer is empty");
}

/* Draw k tokens from one sampler, then check that a fresh sampler seeded
 * with srv_rng_advance(seed, k) draws what the first one draws next. */
static void check_resume(fb_sampler_config c, uint64_t seed, int k, const char *what) {
    enum { V = 50, NEXT = 40 };
    c.seed = seed;
    fb_sampler *a = NULL, *b = NULL;
    FB_CHECK(fb_sampler_init(&a, &c, V) == FB_OK, "%s: init", what);
    fb_test_rng rng;
    fb_test_rng_seed(&rng, 99);
    float logits[NEXT + 64][V], tmp[V];
    for (int t = 0; t < k + NEXT; t++) fb_test_fill_normal(&rng, logits[t], V, 2.0f);
    for (int t = 0; t < k; t++) { memcpy(tmp, logits[t], sizeof tmp); (void)fb_sampler_sample(a, tmp, NULL, 0); }
    c.seed = srv_rng_advance(seed, k);
    FB_CHECK(fb_sampler_init(&b, &c, V) == FB_OK, "%s: init", what);
    int same = 1;
    for (int t = k; t < k + NEXT; t++) {
        float x[V], y[V];
        memcpy(x, logits[t], sizeof x);
        memcpy(y, logits[t], sizeof y);
        same &= fb_sampler_sample(a, x, NULL, 0) == fb_sampler_sample(b, y, NULL, 0);
    }
    FB_CHECK(same, "%s: seed %llu after %d draws: the resumed sampler draws differently", what, (unsigned long long)seed, k);
    fb_sampler_free(a);
    fb_sampler_free(b);
}

static void test_rng_advance(void) {
    FB_CHECK(srv_rng_advance(123, 0) == 123, "no draws keeps the seed");
    FB_CHECK(srv_rng_advance(0, 0) == 0x9E3779B97F4A7C15ull, "seed 0 is the sampler's constant");
    fb_sampler_config c = fb_sampler_config_default();
    const uint64_t seeds[] = {0, 1, 42, 0xDEADBEEFCAFEull};
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++)
        for (int k = 0; k <= 64; k += 16) {
            c = fb_sampler_config_default();
            check_resume(c, seeds[i], k, "temperature 1");
            c.top_k = 5; check_resume(c, seeds[i], k, "top_k");
            c.top_k = 0; c.top_p = 0.8f; check_resume(c, seeds[i], k, "top_p");
            c.top_p = 1.0f; c.min_p = 0.2f; check_resume(c, seeds[i], k, "min_p");
            c.temperature = 0.7f; c.top_k = 10; c.top_p = 0.9f; c.min_p = 0.05f; check_resume(c, seeds[i], k, "all filters");
        }
}

int main(void) {
    test_utf8();
    test_buf();
    test_rng_advance();
    return fb_test_finish("test_server_util");
}
