/* Strict flag-value parsing for the CLI: a bad value is a usage error that
 * names the flag, never a silent default. */
#ifndef FB_CLI_ARGS_H
#define FB_CLI_ARGS_H
#include <stdint.h>

/* Each returns 1 on success; on failure prints a usage line for cmd and
 * returns 0. */
int fb_arg_long(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out);
int fb_arg_double(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out);
/* Comma-separated integers, at most max of them. */
int fb_arg_long_list(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out, int max, int *n);
/* Value of a flag that needs one: argv[*i + 1], advancing *i; NULL + message if missing. */
const char *fb_arg_value(const char *cmd, int argc, char **argv, int *i);
#endif
