#!/usr/bin/env python3
"""Write a random-weight llama2.c v0 checkpoint (run.c's legacy layout), for
memory and speed measurements that need a model file of a given shape.

    scripts/random_llama2c.py OUT.bin [--dim 768 --layers 12 --heads 12
        --hidden 2048 --vocab 32000 --seq 1024 --seed 1]

Defaults: the 110M TinyStories shape of `flashblock bench generate` (tied
classifier). Matrices and the embedding are N(0, 0.02), norm weights 1.
Written in chunks, so it needs little memory. Then, for example:
    flashblock convert -m OUT.bin -o OUT.gguf        (f32 GGUF)
    flashblock quantize OUT.bin OUTq.gguf            (Q8_0 GGUF)
"""
import argparse
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=0, help="0: as many as --heads")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    kvh = a.kv_heads or a.heads
    hs = a.dim // a.heads
    kv = hs * kvh
    rng = np.random.default_rng(a.seed)

    with open(a.out, "wb") as f:
        def rand(rows, cols):   # [rows, cols] in chunks of rows
            step = max(1, (1 << 22) // cols)
            for r in range(0, rows, step):
                n = min(step, rows - r)
                f.write((rng.standard_normal((n, cols), dtype=np.float32) * np.float32(0.02)).astype("<f4").tobytes())

        def ones(n):
            f.write(np.ones(n, dtype="<f4").tobytes())

        # vocab_size > 0: the classifier is the token embedding (shared)
        f.write(struct.pack("<7i", a.dim, a.hidden, a.layers, a.heads, kvh, a.vocab, a.seq))
        rand(a.vocab, a.dim)                                   # token_embedding_table
        for _ in range(a.layers): ones(a.dim)                  # rms_att_weight
        for _ in range(a.layers): rand(a.dim, a.dim)           # wq
        for _ in range(a.layers): rand(kv, a.dim)              # wk
        for _ in range(a.layers): rand(kv, a.dim)              # wv
        for _ in range(a.layers): rand(a.dim, a.dim)           # wo
        for _ in range(a.layers): ones(a.dim)                  # rms_ffn_weight
        for _ in range(a.layers): rand(a.hidden, a.dim)        # w1
        for _ in range(a.layers): rand(a.dim, a.hidden)        # w2
        for _ in range(a.layers): rand(a.hidden, a.dim)        # w3
        ones(a.dim)                                            # rms_final_weight
        f.write(np.zeros(a.seq * hs, dtype="<f4").tobytes())   # freq_cis_real + freq_cis_imag (unused)


if __name__ == "__main__":
    main()
