/*
 * flashblock serve: the OpenAI-compatible HTTP server (src/server/,
 * docs/SERVER.md). This file only parses flags; the server is built when
 * libmicrohttpd is found.
 */
#include "cli/args.h"
#include "cli/cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef FB_HAVE_SERVER
#include "server/chat_template.h"
#include "server/server.h"
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage: flashblock serve -m MODEL [-z TOKENIZER] [options]\n"
            "OpenAI-compatible HTTP server: POST /v1/completions, /v1/chat/completions, /tokenize,\n"
            "/detokenize; GET /v1/models, /health, /metrics, and a chat page at / (docs/SERVER.md).\n"
            "  --host H               address to bind (default 127.0.0.1, loopback only)\n"
            "  --port P               TCP port (default 8080; 0 = any free port, printed on stderr)\n"
            "  --parallel N           sequences decoded together (default 4)\n"
            "  --ctx N                context length per sequence (default: the model's)\n"
            "  --kv-mem MIB           KV cache budget in MiB; sequences are preempted (and recomputed)\n"
            "                         when it runs out (default: parallel x ctx tokens)\n"
            "  --kv-block-size N      tokens per KV block (default 16)\n"
            "  --max-batch-tokens N   prompt tokens admitted per engine step (default 512)\n"
            "  --q8                   Q8_0 int8 weights for the matmuls\n"
            "  -t, --threads N        worker threads (default: all cores)\n"
            "  --api-key KEY          require 'Authorization: Bearer KEY' (except / and /health)\n"
            "  --chat-template NAME   chatml|llama2|llama3|mistral|zephyr|phi3|gemma (default: the GGUF's\n"
            "                         template when it is one of these, else chatml)\n"
            "  --alias NAME           model id in the API (default: the model file's name)\n"
            "  --max-queue N          requests waiting for admission before 429 (default 64)\n"
            "  --max-body BYTES       request body limit, 413 beyond (default 8388608)\n"
            "  --grace S              on SIGTERM/SIGINT, seconds the running requests may take to\n"
            "                         finish before they are cancelled (default 10; a second signal: now)\n"
            "  --read-timeout S       a request's headers and body must arrive within S seconds, else\n"
            "                         408 or the connection is closed (default 30)\n"
            "  --quiet                no access log\n"
            "MODEL and TOKENIZER as for 'flashblock generate'.\n");
}

int fb_cmd_serve(int argc, char **argv) {
    const char *cmd = "serve";
#ifndef FB_HAVE_SERVER
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
    (void)argc;
    (void)argv;
    return fb_cli_error("%s: this build has no HTTP server (libmicrohttpd was not found; install libmicrohttpd-dev and rebuild)", cmd);
#else
    fb_server_options o = fb_server_options_default();
    long v = 0;
    double d = 0;
    const char *s;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--q8")) o.q8 = 1;
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(o.model_path = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-z") || !strcmp(a, "--tokenizer")) { if (!(o.tokenizer = fb_arg_value(cmd, argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--host")) { if (!(o.host = fb_arg_value(cmd, argc, argv, &i))) return 2; if (!*o.host) return fb_cli_usage_error(cmd, "--host: empty"); }
        else if (!strcmp(a, "--alias")) { if (!(o.alias = fb_arg_value(cmd, argc, argv, &i))) return 2; if (!*o.alias) return fb_cli_usage_error(cmd, "--alias: empty"); }
        else if (!strcmp(a, "--api-key")) { if (!(o.api_key = fb_arg_value(cmd, argc, argv, &i))) return 2; if (!*o.api_key) return fb_cli_usage_error(cmd, "--api-key: empty"); }
        else if (!strcmp(a, "--chat-template")) {
            if (!(s = fb_arg_value(cmd, argc, argv, &i))) return 2;
            srv_tmpl_kind k;
            if (srv_tmpl_from_name(s, &k)) return fb_cli_usage_error(cmd, "--chat-template: unknown template '%s' (%s)", s, srv_tmpl_list());
            o.chat_template = s;
        }
        else if (!strcmp(a, "--port")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, s, 0, 65535, &v)) return 2; o.port = (int)v; }
        else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, s, 1, 1024, &v)) return 2; o.parallel = (int)v; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, s, 0, 1 << 22, &v)) return 2; o.ctx = (int)v; }
        else if (!strcmp(a, "--kv-mem")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_double(cmd, a, s, 1e-6, 1 << 24, &d)) return 2; o.kv_mem_mib = d; }
        else if (!strcmp(a, "--kv-block-size")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, s, 1, 4096, &v)) return 2; o.kv_block_size = (int)v; }
        else if (!strcmp(a, "--max-batch-tokens")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, s, 1, 1 << 20, &v)) return 2; o.max_batch_tokens = (int)v; }
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, s, 1, 1024, &v)) return 2; o.threads = (int)v; }
        else if (!strcmp(a, "--max-queue")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, s, 1, 1 << 20, &v)) return 2; o.max_queue = (int)v; }
        else if (!strcmp(a, "--grace")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_double(cmd, a, s, 0, 86400, &d)) return 2; o.grace_s = d; }
        else if (!strcmp(a, "--read-timeout")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_double(cmd, a, s, 0.1, 86400, &d)) return 2; o.read_timeout_s = d; }
        else if (!strcmp(a, "--max-body")) { if (!(s = fb_arg_value(cmd, argc, argv, &i)) || !fb_arg_long(cmd, a, s, 1024, 1L << 32, &v)) return 2; o.max_body = (size_t)v; }
        else return fb_cli_usage_error(cmd, "unknown option '%s'", a);
    }
    if (!o.model_path) return fb_cli_usage_error(cmd, "-m MODEL is required");
    return fb_server_run(&o);
#endif
}
