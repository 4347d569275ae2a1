#!/usr/bin/python3
"""PyTorch (Debian python3-torch 1.13) naive causal attention — the peer
baseline for `flashblock bench attention`. One JSON line per point, same
fields as ours: kernel, T, head_dim, threads, ms, gflops, extra_bytes.

usage: torch_attention.py [--seq 1024,2048,4096] [--head-dim 64] [--threads 2] [--backward] [--reps 3]
Each point runs in a fresh process so its peak RSS (ru_maxrss) is its own.
"""
import argparse
import json
import math
import resource
import subprocess
import sys
import time


def point(T, D, H, threads, backward, reps):
    import torch
    torch.set_num_threads(threads)
    q, k, v = (torch.randn(1, H, T, D) for _ in range(3))
    if backward:
        for t in (q, k, v):
            t.requires_grad_(True)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def run():
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        o = att @ v
        if backward:
            o.backward(torch.ones_like(o))
        return o

    run()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    times.sort()
    s = times[len(times) // 2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    flops = (2.0 if not backward else 7.0) * T * T * D * H   # useful causal FLOPs (fwd 2T²D, fwd+bwd 7T²D)
    return {"kernel": "pytorch_naive", "pass": "forward+backward" if backward else "forward", "T": T, "head_dim": D,
            "heads": H, "threads": threads, "ms": s * 1e3, "gflops": flops / s / 1e9, "extra_bytes": peak - base}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", default="1024,2048,4096")
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--point", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.point:
        print(json.dumps(point(int(a.seq), a.head_dim, a.heads, a.threads, a.backward, a.reps)))
        return
    for T in (int(x) for x in a.seq.split(",")):
        cmd = [sys.executable, __file__, "--point", "--seq", str(T), "--head-dim", str(a.head_dim), "--heads",
               str(a.heads), "--threads", str(a.threads), "--reps", str(a.reps)] + (["--backward"] if a.backward else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(json.dumps({"kernel": "pytorch_naive", "T": T, "error": r.stderr.strip().splitlines()[-1:]}))
        else:
            print(r.stdout.strip())
        sys.stdout.flush()


if __name__ == "__main__":
    main()
