#!/usr/bin/python3
"""Independent PyTorch oracle for tests/train/test_model_torch.c.

Reads a flashblock checkpoint (safetensors, parsed here from the spec with
json + numpy), a batch of ids/targets, and what the C side computed (loss,
logits, gradients, the losses of 10 AdamW steps). Rebuilds the same model
from torch's own layers in float64 and compares. Exit status 0 = all match.

usage: torch_model.py WORKDIR   (files: model.safetensors, batch.bin,
       c_grads.safetensors, c_logits.bin, c_results.txt)
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", info
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[base + a: base + b], dtype="<f4").reshape(info["shape"])
        out[name] = torch.tensor(arr.astype(np.float64))
    return out, meta


def build(meta):
    cfg = {k: meta[k] for k in meta}
    return dict(C=int(cfg["d_model"]), H=int(cfg["n_heads"]), Hkv=int(cfg["n_kv_heads"]), Fd=int(cfg["d_ff"]),
                L=int(cfg["n_layers"]), V=int(cfg["vocab_size"]), T=int(cfg["max_seq"]), norm=cfg["norm"],
                eps=float(cfg["norm_eps"]), mlp=cfg["mlp"], pos=cfg["positions"], theta=float(cfg["rope_theta"]),
                bias=int(cfg["bias"]), tied=int(cfg["tied"]))


def forward(p, c, ids):
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
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        a = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(a, p[pre + "attn_output.weight"], p.get(pre + "attn_output.bias"))
        h = norm(x, pre + "ffn_norm")
        up = F.linear(h, p[pre + "ffn_up.weight"], p.get(pre + "ffn_up.bias"))
        if c["mlp"] == "swiglu":
            act = F.silu(F.linear(h, p[pre + "ffn_gate.weight"], p.get(pre + "ffn_gate.bias"))) * up
        elif c["mlp"] == "gelu_tanh":
            act = F.gelu(up, approximate="tanh")
        else:
            act = F.gelu(up)
        x = x + F.linear(act, p[pre + "ffn_down.weight"], p.get(pre + "ffn_down.bias"))
    x = norm(x, "output_norm")
    return F.linear(x, p["token_embd.weight"] if c["tied"] else p["output.weight"])


def rel(a, b):
    return float((a - b).abs().max() / max(float(b.abs().max()), 1e-12))


def main(work):
    params, meta = read_safetensors(work + "/model.safetensors")
    c = build(meta)
    raw = open(work + "/batch.bin", "rb").read()
    B, T, steps = struct.unpack_from("<3i", raw, 0)
    lr, wd, b1, b2, eps = struct.unpack_from("<5f", raw, 12)
    n = B * T
    ids = torch.tensor(np.frombuffer(raw, "<i4", n, 32).astype(np.int64)).view(B, T)
    tgt = torch.tensor(np.frombuffer(raw, "<i4", n, 32 + 4 * n).astype(np.int64)).view(B, T)
    res = dict(line.split() for line in open(work + "/c_results.txt"))
    c_loss = float(res["loss"])
    c_losses = [float(res["step%d" % i]) for i in range(steps)]
    c_grads, _ = read_safetensors(work + "/c_grads.safetensors")
    c_logits = torch.tensor(np.fromfile(work + "/c_logits.bin", "<f4").astype(np.float64)).view(B, T, c["V"])

    p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    logits = forward(p, c, ids)
    loss = F.cross_entropy(logits.view(-1, c["V"]), tgt.view(-1), ignore_index=-1)
    loss.backward()
    ok = True

    def check(what, err, tol):
        nonlocal ok
        status = "ok" if err <= tol else "FAIL"
        if err > tol:
            ok = False
        print("%-32s rel err %.3g (tol %.0e) %s" % (what, err, tol, status))

    check("loss", abs(c_loss - loss.item()) / abs(loss.item()), 1e-5)
    check("logits", rel(c_logits, logits.detach()), 1e-5)
    worst = ("", 0.0)
    for name, t in p.items():
        e = rel(c_grads[name], t.grad)
        if e > worst[1]:
            worst = (name, e)
        if e > 2e-5:
            check("grad " + name, e, 2e-5)
    check("grads (worst: %s)" % worst[0], worst[1], 2e-5)

    # 10 AdamW steps with the same hyper-parameters and decay groups.
    q = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    decay = [t for k, t in q.items() if t.dim() == 2 and k not in ("token_embd.weight", "position_embd.weight")]
    no_decay = [t for k, t in q.items() if not (t.dim() == 2 and k not in ("token_embd.weight", "position_embd.weight"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(b1, b2), eps=eps)
    for i in range(steps):
        opt.zero_grad()
        l = F.cross_entropy(forward(q, c, ids).view(-1, c["V"]), tgt.view(-1), ignore_index=-1)
        l.backward()
        opt.step()
        check("adamw step %d loss" % i, abs(c_losses[i] - l.item()) / abs(l.item()), 1e-4)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
