#!/bin/bash
# Peak resident memory (VmHWM, /usr/bin/time's %M) of `flashblock generate`
# on a random-weight model of the 110M shape (dim 768, 12 layers, hidden
# 2048, vocab 32000, ctx 1024, tied), f32 and --q8, from a llama2.c v0 file,
# its f32 GGUF and its Q8_0 GGUF, against the target
#     peak <= 1.1 x (weight bytes + KV bytes) + 64 MiB
# (docs/BENCHMARKS.md, "Peak memory of generate"). Not part of CTest: it
# writes ~1 GB of models and takes a minute.
#
#   scripts/peak_rss_generate.sh [FLASHBLOCK [BEFORE_FLASHBLOCK]]
#
# FLASHBLOCK defaults to build/bin/flashblock; with BEFORE_FLASHBLOCK (a
# build of an older commit) each run is measured with both, one after the
# other. Models go to $FB_PEAK_DIR (default /tmp/fb-peak-rss) and are kept
# for the next run. Exit status 1 when an f32 or --q8 run of FLASHBLOCK
# misses its target.
set -u
here=$(cd "$(dirname "$0")" && pwd)
fb=${1:-$here/../build/bin/flashblock}
before=${2:-}
dir=${FB_PEAK_DIR:-/tmp/fb-peak-rss}
tok=${FLASHBLOCK_DATA:-$here/../../shared/data}/llama2c/tokenizer.bin
[ -x "$fb" ] || { echo "no flashblock binary at $fb"; exit 2; }
[ -f "$tok" ] || { echo "no 32000-token tokenizer at $tok (set FLASHBLOCK_DATA)"; exit 2; }
mkdir -p "$dir" || exit 2
[ -f "$dir/m110.bin" ] || /usr/bin/python3 "$here/random_llama2c.py" "$dir/m110.bin" || exit 2
[ -f "$dir/m110.gguf" ] || "$fb" convert -m "$dir/m110.bin" -o "$dir/m110.gguf" -z "$tok" >/dev/null || exit 2
[ -f "$dir/m110q.gguf" ] || "$fb" quantize "$dir/m110.bin" "$dir/m110q.gguf" -z "$tok" >/dev/null || exit 2

# Bytes of weights and KV cache of the shape (the KV pool is sized for the
# whole context; its pages become resident only as positions fill).
read -r f32_bytes q8_bytes kv_bytes <<< "$(/usr/bin/python3 - <<'EOF'
V, C, L, F, KV, ctx = 32000, 768, 12, 2048, 768, 1024
mat = V * C + L * (2 * C * C + 2 * C * KV + 3 * C * F)   # embedding (= LM head) and the layers' matrices
vec = L * 2 * C + C                                      # norm weights
print(4 * (mat + vec), mat // 32 * 34 + 4 * vec, 2 * L * ctx * KV * 4)
EOF
)"
target() { /usr/bin/python3 -c "print(int(1.1 * ($1 + $kv_bytes) + 64 * 2**20))"; }
t_f32=$(target "$f32_bytes")
t_q8=$(target "$q8_bytes")
mb() { /usr/bin/python3 -c "print(f'{$1 / 1e6:.1f} MB')"; }
echo "weights: f32 $(mb "$f32_bytes"), Q8_0 $(mb "$q8_bytes"); KV cache for 1024 positions $(mb "$kv_bytes")"
echo "targets: f32 $(mb "$t_f32"), Q8_0 $(mb "$t_q8")"

peak() {   # peak BINARY ARGS...: VmHWM in bytes (/usr/bin/time's %M is KiB)
    local bin=$1 out; shift
    out=$(mktemp)
    /usr/bin/time -o "$out" -f "%M" "$bin" generate "$@" -p "Once upon a time" -n 48 --temp 0 --quiet >/dev/null 2>&1 \
        || { rm -f "$out"; echo "FAIL"; return; }
    echo $(( $(tail -1 "$out") * 1024 ))
    rm -f "$out"
}
fail=0
row() {   # row LABEL TARGET(0: none) ARGS...
    local label=$1 tgt=$2 now old="" verdict=""; shift 2
    [ -n "$before" ] && old=$(peak "$before" "$@")
    now=$(peak "$fb" "$@")
    if [ "$now" = FAIL ]; then verdict="FAIL (generate failed)"; fail=1
    elif [ "$tgt" -gt 0 ] && [ "$now" -le "$tgt" ]; then verdict="target $(mb "$tgt") met"
    elif [ "$tgt" -gt 0 ]; then verdict="target $(mb "$tgt") MISSED"; fail=1
    fi
    printf '%-28s %s%s  %s\n' "$label" "${old:+before $(show "$old"), }" "peak $(show "$now")" "$verdict"
}
show() { [ "$1" = FAIL ] && echo FAIL || echo "$(mb "$1") ($(($1 / 1024)) kB)"; }
row "m110.bin, f32" "$t_f32" -m "$dir/m110.bin" -z "$tok"
row "m110.gguf, f32" "$t_f32" -m "$dir/m110.gguf"
row "m110.bin, --q8" "$t_q8" -m "$dir/m110.bin" -z "$tok" --q8
row "m110.gguf, --q8" "$t_q8" -m "$dir/m110.gguf" --q8
row "m110q.gguf, f32 from Q8_0" 0 -m "$dir/m110q.gguf"
row "m110q.gguf, --q8" "$t_q8" -m "$dir/m110q.gguf" --q8
exit $fail
