"""flashblock serve under concurrency, on loopback:
  - seeded and greedy requests give the same text alone and together, with
    other --parallel and prefill budgets, and when a small --kv-mem forces
    preemption (recompute) -- continuous batching does not change outputs;
  - a client that disconnects (streamed or not) is cancelled and its
    sequence freed;
  - a full queue answers 429 with Retry-After."""
import json
import socket
import sys
import threading
import time

from harness import Server, check, data_paths, finish, run_together

fb, data_dir = sys.argv[1], sys.argv[2]
model, tok = data_paths(data_dir)

STORY = [{"role": "user", "content": "Tell me a story about a cat."}]
REQUESTS = [
    ("/v1/completions", {"prompt": "Lily wanted to", "max_tokens": 80, "temperature": 0}),
    ("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 120, "temperature": 0.8, "top_p": 0.95, "seed": 1}),
    ("/v1/completions", {"prompt": "The dog", "max_tokens": 100, "temperature": 1.1, "top_k": 20, "seed": 2, "stream": True}),
    ("/v1/chat/completions", {"messages": STORY, "max_tokens": 90, "temperature": 0.7, "min_p": 0.1, "seed": 3}),
    ("/v1/completions", {"prompt": "Tom and Sue", "max_tokens": 110, "temperature": 0.9, "frequency_penalty": 0.5,
                         "presence_penalty": 0.3, "seed": 4, "stream": True}),
    ("/v1/completions", {"prompt": "A little bird", "max_tokens": 70, "temperature": 1.0, "n": 2, "seed": 5}),
    ("/v1/chat/completions", {"messages": STORY, "max_tokens": 60, "temperature": 0, "stream": True}),
    ("/v1/completions", {"prompt": "One day", "max_tokens": 120, "temperature": 0.6, "stop": [" the"], "seed": 6,
                         "ignore_eos": True}),
    ("/v1/completions", {"prompt": "Ben", "max_tokens": 50, "temperature": 1.3, "top_p": 0.5, "seed": 7, "logprobs": 2}),
]


def run_one(S, path, body):
    """The texts of every choice, plus the finish reasons and token counts."""
    if body.get("stream"):
        st, _, ev, _ = S.stream(path, body)
        if st != 200 or ev[-1] != "[DONE]":
            return ("error", st)
        n = body.get("n", 1)
        key = "delta" if "chat" in path else None
        texts = ["".join((c["choices"][0][key].get("content", "") if key else c["choices"][0]["text"])
                         for c in ev[:-1] if c["choices"] and c["choices"][0]["index"] == i) for i in range(n)]
        fins = [next(c["choices"][0]["finish_reason"] for c in ev[:-1] if c["choices"] and c["choices"][0]["index"] == i
                     and c["choices"][0]["finish_reason"]) for i in range(n)]
        return (texts, fins)
    st, _, r = S.post(path, body)
    if st != 200:
        return ("error", st, r)
    texts = [c["message"]["content"] if "message" in c else c["text"] for c in r["choices"]]
    extra = [c["logprobs"]["token_logprobs"] for c in r["choices"] if c.get("logprobs")]
    return (texts, [c["finish_reason"] for c in r["choices"]], r["usage"]["completion_tokens"], extra)


def run_all(S, reqs):
    """The requests all at once (a barrier releases them together)."""
    return run_together(lambda path, body: run_one(S, path, body), reqs)


def same(a, b, what, tol=0.0):
    """Equal results; logprobs within tol (a recomputed prefix goes through
    prefill instead of decode, which rounds differently)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if tol and len(x) == 4 and len(y) == 4 and x[:3] == y[:3] and len(x[3]) == len(y[3]):
            diffs = [abs(p - q) for lx, ly in zip(x[3], y[3]) for p, q in zip(lx, ly)]
            check(all(len(lx) == len(ly) for lx, ly in zip(x[3], y[3])) and max(diffs, default=0) <= tol,
                  "%s: request %d logprobs differ by %g" % (what, i, max(diffs, default=0)))
            if diffs:
                print("%s: request %d: same text, logprobs within %.2g" % (what, i, max(diffs)))
            continue
        check(x == y, "%s: request %d differs:\n  %s\n  %s" % (what, i, str(x)[:400], str(y)[:400]))


# ---- alone vs together, two orders ----
A = Server(fb, model, tok, "--parallel", "4")
try:
    alone = [run_one(A, p, b) for p, b in REQUESTS]
    check(all(a[0] != "error" for a in alone), "a request failed alone: %s" % alone)
    same(alone, run_all(A, REQUESTS), "together (--parallel 4)")
    rev = run_all(A, REQUESTS[::-1])[::-1]
    same(alone, rev, "together, reversed order")
    m = A.metrics()
    check(m["flashblock_sequences_running"] == 0 and m["flashblock_kv_blocks_used"] == 0, "everything freed after the runs")
finally:
    A.stop("server --parallel 4")

# ---- fewer slots, a tiny prefill budget, and a KV budget that forces preemption ----
# stories260K: 5 layers x 2 x 32 floats = 1280 bytes a token, 20 KiB a block
# of 16: 0.25 MiB = 12 blocks, one context of 160 needs 10.
B = Server(fb, model, tok, "--parallel", "3", "--ctx", "160", "--max-batch-tokens", "8", "--kv-mem", "0.25")
try:
    same(alone, run_all(B, REQUESTS), "--parallel 3, 8-token prefill budget, preempting KV budget", tol=1e-3)
    m = B.metrics()
    check(m["flashblock_kv_blocks_total"] == 12, "kv budget: %s" % m["flashblock_kv_blocks_total"])
    check(m["flashblock_preemptions_total"] > 0, "no preemption happened (the KV budget should force some)")
    check(m["flashblock_sequences_running"] == 0 and m["flashblock_kv_blocks_used"] == 0, "freed after preemptions")
    print("preemptions: %d" % m["flashblock_preemptions_total"])
finally:
    B.stop("server --kv-mem 0.25")

# ---- cancellation and a full queue (a long context keeps requests busy) ----
C = Server(fb, model, tok, "--parallel", "1", "--max-queue", "1", "--ctx", "4096")
try:
    LONG = {"prompt": "Once upon a time", "max_tokens": 4000, "temperature": 0.8, "seed": 9, "ignore_eos": True}

    def wait_idle(what):
        t0 = time.time()
        while time.time() - t0 < 10:
            m = C.metrics()
            if m["flashblock_sequences_running"] == 0:
                return m, time.time() - t0
            time.sleep(0.02)
        check(False, "%s: the sequence is still running 10 s after the client left" % what)
        return C.metrics(), 10

    # streamed: read a few events, then hang up
    s = socket.create_connection(("127.0.0.1", C.port))
    body = json.dumps(dict(LONG, stream=True)).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    got = b""
    while got.count(b"data: ") < 4:
        got += s.recv(4096)
    s.close()
    m, dt = wait_idle("streamed")
    check(m['flashblock_request_finished_total{reason="cancelled"}'] == 1, "streamed disconnect not counted as cancelled")
    check(m["flashblock_generation_tokens_total"] < 4000, "the cancelled stream ran to the end (%d tokens)" % m["flashblock_generation_tokens_total"])
    check(m["flashblock_kv_blocks_used"] == 0, "blocks not freed after the cancel")
    print("stream cancelled, sequence freed %.3f s after the hang-up, %d tokens generated" % (dt, m["flashblock_generation_tokens_total"]))
    # not streamed: hang up while waiting for the whole reply
    g0 = m["flashblock_generation_tokens_total"]
    s = socket.create_connection(("127.0.0.1", C.port))
    body = json.dumps(LONG).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    time.sleep(0.2)
    s.close()
    m, dt = wait_idle("not streamed")
    check(m['flashblock_request_finished_total{reason="cancelled"}'] == 2, "plain disconnect not counted as cancelled")
    check(m["flashblock_generation_tokens_total"] - g0 < 4000, "the cancelled request ran to the end")
    print("plain request cancelled, sequence freed %.3f s after the hang-up" % dt)
    check(any("cancelled" in line for line in C.log), "the access log marks cancelled requests")

    # a full queue. srv_submit accepts a request while fewer than --max-queue
    # requests wait for admission and answers 429 otherwise; with --parallel 1
    # a running request keeps the next one waiting. So, step by step: one
    # admitted and running (a 4000-token stream, seconds long), one waiting,
    # then every further request must get 429 -- exactly 200, 200 and four
    # 429s. (Six sent at once would not say how many get in: all six can
    # reach srv_submit before the engine admits the first, and then only
    # that one is accepted.)
    def wait_gauges(running, waiting, what):
        t0 = time.time()
        while time.time() - t0 < 10:
            m = C.metrics()
            if m["flashblock_sequences_running"] == running and m["flashblock_requests_waiting"] == waiting:
                return True
            time.sleep(0.01)
        return check(False, "%s: running %d, waiting %d (wanted %d, %d)" % (what, m["flashblock_sequences_running"],
                                                                           m["flashblock_requests_waiting"], running, waiting))
    first = C.conn()
    body = json.dumps(dict(LONG, stream=True)).encode()
    first.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    first_reply = first.getresponse()   # the headers: it was accepted
    wait_gauges(1, 0, "the first request admitted")
    second = [None]
    t2 = threading.Thread(target=lambda: second.__setitem__(0, C.post("/v1/completions", dict(LONG, max_tokens=20))))
    t2.start()
    wait_gauges(1, 1, "the second request queued")
    results = [None] * 4
    barrier = threading.Barrier(4)

    def go(i):
        barrier.wait()
        results[i] = C.post("/v1/completions", dict(LONG, max_tokens=20))
    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # still one running and one waiting: the four met a full queue throughout
    still = wait_gauges(1, 1, "after the 429s")
    first_reply.close()   # hang up the stream: the waiting request is admitted
    first.close()
    t2.join(60)
    codes = [first_reply.status, second[0] and second[0][0]] + sorted((r and r[0]) or 0 for r in results)
    check(still and codes == [200, 200, 429, 429, 429, 429], "queue full: statuses %s" % codes)
    for st, h, b in results:
        if st == 429:
            check(h.get("retry-after") == "1" and b["error"]["code"] == "queue_full", "429 shape: %s %s" % (h, b))
    check(second[0] and second[0][0] == 200 and second[0][2]["usage"]["completion_tokens"] == 20,
          "the queued request: %s" % (second[0],))
    print("queue full: statuses %s" % codes)
finally:
    C.stop("server --max-queue 1")
finish("server_concurrency")
