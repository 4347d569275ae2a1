#!/bin/sh
# Bad CLI input: one line on stderr, non-zero exit, no crash.
fb="$1"
fail=0
check() {  # expected-exit-code description command...
    want=$1; shift; what=$1; shift
    err=$("$@" 2>&1 >/dev/null); rc=$?
    lines=$(printf '%s\n' "$err" | grep -c .)
    if [ "$rc" -ne "$want" ] || [ "$lines" -ne 1 ]; then
        echo "FAIL: $what: exit $rc (want $want), $lines stderr lines: $err"; fail=1
    else
        echo "ok: $what: $err"
    fi
}
check 2 "unknown command" "$fb" frobnicate
check 2 "no command" sh -c "\"$fb\" 2>&1 >/dev/null | head -1 >&2; exit 2"
check 2 "unknown bench" "$fb" bench nothing
check 2 "bad --seq" "$fb" bench attention --seq 12x
check 2 "zero --threads" "$fb" bench attention --threads 0
check 2 "missing value" "$fb" bench attention --seq
check 2 "unknown kernel" "$fb" bench attention --kernels flash,turbo
check 2 "unknown option" "$fb" bench gemm --frobs 3
check 2 "bad preset" "$fb" bench block --preset bert
check 1 "invalid block config" "$fb" bench block --dim 100 --heads 7 --reps 1
# inspect: flags, files, a model too short for the context asked
check 2 "inspect without -m/--data" "$fb" inspect
check 2 "inspect unknown option" "$fb" inspect -m x --data y --frob
check 2 "inspect zero --windows" "$fb" inspect -m x --data y --windows 0
check 2 "inspect bad --ctx" "$fb" inspect -m x --data y --ctx 12x
check 2 "inspect bad --val-fraction" "$fb" inspect -m x --data y --val-fraction 2
check 1 "inspect missing model" "$fb" inspect -m /nonexistent/model.safetensors --data "$0"
tmp=$(mktemp -d)
if "$fb" train --out "$tmp/m" --data "$0" --layers 1 --dim 16 --heads 2 --ctx 8 --batch 2 --steps 1 --quiet >/dev/null 2>&1; then
    printf 'ab' >"$tmp/short.txt"
    check 1 "inspect missing data" "$fb" inspect -m "$tmp/m/model.safetensors" --data /nonexistent/data.txt
    check 1 "inspect data too short" "$fb" inspect -m "$tmp/m/model.safetensors" --data "$tmp/short.txt"
    check 1 "inspect --ctx over the model's" "$fb" inspect -m "$tmp/m/model.safetensors" --data "$0" --ctx 9
    check 1 "inspect --map-tokens over --ctx" "$fb" inspect -m "$tmp/m/model.safetensors" --data "$0" --ctx 4 --map-tokens 5
    check 1 "inspect unwritable --out" "$fb" inspect -m "$tmp/m/model.safetensors" --data "$0" --out /proc/nope
    "$fb" inspect -m "$tmp/m/model.safetensors" --data "$0" --out "$tmp/r" --windows 3 >/dev/null &&
        [ -s "$tmp/r/report.md" ] && [ -s "$tmp/r/summary.json" ] && [ -s "$tmp/r/attn_layer0.svg" ] ||
        { echo "FAIL: inspect --out wrote no report"; fail=1; }
else
    echo "FAIL: could not train the tiny model for the inspect cases"; fail=1
fi
rm -rf "$tmp"
"$fb" --version >/dev/null || { echo "FAIL: --version"; fail=1; }
"$fb" --help | grep -q "bench attention" || { echo "FAIL: --help"; fail=1; }
exit $fail
