#!/usr/bin/python3
"""`flashblock serve` beside llama.cpp's `llama-server` on the same GGUF and
the same load, on loopback, in one sitting.

For each client count (1, 4, 16, 64 by default) and round, each server is
started with --parallel equal to the clients, gets the same streamed
/v1/completions requests (prompts cut from Tiny Shakespeare, ignore_eos,
a fixed max_tokens), and is stopped; the servers alternate (ours, theirs,
ours, ...). Reported per server and client count: generated tokens/s and
requests/s (aggregate), time to first token and inter-token latency p50/p99
as the clients see them, and the server's peak RSS (VmHWM). Medians over
rounds; JSON lines in --out; an SVG chart of tokens/s against clients.

  LLAMA_SERVER=/path/to/llama-server bench/serve_peers.py -m model.gguf [--q8] [--clients 1,4,16,64]
        [--requests-per-client 4] [--max-tokens 64] [--prompt-tokens 32] [--threads 2] [--rounds 3]

Without LLAMA_SERVER only ours runs. Bounded: clients x requests-per-client
requests per level and server.
"""
import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_load import run_load  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_healthy(url, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError("server not healthy after %d s" % timeout)


def hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start(kind, a, clients, port):
    ctx = a.ctx
    if kind == "flashblock":
        cmd = [a.flashblock, "serve", "-m", a.model, "--port", str(port), "--parallel", str(clients), "--ctx", str(ctx),
               "-t", str(a.threads), "--quiet", "--max-queue", str(max(64, clients * 2))]
        if a.q8 or "q8_0" in os.path.basename(a.model).lower():   # a Q8_0 file stays Q8_0 (no fp32 copy)
            cmd.append("--q8")
    else:
        cmd = [a.llama_server, "-m", a.model, "--port", str(port), "-np", str(clients), "-c", str(ctx * clients),
               "-t", str(a.threads), "-tb", str(a.threads), "--log-disable"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", required=True, help="GGUF both servers load")
    ap.add_argument("--q8", action="store_true", help="ours with --q8 (for an f32 GGUF); a q8_0 GGUF is Q8_0 for both")
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--requests-per-client", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=32, help="prompt length in words (about tokens)")
    ap.add_argument("--ctx", type=int, default=256, help="context per sequence")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="serve_peers.jsonl")
    ap.add_argument("--svg", default="serve_peers.svg")
    a = ap.parse_args()
    a.flashblock = os.environ.get("FLASHBLOCK", os.path.join(ROOT, "build", "bin", "flashblock"))
    a.llama_server = os.environ.get("LLAMA_SERVER")
    data = os.environ.get("FLASHBLOCK_DATA", os.path.join(ROOT, "..", "shared", "data"))
    words = open(os.path.join(data, "tinyshakespeare", "input.txt")).read().split()
    servers = ["flashblock"] + (["llama-server"] if a.llama_server else [])
    levels = [int(c) for c in a.clients.split(",")]
    rows = []
    cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    print("machine: %s, %d cores; model %s; threads %d; max_tokens %d; prompts of %d words from Tiny Shakespeare" % (
        cpu, os.cpu_count(), os.path.basename(a.model), a.threads, a.max_tokens, a.prompt_tokens), flush=True)
    for rnd in range(a.rounds):
        for c in levels:
            rng = random.Random(1000 * rnd + c)
            bodies = []
            for i in range(c * a.requests_per_client):
                s = rng.randrange(0, len(words) - a.prompt_tokens)
                bodies.append({"prompt": " ".join(words[s:s + a.prompt_tokens]), "max_tokens": a.max_tokens,
                               "temperature": 0.8, "seed": i, "stream": True, "ignore_eos": True,
                               "stream_options": {"include_usage": True}})
            for kind in servers:
                port = free_port()
                p = start(kind, a, c, port)
                url = "http://127.0.0.1:%d" % port
                try:
                    wait_healthy(url, p)
                    load0 = float(open("/proc/loadavg").read().split()[0])
                    r = run_load(url, bodies, c)
                    r.update(server=kind, round=rnd, peak_rss_mib=round(hwm_kib(p.pid) / 1024, 1), load=load0)
                finally:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(30)
                    except subprocess.TimeoutExpired:
                        p.kill()
                rows.append(r)
                print("round %d, %2d clients, %-12s %7.1f tok/s %6.2f req/s  TTFT p50 %7.1f p99 %7.1f ms  ITL p50 %6.2f p99 %6.2f ms"
                      "  RSS %6.1f MiB  (%d/%d ok, load %.1f)" % (rnd, c, kind, r["out_tokens_per_s"], r["req_per_s"],
                                                                   r["ttft_ms_p50"], r["ttft_ms_p99"], r["itl_ms_p50"],
                                                                   r["itl_ms_p99"], r["peak_rss_mib"], r["ok"], r["requests"],
                                                                   load0), flush=True)
    with open(a.out, "w") as f:
        for r in rows:
            f.write(json.dumps(dict(r, model=os.path.basename(a.model), threads=a.threads, cpu=cpu)) + "\n")

    def med(kind, c, key):
        v = [r[key] for r in rows if r["server"] == kind and r["clients"] == c]
        return statistics.median(v) if v else None

    print("\nmedians of %d rounds:" % a.rounds)
    print("| clients | server | tokens/s | requests/s | TTFT p50 / p99 ms | inter-token p50 / p99 ms | peak RSS MiB | ours / theirs |")
    print("|---|---|---|---|---|---|---|---|")
    for c in levels:
        for kind in servers:
            ratio = ""
            if kind == "flashblock" and "llama-server" in servers and med("llama-server", c, "out_tokens_per_s"):
                ratio = "%.2f×" % (med(kind, c, "out_tokens_per_s") / med("llama-server", c, "out_tokens_per_s"))
            print("| %d | %s | %.0f | %.2f | %.1f / %.1f | %.2f / %.2f | %.0f | %s |" % (
                c, kind, med(kind, c, "out_tokens_per_s"), med(kind, c, "req_per_s"), med(kind, c, "ttft_ms_p50"),
                med(kind, c, "ttft_ms_p99"), med(kind, c, "itl_ms_p50"), med(kind, c, "itl_ms_p99"), med(kind, c, "peak_rss_mib"),
                ratio))
    # chart: tokens/s against clients, one line per server (bench/plot_bench.py draws FIELD against T)
    pts = [{"T": c, "kernel": kind, "tokens_per_s": med(kind, c, "out_tokens_per_s")} for kind in servers for c in levels]
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "plot_bench.py"), a.svg, "tokens_per_s",
                    "generated tokens/s vs concurrent clients (%s)" % os.path.basename(a.model)],
                   input="\n".join(json.dumps(p) for p in pts), text=True, check=False)
    if os.path.isfile(a.svg):   # plot_bench.py labels its axes for attention: relabel
        svg = open(a.svg).read().replace(">sequence length T<", ">concurrent clients<").replace(" d=None<", "<")
        open(a.svg, "w").write(svg)
    print("samples: %s, chart: %s" % (a.out, a.svg))


if __name__ == "__main__":
    main()
