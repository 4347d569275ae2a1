#!/usr/bin/python3
"""Decode and prefill speed of flashblock beside its peers, on the same
weights, in one sitting, interleaved (ours, theirs, ours, theirs ...).

Peers come from environment variables (never built by this repository):
  LLAMA_BENCH   llama.cpp's llama-bench          (GGUF f32 and Q8_0)
  LLAMA2C_RUN   llama2.c's run (built with -fopenmp) (llama2.c .bin, fp32)
  FLASHBLOCK    our binary (default: build/bin/flashblock)
  FLASHBLOCK_DATA  the data folder (default ../shared/data): its
                llama2c/tokenizer.bin (32000 pieces) is embedded in the GGUF
                files and given to run.

The models are random-weight TinyStories shapes written by
`flashblock bench generate --save-models` and converted to GGUF with
`flashblock convert` (f32 and q8_0), so all engines read identical weights.

Each round runs, per shape: ours (f32 and Q8_0 decode, 512-token prefill),
llama-bench (tg, then pp), run.c; the load average and the streaming read
bandwidth (measured by ours in the same round) are logged. --busy K starts K
competing processes (a memory-streaming loop each) for the whole run: the
"other core busy" case. The report gives medians over rounds and the
ratios ours / peer, and writes every sample as JSON lines to --out.

    bench/peers.py --rounds 5 --shapes 15M,110M --threads 2 [--busy 1]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run(cmd, env=None, timeout=1800):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, timeout=timeout, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    return p.stdout, p.stderr


def ours(fb, model, threads, tokens, prefill):
    out, _ = run([fb, "bench", "generate", "--model", model, "--threads", str(threads), "--tokens", str(tokens),
                  "--prefill", str(prefill), "--json"])
    r = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    return {"f32": r["decode_f32_tps"], "q8_0": r["decode_q8_tps"], "prefill": r["prefill_tps"], "bandwidth_gbs": r["bandwidth_gbs"]}


def llama_bench(exe, model, threads, tokens, prefill, what):
    args = ["-p", "0", "-n", str(tokens)] if what == "tg" else ["-p", str(prefill), "-n", "0"]
    out, _ = run([exe, "-m", model, "-t", str(threads), "-r", "3", "-o", "json"] + args)
    return json.loads(out)[0]["avg_ts"]


def llama2c(exe, model, tok, threads, tokens):
    _, err = run([exe, model, "-z", tok, "-t", "1.0", "-s", "42", "-n", str(tokens + 1), "-i", "Once"],
                 env={"OMP_NUM_THREADS": str(threads)})
    m = re.search(r"achieved tok/s:\s*([0-9.]+)", err)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default="15M,110M")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--busy", type=int, default=0, help="competing memory-streaming processes during the run")
    ap.add_argument("--models", help="folder for the model files (default: a temporary one, removed after)")
    ap.add_argument("--out", default="peers.jsonl")
    a = ap.parse_args()
    fb = os.environ.get("FLASHBLOCK", os.path.join(ROOT, "build", "bin", "flashblock"))
    data = os.environ.get("FLASHBLOCK_DATA", os.path.join(ROOT, "..", "shared", "data"))
    tok = os.path.join(data, "llama2c", "tokenizer.bin")
    lb, l2 = os.environ.get("LLAMA_BENCH"), os.environ.get("LLAMA2C_RUN")
    if not os.path.isfile(tok):
        sys.exit("peers: %s not found (the 32000-piece llama2.c tokenizer)" % tok)
    if not lb and not l2:
        print("peers: neither LLAMA_BENCH nor LLAMA2C_RUN is set: ours only", file=sys.stderr)
    tmp = None
    mdir = a.models
    if not mdir:
        tmp = tempfile.TemporaryDirectory(prefix="flashblock-peers-")
        mdir = tmp.name
    shapes = a.shapes.split(",")
    for s in shapes:
        if not os.path.isfile(os.path.join(mdir, s + ".bin")):
            run([fb, "bench", "generate", "--save-models", mdir, "--shapes", s])
        for t in ("f32", "q8_0"):
            g = os.path.join(mdir, "%s.%s.gguf" % (s, t))
            if not os.path.isfile(g):
                run([fb, "convert", "-m", os.path.join(mdir, s + ".bin"), "-o", g, "--type", t, "-z", tok])
    busy = []
    for _ in range(a.busy):   # a memory-streaming load: 256 MiB summed over and over
        busy.append(subprocess.Popen([sys.executable, "-c",
                                      "import array\nb = array.array('d', bytes(1 << 28))\nwhile True: sum(b)"]))
    cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    print("machine: %s, %d cores; threads %d; busy processes %d; rounds %d" % (cpu, os.cpu_count(), a.threads, a.busy, a.rounds))
    samples = []
    try:
        for rnd in range(a.rounds):
            for s in shapes:
                f32 = os.path.join(mdir, s + ".f32.gguf")
                rec = {"round": rnd, "shape": s, "load_before": loadavg(), "t": time.time()}
                rec["ours"] = ours(fb, f32, a.threads, a.tokens, a.prefill)
                if lb:
                    rec["llama.cpp"] = {"f32": llama_bench(lb, f32, a.threads, a.tokens, a.prefill, "tg"),
                                        "q8_0": llama_bench(lb, os.path.join(mdir, s + ".q8_0.gguf"), a.threads, a.tokens,
                                                            a.prefill, "tg"),
                                        "prefill": llama_bench(lb, f32, a.threads, a.tokens, a.prefill, "pp")}
                if l2:
                    rec["llama2.c"] = {"f32": llama2c(l2, os.path.join(mdir, s + ".bin"), tok, a.threads, a.tokens)}
                rec["load_after"] = loadavg()
                samples.append(rec)
                print("round %d %s: %s (load %.2f -> %.2f)" % (rnd, s, json.dumps({k: rec[k] for k in rec if k in (
                    "ours", "llama.cpp", "llama2.c")}), rec["load_before"], rec["load_after"]), flush=True)
    finally:
        for p in busy:
            p.kill()
    with open(a.out, "w") as f:
        for r in samples:
            f.write(json.dumps(dict(r, threads=a.threads, busy=a.busy, cpu=cpu)) + "\n")

    def med(shape, who, key):
        v = [r[who][key] for r in samples if r["shape"] == shape and who in r and r[who].get(key)]
        return statistics.median(v) if v else None

    print("\nmedians of %d rounds, tokens/s (ratio = ours / peer; bound = weight bytes per token / bandwidth):" % a.rounds)
    print("| shape | metric | flashblock | llama.cpp | ratio | llama2.c run | ratio | ours % of bound |")
    print("|---|---|---|---|---|---|---|---|")
    for s in shapes:
        params = {"15M": 15.19e6, "42M": 41.7e6, "110M": 109.5e6}.get(s)   # matrices streamed per token
        bw = med(s, "ours", "bandwidth_gbs")
        for key in ("f32", "q8_0", "prefill"):
            o, l, r2 = med(s, "ours", key), med(s, "llama.cpp", key), med(s, "llama2.c", key)
            bound = ""
            if params and bw and key != "prefill":
                per_tok = params * (4.0 if key == "f32" else 34.0 / 32.0)
                bound = "%.0f%%" % (100 * o * per_tok / (bw * 1e9))
            fmt = lambda x: "%.1f" % x if x else "-"
            ratio = lambda x: "%.2f×" % (o / x) if x and o else "-"
            print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (s, key if key == "prefill" else key + " decode", fmt(o), fmt(l),
                                                               ratio(l), fmt(r2), ratio(r2), bound))
    print("\nsamples: %s" % a.out)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
