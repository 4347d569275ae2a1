#!/usr/bin/python3
"""Soak test of `flashblock serve` (outside the test suite): C clients send
streamed and plain /v1/completions and /v1/chat/completions requests back
to back for --minutes, with some clients hanging up mid-stream; every 10 s
the server's RSS, open descriptors and /metrics gauges are sampled. Passes
when no request failed (cancelled ones excepted), RSS after the warm-up
stays flat (last-minute median within --rss-slack MiB of the second
minute's), and the server ends with no running sequence and no KV block in
use. Prints one line per sample and a JSON summary; exit 1 on failure.

  bench/serve_soak.py -m MODEL [-z TOK] [--clients 16] [--minutes 10] [--q8] [--threads 2]
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_peers import free_port, wait_healthy  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    out = c.getresponse().read().decode()
    c.close()
    vals = {}
    for line in out.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
    return vals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-z", "--tokenizer")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--q8", action="store_true")
    ap.add_argument("--rss-slack", type=float, default=16.0)
    a = ap.parse_args()
    fb = os.environ.get("FLASHBLOCK", os.path.join(ROOT, "build", "bin", "flashblock"))
    data = os.environ.get("FLASHBLOCK_DATA", os.path.join(ROOT, "..", "shared", "data"))
    words = open(os.path.join(data, "tinyshakespeare", "input.txt")).read().split()
    port = free_port()
    cmd = [fb, "serve", "-m", a.model, "--port", str(port), "--parallel", str(a.clients), "--ctx", "512", "-t", str(a.threads),
           "--quiet"] + (["-z", a.tokenizer] if a.tokenizer else []) + (["--q8"] if a.q8 else [])
    srv = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    try:
        wait_healthy("http://127.0.0.1:%d" % port, srv)
    except RuntimeError as e:
        sys.exit("soak: %s" % e)
    stop = time.time() + 60 * a.minutes
    counts = {"ok": 0, "failed": 0, "hung_up": 0}
    errors = []
    lock = threading.Lock()

    def client(k):
        rng = random.Random(k)
        while time.time() < stop:
            st = rng.randrange(len(words) - 64)
            prompt = " ".join(words[st:st + rng.randrange(4, 64)])
            chat = rng.random() < 0.3
            body = {"max_tokens": rng.randrange(8, 160), "temperature": rng.choice([0, 0.7, 1.0]), "seed": rng.randrange(1 << 30),
                    "stream": rng.random() < 0.6}
            if chat:
                body["messages"] = [{"role": "user", "content": prompt}]
            else:
                body["prompt"] = prompt
            hang = body["stream"] and rng.random() < 0.1
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                c.request("POST", "/v1/chat/completions" if chat else "/v1/completions", body=json.dumps(body),
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                if hang:
                    r.read1(200)
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    c.close()
                    with lock:
                        counts["hung_up"] += 1
                    continue
                out = r.read()
                c.close()
                good = r.status == 200 and (not body["stream"] or out.rstrip().endswith(b"data: [DONE]"))
                with lock:
                    counts["ok" if good else "failed"] += 1
                    if not good and len(errors) < 10:
                        errors.append("%s %.200r" % (r.status, out[-200:]))
            except Exception as e:   # noqa: BLE001 -- every failure counts
                with lock:
                    counts["failed"] += 1
                    if len(errors) < 10:
                        errors.append(repr(e))

    ts = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
    for t in ts:
        t.start()
    samples = []
    while time.time() < stop:
        time.sleep(10)
        m = metrics(port)
        smp = {"t": round(time.time() - t0), "rss_mib": proc_status(srv.pid, "VmRSS") / 1024.0,
               "fds": len(os.listdir("/proc/%d/fd" % srv.pid)), "running": m.get("flashblock_sequences_running"),
               "tokens": m.get("flashblock_generation_tokens_total"), **counts}
        samples.append(smp)
        print(json.dumps(smp), flush=True)
    for t in ts:
        t.join(180)
    time.sleep(1)
    m = metrics(port)
    srv.send_signal(signal.SIGTERM)
    rc = srv.wait(60)
    log = srv.stderr.read().decode("utf-8", "replace")
    rss = [x["rss_mib"] for x in samples]
    per_min = max(1, 6)
    early = statistics.median(rss[per_min:2 * per_min]) if len(rss) >= 2 * per_min else rss[0]
    late = statistics.median(rss[-per_min:])
    summary = {"minutes": a.minutes, "clients": a.clients, **counts, "rss_mib_minute2": round(early, 1),
               "rss_mib_last_minute": round(late, 1), "rss_mib_max": round(max(rss), 1),
               "tokens_per_s": round((m.get("flashblock_generation_tokens_total", 0)) / (60 * a.minutes), 1),
               "end_running": m.get("flashblock_sequences_running"), "end_kv_used": m.get("flashblock_kv_blocks_used"),
               "exit": rc, "errors": errors}
    ok = (counts["failed"] == 0 and late - early <= a.rss_slack and m.get("flashblock_sequences_running") == 0 and
          m.get("flashblock_kv_blocks_used") == 0 and rc == 0 and "runtime error" not in log)
    summary["pass"] = ok
    print(json.dumps(summary))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
