#!/bin/bash
# Side-by-side speed of two flashblock binaries (e.g. the commit before a
# change and after it), run alternately A B A B ... so both see the same
# machine load; prints each run and the medians as a Markdown table.
#
#   bench/compare.sh OLD_BIN NEW_BIN [ROUNDS]
#
# Build the old commit outside the repository first, e.g.
#   git worktree add /tmp/old <commit> && cmake -S /tmp/old -B /tmp/old/build -DCMAKE_BUILD_TYPE=Release \
#     && cmake --build /tmp/old/build -j
# Measurements (each prints one JSON line): training step at the GPT-2 124M
# shape (B=4, T=64), flash attention forward and backward (T=2048, D=64, 12
# heads), decode f32 / Q8_0 and prefill of 512 tokens at the 110M shape.
set -euo pipefail
old=${1:?usage: bench/compare.sh OLD_BIN NEW_BIN [ROUNDS]}
new=${2:?usage: bench/compare.sh OLD_BIN NEW_BIN [ROUNDS]}
rounds=${3:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

measure() {   # measure TAG BIN
    local tag=$1 bin=$2
    "$bin" bench train --reps 5 --json | tail -1 >>"$out/$tag.train"
    "$bin" bench attention --seq 2048 --head-dim 64 --kernels flash --reps 5 --json | tail -1 >>"$out/$tag.attn_fwd"
    "$bin" bench attention --seq 2048 --head-dim 64 --kernels flash --reps 5 --backward --json | tail -1 >>"$out/$tag.attn_bwd"
    "$bin" bench generate --shapes 110M --tokens 32 --prefill 512 --json | tail -1 >>"$out/$tag.generate"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds: old" >&2; measure old "$old"
    echo "round $r/$rounds: new" >&2; measure new "$new"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

/usr/bin/python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
def vals(tag, what, key):
    return [json.loads(l)[key] for l in open(f"{d}/{tag}.{what}") if l.strip()]
rows = [("training step, GPT-2 124M, B=4 T=64 (s, lower is better)", "train", "step_s", -1),
        ("flash attention forward T=2048 D=64 12 heads (ms)", "attn_fwd", "ms", -1),
        ("flash attention backward T=2048 D=64 12 heads (ms)", "attn_bwd", "ms", -1),
        ("110M decode f32 (tok/s)", "generate", "decode_f32_tps", 1),
        ("110M decode Q8_0 (tok/s)", "generate", "decode_q8_tps", 1),
        ("110M prefill 512 (tok/s)", "generate", "prefill_tps", 1)]
print(f"| measurement | old runs | new runs | median old → new | new speed / old |")
print("|---|---|---|---|---|")
for name, what, key, better in rows:
    o, n = vals("old", what, key), vals("new", what, key)
    mo, mn = statistics.median(o), statistics.median(n)
    speed = (mn / mo) if better > 0 else (mo / mn)
    fmt = lambda v: ", ".join(f"{x:.4g}" for x in v)
    print(f"| {name} | {fmt(o)} | {fmt(n)} | {mo:.4g} → {mn:.4g} | {speed:.3f} |")
PY
