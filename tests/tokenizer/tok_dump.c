/* Helper for the node reference comparison (tests/tokenizer/node/compare.mjs):
 *   tok_dump SPEC --cases FILE.json [--special]   one line of ids per JSON string
 *   tok_dump SPEC --file FILE [--special]         ids of the whole file on one line */
#include "flashblock_tokenizer.h"
#include "tokenizer/tok_internal.h"
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dump(const fb_tokenizer *t, const char *s, size_t n, unsigned flags) {
    int32_t *ids = NULL; size_t k = 0, cap = 0;
    if (fb_tokenizer_encode(t, s, n, flags, &ids, &k, &cap) != FB_OK) {
        fprintf(stderr, "tok_dump: %s\n", fb_last_error());
        return 1;
    }
    for (size_t i = 0; i < k; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
    free(ids);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: tok_dump SPEC --cases FILE.json|--file FILE [--special]\n"); return 2; }
    unsigned flags = (argc > 4 && strcmp(argv[4], "--special") == 0) ? FB_TOK_ALLOW_SPECIAL : 0;
    fb_tokenizer *t = NULL;
    if (fb_tokenizer_load(&t, argv[1]) != FB_OK) { fprintf(stderr, "tok_dump: %s\n", fb_last_error()); return 1; }
    char *d = NULL; size_t n = 0;
    if (fb_tok_read_file(argv[3], &d, &n) != FB_OK) { fprintf(stderr, "tok_dump: %s\n", fb_last_error()); return 1; }
    int rc = 0;
    if (strcmp(argv[2], "--file") == 0) {
        rc = dump(t, d, n, flags);
    } else {
        json_object *root = json_tokener_parse(d);
        if (!root || !json_object_is_type(root, json_type_array)) { fprintf(stderr, "tok_dump: %s: not a JSON array\n", argv[3]); return 1; }
        size_t m = json_object_array_length(root);
        for (size_t i = 0; i < m && !rc; i++) {
            json_object *s = json_object_array_get_idx(root, i);
            rc = dump(t, json_object_get_string(s), (size_t)json_object_get_string_len(s), flags);
        }
        json_object_put(root);
    }
    free(d);
    fb_tokenizer_free(t);
    return rc;
}
