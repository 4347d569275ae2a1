#!/usr/bin/python3
"""Oracle for tests/core/test_block_torch.c: the same pre-norm block in
PyTorch (float64), built from torch's own layers. Reads the exchange file
described in the C test, writes y [B,T,C] as float32."""
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

NAMES = ["attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias", "attn_output.weight",
         "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight", "ffn_up.bias",
         "ffn_gate.weight", "ffn_gate.bias", "ffn_down.weight", "ffn_down.bias"]


def main(inp, out):
    raw = open(inp, "rb").read()
    hdr = struct.unpack_from("<12i", raw, 0)
    assert hdr[0] == 0x46424C4B, "bad magic"
    C, H, Hkv, Fd, norm, mlp, pos, bias, B, T, pos0 = hdr[1:]
    eps, theta = struct.unpack_from("<2f", raw, 48)
    off = 56
    p = {}
    for name in NAMES:
        (n,) = struct.unpack_from("<q", raw, off)
        off += 8
        p[name] = torch.from_numpy(np.frombuffer(raw, "<f4", n, off).astype(np.float64)) if n else None
        off += 4 * n
    x = torch.from_numpy(np.frombuffer(raw, "<f4", B * T * C, off).astype(np.float64)).view(B, T, C)
    D = C // H
    QKV = (H + 2 * Hkv) * D

    def normf(v, w, b):
        if norm == 0:
            return F.layer_norm(v, (C,), w, b, eps)
        return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps) * w

    def rope(t):  # t [B, T, nh, D]; interleaved pairs as in Meta's llama reference
        freqs = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
        ang = torch.outer(torch.arange(pos0, pos0 + T, dtype=torch.float64), freqs)
        rot = torch.polar(torch.ones_like(ang), ang)  # [T, D/2]
        tc = torch.view_as_complex(t.reshape(*t.shape[:-1], D // 2, 2).contiguous())
        return torch.view_as_real(tc * rot[None, :, None, :]).flatten(-2)

    h = normf(x, p["attn_norm.weight"], p["attn_norm.bias"])
    qkv = F.linear(h, p["attn_qkv.weight"].view(QKV, C), p["attn_qkv.bias"])
    q = qkv[..., : H * D].view(B, T, H, D)
    k = qkv[..., H * D: (H + Hkv) * D].view(B, T, Hkv, D)
    v = qkv[..., (H + Hkv) * D:].view(B, T, Hkv, D)
    if pos == 1:
        q, k = rope(q), rope(k)
    rep = H // Hkv
    k = k.repeat_interleave(rep, dim=2)
    v = v.repeat_interleave(rep, dim=2)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
    att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(-1)
    a = (att @ v).transpose(1, 2).reshape(B, T, C)
    x1 = x + F.linear(a, p["attn_output.weight"].view(C, C), p["attn_output.bias"])
    h2 = normf(x1, p["ffn_norm.weight"], p["ffn_norm.bias"])
    up = F.linear(h2, p["ffn_up.weight"].view(Fd, C), p["ffn_up.bias"])
    if mlp == 2:
        gate = F.linear(h2, p["ffn_gate.weight"].view(Fd, C), p["ffn_gate.bias"])
        act = F.silu(gate) * up
    elif mlp == 0:
        act = F.gelu(up, approximate="tanh")
    else:
        act = F.gelu(up)
    y = x1 + F.linear(act, p["ffn_down.weight"].view(C, Fd), p["ffn_down.bias"])
    y.numpy().astype("<f4").tofile(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
