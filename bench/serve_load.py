#!/usr/bin/python3
"""Load benchmark for `flashblock serve` (or any OpenAI-compatible server):
C concurrent clients, each sending streamed /v1/completions requests one
after the other, for R requests in all. Reports request throughput, output
tokens/s, time to first token and inter-token latency (p50/p95/p99, from
the client's side: the arrival times of the SSE chunks), and one JSON line.

usage: serve_load.py [--url http://127.0.0.1:8080] [--clients 8] [--requests 64]
                     [--max-tokens 128] [--prompt-words 32] [--temperature 0.8] [--api-key KEY]
Standard library only (http.client, threads).
"""
import argparse
import http.client
import json
import random
import statistics
import threading
import time
import urllib.parse

WORDS = "once upon a time there was a little girl named lily she liked to play in the park with her dog".split()


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def one(url, body, key):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", body=json.dumps(body).encode(), headers=h)
    r = c.getresponse()
    if r.status != 200:
        c.close()
        return {"status": r.status}
    stamps, buf, tokens = [], b"", 0
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        now = time.perf_counter()
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if not ev.startswith(b"data: ") or ev == b"data: [DONE]":
                continue
            j = json.loads(ev[6:])
            if j.get("choices") and j["choices"][0].get("text"):
                stamps.append(now)
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
    c.close()
    # a server that sends no usage chunk: one token per text chunk
    return {"status": 200, "t0": t0, "stamps": stamps, "tokens": tokens or len(stamps), "t1": time.perf_counter()}


def run_load(url, bodies, clients, key=None):
    """Send bodies from `clients` threads, each one request after the other;
    the summary dict (throughput, TTFT and inter-token percentiles)."""
    results, lock, nxt = [], threading.Lock(), [0]

    def client():
        while True:
            with lock:
                if nxt[0] >= len(bodies):
                    return
                b = bodies[nxt[0]]
                nxt[0] += 1
            res = one(url, b, key)
            with lock:
                results.append(res)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    ok = [r for r in results if r["status"] == 200]
    ttft = [r["stamps"][0] - r["t0"] for r in ok if r["stamps"]]
    itl = [b - x for r in ok for x, b in zip(r["stamps"], r["stamps"][1:])]
    lat = [r["t1"] - r["t0"] for r in ok]
    toks = sum(r["tokens"] for r in ok)
    return {"clients": clients, "requests": len(results), "ok": len(ok), "wall_s": round(wall, 3),
            "req_per_s": round(len(ok) / wall, 3), "out_tokens_per_s": round(toks / wall, 1),
            "ttft_ms_p50": round(1e3 * pct(ttft, 50), 2), "ttft_ms_p95": round(1e3 * pct(ttft, 95), 2),
            "ttft_ms_p99": round(1e3 * pct(ttft, 99), 2), "itl_ms_p50": round(1e3 * pct(itl, 50), 3),
            "itl_ms_p95": round(1e3 * pct(itl, 95), 3), "itl_ms_p99": round(1e3 * pct(itl, 99), 3),
            "latency_s_mean": round(statistics.mean(lat), 3) if lat else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--api-key", default=None)
    a = ap.parse_args()
    rng = random.Random(1)
    bodies = [{"prompt": " ".join(rng.choice(WORDS) for _ in range(a.prompt_words)), "max_tokens": a.max_tokens,
               "temperature": a.temperature, "seed": i, "stream": True, "stream_options": {"include_usage": True},
               "ignore_eos": True} for i in range(a.requests)]
    out = run_load(a.url, bodies, a.clients, a.api_key)
    ok_n = out["ok"]
    print("%d/%d requests ok in %.2f s: %.2f req/s, %.0f output tokens/s" % (ok_n, out["requests"], out["wall_s"],
                                                                            out["req_per_s"], out["out_tokens_per_s"]))
    print("TTFT p50 %.1f ms p95 %.1f ms p99 %.1f ms; inter-token p50 %.2f ms p95 %.2f ms p99 %.2f ms" % (
        out["ttft_ms_p50"], out["ttft_ms_p95"], out["ttft_ms_p99"], out["itl_ms_p50"], out["itl_ms_p95"], out["itl_ms_p99"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
