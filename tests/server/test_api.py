"""flashblock serve, the API on loopback: greedy parity with `flashblock
generate`, the OpenAI shapes (plain and streamed), stop strings, logprobs,
n, penalties, tokenize/detokenize, models, every error status, /metrics,
the embedded page, and an idle server using no CPU."""
import http.client
import json
import subprocess
import sys
import time

from harness import Server, check, data_paths, error_ok, finish

fb, data_dir = sys.argv[1], sys.argv[2]
model, tok = data_paths(data_dir)
PROMPT = "Lily wanted to"


S = Server(fb, model, tok, "--parallel", "4", "--max-body", "65536")
try:
    # ---- greedy /v1/completions == flashblock generate (-n N = N - prompt + 1 tokens) ----
    st, _, t = S.post("/tokenize", {"content": PROMPT, "add_special": True})
    check(st == 200 and t["count"] == len(t["tokens"]) and t["tokens"][0] == 1, "tokenize: %s %s" % (st, t))
    n_prompt = t["count"]
    gen = subprocess.run([fb, "generate", "-m", model, "-z", tok, "-p", PROMPT, "-n", "256", "--temp", "0", "--quiet"],
                         capture_output=True, check=True).stdout.decode()
    want = gen[len(PROMPT):].rstrip("\n")
    st, h, r = S.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 256 - n_prompt + 1, "temperature": 0})
    check(st == 200 and h.get("content-type") == "application/json", "completions: %s %s" % (st, h))
    check(r["object"] == "text_completion" and r["id"].startswith("cmpl-") and r["model"] == "stories260K.bin", "shape: %s" % r)
    c0 = r["choices"][0]
    check(c0["text"] == want, "greedy text differs from generate:\n%r\n%r" % (c0["text"], want))
    check(c0["index"] == 0 and c0["logprobs"] is None and c0["finish_reason"] in ("stop", "length"), "choice: %s" % c0)
    u = r["usage"]
    check(u["prompt_tokens"] == n_prompt and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], "usage: %s" % u)
    check(c0["finish_reason"] != "length" or u["completion_tokens"] == 256 - n_prompt + 1, "completion tokens: %s" % u)
    check(all(k in r["timings"] for k in ("prompt_n", "prompt_ms", "predicted_n", "predicted_ms")), "timings: %s" % r.get("timings"))
    # the same prompt as token ids
    st, _, r2 = S.post("/v1/completions", {"prompt": t["tokens"], "max_tokens": 40, "temperature": 0})
    check(st == 200 and want.startswith(r2["choices"][0]["text"]) and r2["usage"]["completion_tokens"] == 40,
          "token-id prompt: %s" % r2)
    # default max_tokens is 16 (OpenAI's)
    st, _, r3 = S.post("/v1/completions", {"prompt": PROMPT, "temperature": 0})
    check(st == 200 and r3["usage"]["completion_tokens"] == 16 and r3["choices"][0]["finish_reason"] == "length", "default max_tokens: %s" % r3)

    # ---- streaming /v1/completions: chunk shapes, [DONE], same text ----
    body = {"prompt": PROMPT, "max_tokens": 60, "temperature": 0.9, "seed": 11}
    st, _, plain = S.post("/v1/completions", body)
    st, h, ev, raw = S.stream("/v1/completions", dict(body, stream=True))
    check(st == 200 and h.get("content-type") == "text/event-stream", "stream headers: %s %s" % (st, h))
    check(ev and ev[-1] == "[DONE]" and raw.endswith("data: [DONE]\n\n"), "stream does not end with [DONE]: %r" % raw[-200:])
    chunks = ev[:-1]
    check(len(chunks) > 5, "only %d chunks" % len(chunks))
    check(all(set(c) >= {"id", "object", "created", "model", "choices"} and c["object"] == "text_completion" and
              c["id"] == chunks[0]["id"] for c in chunks), "chunk keys/ids: %s" % chunks[:2])
    check(all(len(c["choices"]) == 1 and set(c["choices"][0]) == {"index", "text", "logprobs", "finish_reason"}
              for c in chunks), "chunk choice keys: %s" % chunks[0])
    check(all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]) and chunks[-1]["choices"][0]["finish_reason"] == "length",
          "finish_reason only on the last chunk: %s" % [c["choices"][0]["finish_reason"] for c in chunks])
    check("".join(c["choices"][0]["text"] for c in chunks) == plain["choices"][0]["text"], "streamed text != plain text")
    check(all("usage" not in c for c in chunks), "usage in chunks without include_usage")

    # ---- chat, plain and streamed ----
    msgs = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Tell me about Lily."}]
    st, _, cr = S.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 30, "temperature": 0})
    check(st == 200 and cr["object"] == "chat.completion" and cr["id"].startswith("chatcmpl-"), "chat: %s" % cr)
    m = cr["choices"][0]
    check(m["message"]["role"] == "assistant" and isinstance(m["message"]["content"], str) and m["message"]["content"],
          "chat message: %s" % m)
    check(m["finish_reason"] in ("stop", "length") and "usage" in cr and "timings" in cr, "chat fields: %s" % cr)
    st, _, ev, raw = S.stream("/v1/chat/completions", {"messages": msgs, "max_tokens": 30, "temperature": 0, "stream": True,
                                                       "stream_options": {"include_usage": True}})
    check(ev[-1] == "[DONE]", "chat stream end")
    chunks = ev[:-1]
    check(all(c["object"] == "chat.completion.chunk" for c in chunks), "chat chunk object")
    check(chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}, "first delta: %s" % chunks[0])
    fin = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    check(len(fin) == 1 and fin[0]["choices"][0]["delta"] == {} and fin[0]["choices"][0]["finish_reason"] == m["finish_reason"],
          "finish chunk: %s" % fin)
    mids = [c for c in chunks[1:] if c["choices"] and not c["choices"][0]["finish_reason"]]
    check(all(set(c["choices"][0]["delta"]) == {"content"} for c in mids), "middle deltas carry only content")
    check("".join(c["choices"][0]["delta"]["content"] for c in mids) == m["message"]["content"], "streamed chat text != plain")
    check(chunks[-1]["choices"] == [] and chunks[-1]["usage"] == cr["usage"], "usage chunk: %s" % chunks[-1])
    check(all(c.get("usage", "absent") is None for c in chunks[:-1]), "usage: null on every other chunk")
    # content as text parts
    st, _, cp = S.post("/v1/chat/completions", {"messages": [{"role": "system", "content": [{"type": "text", "text": "You tell stories."}]},
                                                             {"role": "user", "content": [{"type": "text", "text": "Tell me about "},
                                                                                          {"type": "text", "text": "Lily."}]}],
                                                "max_tokens": 30, "temperature": 0})
    check(st == 200 and cp["choices"][0]["message"]["content"] == m["message"]["content"], "text parts: %s" % cp)

    # ---- stop strings: trimmed, finish "stop", also across tokens and while streaming ----
    for stop in ("a big box", ["zzz", "inside"], " w"):
        first = stop if isinstance(stop, str) else stop[1]
        base = {"prompt": PROMPT, "max_tokens": 80, "temperature": 0, "stop": stop}
        st, _, r = S.post("/v1/completions", base)
        check(first in want, "stop %r not in the text" % first)
        check(st == 200 and r["choices"][0]["text"] == want[:want.index(first)] and r["choices"][0]["finish_reason"] == "stop",
              "stop %r: %s" % (stop, r["choices"][0]))
        st, _, ev, _ = S.stream("/v1/completions", dict(base, stream=True))
        text = "".join(c["choices"][0]["text"] for c in ev[:-1])
        check(text == want[:want.index(first)], "streamed stop %r: %r" % (stop, text))
        check(ev[-2]["choices"][0]["finish_reason"] == "stop", "streamed stop finish: %s" % ev[-2])

    # ---- logprobs ----
    st, _, r = S.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 12, "temperature": 0, "logprobs": 3})
    lp = r["choices"][0]["logprobs"]
    check(st == 200 and len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"]) == 12,
          "completions logprobs lengths: %s" % lp)
    check(all(x <= 0 for x in lp["token_logprobs"]), "logprobs must be <= 0")
    check(all(len(d) <= 3 and d for d in lp["top_logprobs"]), "top_logprobs sizes")
    # greedy: the chosen token is the most probable one, including the first
    for i, d in enumerate(lp["top_logprobs"]):
        best = max(d.values())
        check(abs(lp["token_logprobs"][i] - best) < 1e-5, "token %d: logprob %g but the top one is %g" % (i, lp["token_logprobs"][i], best))
    check(lp["text_offset"] == sorted(lp["text_offset"]) and lp["text_offset"][0] == 0, "text offsets: %s" % lp["text_offset"])
    check("".join(lp["tokens"]).replace(" ", "") == r["choices"][0]["text"].replace(" ", ""), "tokens spell the text")
    st, _, r = S.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 6, "temperature": 0, "logprobs": True, "top_logprobs": 2})
    content = r["choices"][0]["logprobs"]["content"]
    check(st == 200 and len(content) == 6, "chat logprobs: %s" % r)
    check(all(set(e) >= {"token", "logprob", "bytes", "top_logprobs"} and len(e["top_logprobs"]) == 2 and
              e["top_logprobs"][0]["token"] == e["token"] for e in content), "chat logprob entries: %s" % content[:2])
    check(all(bytes(e["bytes"]).decode("utf-8", "replace") == e["token"] for e in content), "bytes spell the token")
    st, _, ev, _ = S.stream("/v1/completions", {"prompt": PROMPT, "max_tokens": 8, "temperature": 0, "logprobs": 1, "stream": True})
    toks = [t for c in ev[:-1] if c["choices"][0]["logprobs"] for t in c["choices"][0]["logprobs"]["tokens"]]
    check(len(toks) == 8, "streamed logprobs carry 8 tokens: %s" % toks)

    # ---- n choices: the first equals n = 1 with the same seed ----
    body = {"prompt": PROMPT, "max_tokens": 20, "temperature": 1.0, "seed": 5}
    st, _, one = S.post("/v1/completions", body)
    st, _, three = S.post("/v1/completions", dict(body, n=3))
    check(st == 200 and [c["index"] for c in three["choices"]] == [0, 1, 2], "n=3 indices: %s" % three)
    check(three["choices"][0]["text"] == one["choices"][0]["text"], "choice 0 of n=3 != n=1 with the same seed")
    check(len({c["text"] for c in three["choices"]}) > 1, "n=3 gave three identical samples: %s" % three["choices"])
    check(three["usage"]["completion_tokens"] == 60 and three["usage"]["prompt_tokens"] == one["usage"]["prompt_tokens"], "n=3 usage")
    st, _, ev, _ = S.stream("/v1/completions", dict(body, n=3, stream=True))
    got = ["".join(c["choices"][0]["text"] for c in ev[:-1] if c["choices"][0]["index"] == i) for i in range(3)]
    check(got == [c["text"] for c in three["choices"]], "streamed n=3 differs from plain")
    st, _, _ = S.post("/v1/completions", dict(body, n=5))
    check(st == 400, "n above --parallel must be 400, got %s" % st)

    # ---- penalties change greedy text; seeds reproduce ----
    base = {"prompt": PROMPT, "max_tokens": 60, "temperature": 0}
    for k in ("presence_penalty", "frequency_penalty"):
        st, _, r = S.post("/v1/completions", dict(base, **{k: 1.5}))
        check(st == 200 and r["choices"][0]["text"] != want[:len(r["choices"][0]["text"])], "%s had no effect" % k)
    body = {"prompt": PROMPT, "max_tokens": 40, "temperature": 0.8, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": 1234}
    a = S.post("/v1/completions", body)[2]["choices"][0]["text"]
    b = S.post("/v1/completions", body)[2]["choices"][0]["text"]
    c = S.post("/v1/completions", dict(body, seed=1235))[2]["choices"][0]["text"]
    check(a == b and a != c, "seeded sampling: %r %r %r" % (a, b, c))

    # ---- errors ----
    st, _, e = S.post("/v1/completions", None, raw=b'{"prompt": "x",')
    error_ok(st, e, 400, "invalid_json", "truncated JSON")
    st, _, e = S.post("/v1/completions", None, raw=b'{"prompt": "x"} trailing')
    error_ok(st, e, 400, "invalid_json", "trailing data")
    st, _, e = S.post("/v1/completions", None, raw=b'[1, 2]')
    error_ok(st, e, 400, "invalid_json", "not an object")
    for bad, field in (({"prompt": "x", "max_tokens": "5"}, "max_tokens"), ({"prompt": "x", "temperature": "hot"}, "temperature"),
                       ({"prompt": "x", "stop": 5}, "stop"), ({"prompt": 5}, "prompt"), ({"prompt": "x", "stream": "yes"}, "stream"),
                       ({"prompt": "x", "temperature": 3}, "temperature"), ({"prompt": "x", "max_tokens": 2.5}, "max_tokens"),
                       ({"prompt": [1, 99999]}, "prompt"), ({"max_tokens": 3}, "prompt")):
        st, _, e = S.post("/v1/completions", bad)
        err = error_ok(st, e, 400, None, "wrong type %s" % bad)
        check(err.get("param") == field and field in err.get("message", ""), "error names %s: %s" % (field, err))
    st, _, e = S.post("/v1/chat/completions", {"messages": "hi"})
    error_ok(st, e, 400, None, "messages not an array")
    st, _, e = S.post("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "hi"}]})
    error_ok(st, e, 400, None, "unknown role")
    long_prompt = "Once upon a time " * 200
    n_long = S.post("/tokenize", {"content": long_prompt, "add_special": True})[2]["count"]
    st, _, e = S.post("/v1/completions", {"prompt": long_prompt})
    err = error_ok(st, e, 400, "context_length_exceeded", "long prompt")
    check("512" in err.get("message", "") and str(n_long) in err.get("message", ""), "context error names both numbers: %s" % err)
    st, _, e = S.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 600})
    err = error_ok(st, e, 400, "context_length_exceeded", "prompt + max_tokens")
    check("512" in err.get("message", "") and str(600 + n_prompt) in err.get("message", ""), "numbers: %s" % err)
    st, _, e = S.post("/v1/completions", {"prompt": PROMPT, "model": "gpt-4"})
    error_ok(st, e, 404, "model_not_found", "unknown model")
    st, _, e = S.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 2, "model": "stories260K.bin"})
    check(st == 200, "the served model's id is accepted: %s" % st)
    st, _, out = S.request("GET", "/v1/nothing")
    error_ok(st, json.loads(out), 404, None, "unknown route")
    st, _, out = S.request("GET", "/v1/models/nope")
    error_ok(st, json.loads(out), 404, "model_not_found", "unknown model id")
    st, h, out = S.request("GET", "/v1/completions")
    error_ok(st, json.loads(out), 405, None, "GET on a POST route")
    check("POST" in h.get("allow", ""), "405 has Allow: %s" % h)
    big = {"prompt": "x" * 70000}
    st, _, e = S.post("/v1/completions", big)
    error_ok(st, e, 413, None, "body over --max-body (Content-Length)")
    c = S.conn()   # the same without Content-Length: chunked upload
    c.request("POST", "/v1/completions", body=iter([b'{"prompt": "', b"x" * 40000, b"x" * 40000, b'"}']),
              headers={"Content-Type": "application/json"}, encode_chunked=True)
    resp = c.getresponse()
    check(resp.status == 413, "chunked body over --max-body: %s" % resp.status)
    resp.read()
    c.close()
    st, _, e = S.post("/v1/completions", {"prompt": "x" * 1000, "max_tokens": 1})
    check(st in (200, 400), "a body under the limit is read: %s" % st)

    # ---- tokenize / detokenize / models ----
    st, _, d = S.post("/detokenize", {"tokens": t["tokens"]})
    check(st == 200 and d["content"] == PROMPT, "detokenize: %s" % d)
    st, _, p = S.post("/tokenize", {"content": PROMPT, "with_pieces": True})
    check(st == 200 and all(set(x) == {"id", "piece"} for x in p["tokens"]) and p["tokens"][0]["id"] != 1, "pieces: %s" % p)
    # non-ASCII text goes through byte pieces and comes back as valid UTF-8
    uni = "Caf\u00e9 \u2615 na\u00efve"
    st, _, t8 = S.post("/tokenize", {"content": uni, "add_special": True})
    st2, _, d8 = S.post("/detokenize", {"tokens": t8["tokens"]})
    check(st == 200 and st2 == 200 and d8["content"] == uni, "UTF-8 round trip: %s" % d8)
    st, _, r8 = S.post("/v1/completions", {"prompt": uni, "max_tokens": 20, "seed": 3, "logprobs": 1})
    check(st == 200 and isinstance(r8["choices"][0]["text"], str), "UTF-8 prompt: %s %s" % (st, r8))
    st, _, e = S.post("/detokenize", {"tokens": [1, -3]})
    error_ok(st, e, 400, None, "bad token id")
    st, _, out = S.request("GET", "/v1/models")
    ms = json.loads(out)
    check(st == 200 and ms["object"] == "list" and ms["data"][0]["id"] == "stories260K.bin" and ms["data"][0]["object"] == "model",
          "models: %s" % ms)
    st, _, out = S.request("GET", "/v1/models/stories260K.bin")
    check(st == 200 and json.loads(out)["id"] == "stories260K.bin", "one model: %s" % out)
    st, h, _ = S.request("OPTIONS", "/v1/completions")
    check(st == 204 and "POST" in h.get("access-control-allow-methods", ""), "CORS preflight: %s %s" % (st, h))

    # ---- the page ----
    st, h, page = S.request("GET", "/")
    check(st == 200 and h.get("content-type", "").startswith("text/html") and b"<script>" in page, "page: %s %s" % (st, h))
    check(b"http://" not in page and b"https://" not in page and b"src=" not in page, "the page loads nothing from outside")

    # ---- prefix cache (with the library's paged KV cache): a prompt seen before reuses its full blocks ----
    paged = ms["data"][0]["meta"]["paged_kv"]
    shared = "Once upon a time there was a little girl named Lily. She liked to play in the park with her dog every day."
    h0 = S.metrics()["flashblock_prefix_cache_hits_total"]
    outs = [S.post("/v1/completions", {"prompt": shared, "max_tokens": 30, "temperature": 0})[2]["choices"][0]["text"] for _ in range(2)]
    h1 = S.metrics()["flashblock_prefix_cache_hits_total"]
    check(outs[0] == outs[1], "a cached prefix changes the greedy text: %r %r" % tuple(outs))
    if paged:
        check(h1 - h0 >= 1, "the repeated prompt hit no cached block (%g -> %g)" % (h0, h1))
    else:
        check(h1 == 0, "prefix hits without a prefix cache")
    print("paged KV: %s, prefix-cache hits of the repeated prompt: %d blocks" % (paged, h1 - h0))

    # ---- /metrics ----
    m = S.metrics()
    check(m['flashblock_requests_total{status="200"}'] >= 30, "200s counted: %s" % m.get('flashblock_requests_total{status="200"}'))
    check(m['flashblock_requests_total{status="400"}'] >= 15, "400s counted")
    check(m['flashblock_requests_total{status="404"}'] >= 3 and m['flashblock_requests_total{status="413"}'] >= 2, "404/413 counted")
    check(m["flashblock_prompt_tokens_total"] >= 10 * n_prompt and m["flashblock_generation_tokens_total"] >= 500, "token counters")
    check(m["flashblock_sequences_running"] == 0 and m["flashblock_sequences_waiting"] == 0, "idle gauges")
    check(m["flashblock_kv_blocks_total"] == 4 * 32 and m["flashblock_kv_blocks_used"] == 0 and
          m["flashblock_kv_blocks_free"] + m["flashblock_kv_blocks_cached"] == 128, "kv gauges: %s" % {k: v for k, v in m.items() if "kv" in k})
    check("flashblock_prefix_cache_hits_total" in m, "prefix cache counter")
    for hname in ("flashblock_time_to_first_token_seconds", "flashblock_inter_token_latency_seconds"):
        buckets = [v for k, v in m.items() if k.startswith(hname + "_bucket")]
        check(buckets == sorted(buckets) and m[hname + '_bucket{le="+Inf"}'] == m[hname + "_count"] > 0, "%s buckets" % hname)
    check(m["flashblock_time_to_first_token_seconds_count"] >= 25, "TTFT observed per request")

    # ---- an idle server uses no CPU ----
    time.sleep(0.5)   # OpenMP workers spin ~20k iterations, then sleep
    t0 = S.cpu_ticks()
    time.sleep(2.0)
    t1 = S.cpu_ticks()
    check(t1 - t0 <= 1, "idle server used %d ticks of CPU in 2 s" % (t1 - t0))
finally:
    S.stop("server")

# ---- API key ----
K = Server(fb, model, tok, "--api-key", "sekrit", "--parallel", "1")
try:
    st, _, e = K.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 2})
    error_ok(st, e, 401, "invalid_api_key", "no key")
    st, _, e = K.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 2}, headers={"Authorization": "Bearer wrong"})
    error_ok(st, e, 401, "invalid_api_key", "wrong key")
    st, _, out = K.request("GET", "/v1/models")
    check(st == 401, "models need the key: %s" % st)
    st, _, r = K.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 2}, headers={"Authorization": "Bearer sekrit"})
    check(st == 200 and r["usage"]["completion_tokens"] == 2, "right key: %s %s" % (st, r))
    check(K.request("GET", "/health")[0] == 200 and K.request("GET", "/")[0] == 200, "/health and / need no key")
finally:
    K.stop("server with --api-key")
finish("server_api")
