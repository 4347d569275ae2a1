#!/usr/bin/python3
"""Independent PyTorch oracle for tests/model/test_inspect_torch.c.

Rebuilds the checkpoint's model from torch's own layers in float64, runs it
on the same windows with the attention probabilities made explicit, and
recomputes what `flashblock inspect` reports (src/model/inspect.h):
per layer and head the normalised entropy, mean distance, first- and
previous-token shares (queries t = 1..T-1), the loss intact and with each
block's attention or MLP output removed, the residual norms, and window 0's
attention maps. Compares with the C library's results (c_results.txt,
c_maps.bin) and with the CLI's --json (cli.json, windows chosen from
data.txt as the CLI does). Exit status 0 = everything within 1e-5.

usage: torch_inspect.py WORKDIR
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from torch_model import build, read_safetensors  # noqa: E402  (checkpoint parsing only)

torch.set_default_dtype(torch.float64)
TOL = 1e-5


def forward(p, c, ids, tgt, drop_attn=-1, drop_mlp=-1):
    """Loss (mean), attention probabilities [L][B,H,T,T], residuals [L+1][B,T,C]."""
    B, T = ids.shape
    C, H, Hkv, L = c["C"], c["H"], c["Hkv"], c["L"]
    D = C // H

    def norm(x, prefix):
        w = p[prefix + ".weight"]
        if c["norm"] == "layernorm":
            return F.layer_norm(x, (C,), w, p.get(prefix + ".bias"), c["eps"])
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + c["eps"]) * w

    def rope(t):
        freqs = 1.0 / (c["theta"] ** (torch.arange(0, D, 2) / D))
        ang = torch.outer(torch.arange(T, dtype=torch.float64), freqs)
        rot = torch.polar(torch.ones_like(ang), ang)
        tc = torch.view_as_complex(t.reshape(*t.shape[:-1], D // 2, 2).contiguous())
        return torch.view_as_real(tc * rot[None, :, None, :]).flatten(-2)

    x = p["token_embd.weight"][ids]
    if c["pos"] == "learned":
        x = x + p["position_embd.weight"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    probs, resid = [], [x]
    for l in range(L):
        pre = "blk.%d." % l
        h = norm(x, pre + "attn_norm")
        qkv = F.linear(h, p[pre + "attn_qkv.weight"], p.get(pre + "attn_qkv.bias"))
        q = qkv[..., :H * D].view(B, T, H, D)
        k = qkv[..., H * D:(H + Hkv) * D].view(B, T, Hkv, D)
        v = qkv[..., (H + Hkv) * D:].view(B, T, Hkv, D)
        if c["pos"] == "rope":
            q, k = rope(q), rope(k)
        k = k.repeat_interleave(H // Hkv, dim=2)
        v = v.repeat_interleave(H // Hkv, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        att = ((q @ k.transpose(-1, -2)) / math.sqrt(D)).masked_fill(~mask, float("-inf")).softmax(-1)
        probs.append(att)
        a = (att @ v).transpose(1, 2).reshape(B, T, C)
        if l != drop_attn:
            x = x + F.linear(a, p[pre + "attn_output.weight"], p.get(pre + "attn_output.bias"))
        h = norm(x, pre + "ffn_norm")
        up = F.linear(h, p[pre + "ffn_up.weight"], p.get(pre + "ffn_up.bias"))
        if c["mlp"] == "swiglu":
            act = F.silu(F.linear(h, p[pre + "ffn_gate.weight"], p.get(pre + "ffn_gate.bias"))) * up
        elif c["mlp"] == "gelu_tanh":
            act = F.gelu(up, approximate="tanh")
        else:
            act = F.gelu(up)
        if l != drop_mlp:
            x = x + F.linear(act, p[pre + "ffn_down.weight"], p.get(pre + "ffn_down.bias"))
        resid.append(x)
    logits = F.linear(norm(x, "output_norm"), p["token_embd.weight"] if c["tied"] else p["output.weight"])
    loss = F.cross_entropy(logits.reshape(-1, c["V"]), tgt.reshape(-1))
    return loss.item(), probs, resid


def inspect(p, c, win):
    """win: [W, T+1] int64. Everything inspect reports, as numpy arrays."""
    ids, tgt = win[:, :-1], win[:, 1:]
    W, T = ids.shape
    L, H = c["L"], c["H"]
    loss, probs, resid = forward(p, c, ids, tgt)
    t = torch.arange(T, dtype=torch.float64)
    dist = (t[:, None] - t[None, :]).clamp(min=0)
    ent, dis, first, prev = (np.zeros((L, H)) for _ in range(4))
    for l, P in enumerate(probs):                        # P: [W, H, T, T]
        plogp = torch.where(P > 0, P * torch.log(P), torch.zeros_like(P)).sum(-1)    # [W, H, T]
        e = -plogp[..., 1:] / torch.log(t[1:] + 1.0)
        ent[l] = e.mean(dim=(0, 2)).numpy()
        dis[l] = (P * dist).sum(-1)[..., 1:].mean(dim=(0, 2)).numpy()
        first[l] = P[..., 1:, 0].mean(dim=(0, 2)).numpy()
        idx = torch.arange(1, T)
        prev[l] = P[:, :, idx, idx - 1].mean(dim=(0, 2)).numpy()
    norms = np.array([r.norm(dim=-1).mean().item() for r in resid])
    no_attn = np.array([forward(p, c, ids, tgt, drop_attn=l)[0] for l in range(L)])
    no_mlp = np.array([forward(p, c, ids, tgt, drop_mlp=l)[0] for l in range(L)])
    maps = np.stack([P[0].numpy() for P in probs])       # [L, H, T, T]
    return dict(loss=loss, loss_no_attn=no_attn, loss_no_mlp=no_mlp, resid_norm=norms, entropy=ent, distance=dis,
                first=first, prev=prev, maps=maps)


class Checker:
    def __init__(self):
        self.ok = True

    def __call__(self, what, c_val, ref, relative):
        c_val, ref = np.asarray(c_val, dtype=np.float64), np.asarray(ref, dtype=np.float64)
        if c_val.shape != ref.shape:
            print("%-34s shape %s vs %s FAIL" % (what, c_val.shape, ref.shape))
            self.ok = False
            return
        err = np.abs(c_val - ref)
        if relative:
            err = err / np.maximum(np.abs(ref), 1e-12)
        e = float(err.max())
        status = "ok" if e <= TOL else "FAIL"
        self.ok &= e <= TOL
        print("%-34s %s err %.3g (tol %.0e) %s" % (what, "rel" if relative else "abs", e, TOL, status))


def compare(check, tag, got, ref):
    check(tag + " loss", got["loss"], ref["loss"], True)
    check(tag + " loss, attention removed", got["loss_no_attn"], ref["loss_no_attn"], True)
    check(tag + " loss, MLP removed", got["loss_no_mlp"], ref["loss_no_mlp"], True)
    check(tag + " residual norms", got["resid_norm"], ref["resid_norm"], True)
    check(tag + " entropy", got["entropy"], ref["entropy"], False)
    check(tag + " distance", got["distance"], ref["distance"], True)
    check(tag + " first-token share", got["first"], ref["first"], False)
    check(tag + " previous-token share", got["prev"], ref["prev"], False)


def main(work):
    params, meta = read_safetensors(work + "/model.safetensors")
    c = build(meta)
    check = Checker()
    # 1. the library on the C test's windows
    raw = open(work + "/windows.bin", "rb").read()
    W, T, S = struct.unpack_from("<3i", raw, 0)
    win = torch.tensor(np.frombuffer(raw, "<i4", W * (T + 1), 12).astype(np.int64)).view(W, T + 1)
    ref = inspect(params, c, win)
    res = {}
    for line in open(work + "/c_results.txt"):
        k, *v = line.split()
        res[k] = np.array([float(x) for x in v])
    L, H = c["L"], c["H"]
    got = dict(loss=res["loss"][0], loss_no_attn=res["loss_no_attn"], loss_no_mlp=res["loss_no_mlp"],
               resid_norm=res["resid_norm"], entropy=res["entropy"].reshape(L, H),
               distance=res["distance"].reshape(L, H), first=res["first"].reshape(L, H),
               prev=res["prev"].reshape(L, H))
    compare(check, "library:", got, ref)
    maps = np.fromfile(work + "/c_maps.bin", "<f4").reshape(L, H, S, S)
    check("library: attention maps", maps, ref["maps"][:, :, :S, :S], False)
    # the statistics must not be trivial: somewhere attention is far from uniform
    print("entropy range %.3f .. %.3f, first-token share up to %.3f" % (ref["entropy"].min(), ref["entropy"].max(),
                                                                         ref["first"].max()))
    # 2. the CLI (--json): windows chosen from data.txt as flashblock inspect does
    cli = json.load(open(work + "/cli.json"))
    data = np.frombuffer(open(work + "/data.txt", "rb").read(), np.uint8).astype(np.int64)
    n, Tc, Wc, vf = len(data), cli["ctx"], cli["windows"], cli["val_fraction"]
    need = Tc + 1
    n_region = min(max(int(n * vf), need), n)
    region = data[n - n_region:]
    starts = [int((n_region - need) * w / (Wc - 1)) if Wc > 1 else 0 for w in range(Wc)]
    cwin = torch.tensor(np.stack([region[s:s + need] for s in starts]))
    cref = inspect(params, c, cwin)
    got = {k: np.array(cli[k]) for k in ("loss_no_attn", "loss_no_mlp", "resid_norm", "entropy", "distance", "first", "prev")}
    got["loss"] = cli["loss"]
    compare(check, "CLI --json:", got, cref)
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
