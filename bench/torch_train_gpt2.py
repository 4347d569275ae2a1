#!/usr/bin/python3
"""PyTorch 1.13 (Debian python3-torch) GPT-2 training step — the peer for
`flashblock bench train`. Same model shape and work: 12 layers, 768 wide,
12 heads, vocab 50257, tied head, B=4, T=64, AdamW, fp32, 2 threads.

usage: torch_train_gpt2.py [--layers 12] [--dim 768] [--heads 12] [--vocab 50257] [--batch 4] [--ctx 64] [--threads 2] [--reps 5]
                           [--ddp N]   (DistributedDataParallel, gloo, N processes on this host sharing the
                                        global batch, --threads each: the peer of `mpirun -np N flashblock train`)
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.H)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).tril().logical_not(), float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, C, H, V, T):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(C, H) for _ in range(L))
        self.lnf = nn.LayerNorm(C)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x)
        logits = self.lnf(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def run(rank, a):
    world = max(a.ddp, 1)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = GPT(a.layers, a.dim, a.heads, a.vocab, a.ctx)
    if a.ddp:
        import os
        import torch.distributed as dist
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29533")
        dist.init_process_group("gloo", rank=rank, world_size=world)
        m = torch.nn.parallel.DistributedDataParallel(m)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.1)
    idx = torch.randint(0, a.vocab, (a.batch // world, a.ctx))
    tgt = torch.randint(0, a.vocab, (a.batch // world, a.ctx))
    times = []
    for r in range(a.reps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = m(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if r:
            times.append(time.perf_counter() - t0)
    times.sort()
    s = times[len(times) // 2]
    n = sum(p.numel() for p in m.parameters())
    if rank == 0:
        print(json.dumps({"bench": "train", "engine": "pytorch" + (f" DDP gloo x{world}" if a.ddp else ""),
                          "torch": torch.__version__, "params": n, "batch": a.batch, "T": a.ctx, "threads": a.threads,
                          "ranks": world, "step_s": round(s, 4), "model_gflops": round(6 * n * a.batch * a.ctx / s / 1e9, 2)}))


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(layers=12, dim=768, heads=12, vocab=50257, batch=4, ctx=64, threads=2, reps=5, ddp=0).items():
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    if a.ddp:
        import torch.multiprocessing as mp
        mp.spawn(run, args=(a,), nprocs=a.ddp)
    else:
        run(0, a)


if __name__ == "__main__":
    main()
