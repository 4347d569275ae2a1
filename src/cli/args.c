#include "cli/args.h"
#include "cli/cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int fb_arg_long(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fb_cli_usage_error(cmd, "%s: expected an integer in [%ld, %ld], got '%s'", flag, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int fb_arg_double(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fb_cli_usage_error(cmd, "%s: expected a number in [%g, %g], got '%s'", flag, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int fb_arg_long_list(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out, int max, int *n) {
    char buf[1024];
    if (strlen(s) >= sizeof buf) {
        fb_cli_usage_error(cmd, "%s: list too long", flag);
        return 0;
    }
    strcpy(buf, s);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n >= max) {
            fb_cli_usage_error(cmd, "%s: at most %d values", flag, max);
            return 0;
        }
        if (!fb_arg_long(cmd, flag, tok, lo, hi, &out[*n])) return 0;
        (*n)++;
    }
    if (*n == 0) {
        fb_cli_usage_error(cmd, "%s: empty list", flag);
        return 0;
    }
    return 1;
}

const char *fb_arg_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fb_cli_usage_error(cmd, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}
