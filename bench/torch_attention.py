#!/usr/bin/python3
"""PyTorch (Debian python3-torch 1.13) causal attention — the peer
baseline for `flashblock bench attention`. One JSON line per point, same
fields as ours: kernel, T, head_dim, threads, ms, gflops, extra_bytes.

usage: torch_attention.py [--seq 1024,2048,4096] [--head-dim 64] [--threads 2] [--backward] [--reps 3]
                          [--impls naive,baddbmm,sdpa] [--mem-limit-mb M]
Each point runs in a fresh process so its peak RSS (ru_maxrss) is its own.

Implementations (PyTorch 1.13 has no torch.nn.functional.scaled_dot_product_attention;
every CPU path below materialises the H×T×T scores):
  naive    q @ kᵀ / √d, masked_fill(-inf), softmax, @ v  (the textbook version, default)
  baddbmm  torch.baddbmm(additive causal mask, q, kᵀ, alpha=1/√d), softmax in place, torch.bmm
           (one score buffer instead of three)
  sdpa     torch.nn.functional._scaled_dot_product_attention(q, k, v, None, 0.0, False, is_causal=True):
           1.13's private fused entry point (on CPU it dispatches to the math path)
(torch._native_multi_head_attention, the nn.MultiheadAttention fast path,
includes the input/output projections and is not an attention-only kernel.)
--mem-limit-mb M: points whose H·T²·4 bytes of scores alone exceed M are not
run and print {"skipped": ...} with that lower bound.
"""
import argparse
import json
import math
import resource
import subprocess
import sys
import time


def point(T, D, H, threads, backward, reps, impl):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    q, k, v = (torch.randn(1, H, T, D) for _ in range(3))
    if backward:
        for t in (q, k, v):
            t.requires_grad_(True)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    addmask = torch.zeros(T, T).masked_fill(~mask, float("-inf")) if impl == "baddbmm" else None
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def attend():
        if impl == "baddbmm":
            att = torch.baddbmm(addmask.expand(H, T, T), q[0], k[0].transpose(-1, -2), alpha=1 / math.sqrt(D))
            att = torch.softmax(att, -1) if backward else torch.softmax(att, -1, out=att)
            return torch.bmm(att, v[0])[None]
        if impl == "sdpa":
            return F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        return att @ v

    def run():
        o = attend()
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
    return {"kernel": "pytorch_" + impl, "pass": "forward+backward" if backward else "forward", "T": T, "head_dim": D,
            "heads": H, "threads": threads, "ms": s * 1e3, "gflops": flops / s / 1e9, "extra_bytes": peak - base}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", default="1024,2048,4096")
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--impls", default="naive")
    ap.add_argument("--mem-limit-mb", type=float, default=0)
    ap.add_argument("--point", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.point:
        print(json.dumps(point(int(a.seq), a.head_dim, a.heads, a.threads, a.backward, a.reps, a.impls)))
        return
    for T in (int(x) for x in a.seq.split(",")):
        for impl in a.impls.split(","):
            if impl not in ("naive", "baddbmm", "sdpa"):
                sys.exit("torch_attention.py: unknown implementation %r (naive, baddbmm, sdpa)" % impl)
            need = 4.0 * a.heads * T * T
            if a.mem_limit_mb and need > a.mem_limit_mb * 1048576:
                print(json.dumps({"kernel": "pytorch_" + impl, "T": T, "head_dim": a.head_dim, "heads": a.heads,
                                  "skipped": "its %d×%d×%d scores alone need %.2f GiB, over the %.2f GiB limit"
                                  % (a.heads, T, T, need / 2 ** 30, a.mem_limit_mb / 1024), "min_extra_bytes": need}))
                sys.stdout.flush()
                continue
            cmd = [sys.executable, __file__, "--point", "--seq", str(T), "--head-dim", str(a.head_dim), "--heads",
                   str(a.heads), "--threads", str(a.threads), "--reps", str(a.reps), "--impls", impl] + \
                (["--backward"] if a.backward else [])
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(json.dumps({"kernel": "pytorch_" + impl, "T": T, "error": r.stderr.strip().splitlines()[-1:]}))
            else:
                print(r.stdout.strip())
            sys.stdout.flush()


if __name__ == "__main__":
    main()
