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
"$fb" --version >/dev/null || { echo "FAIL: --version"; fail=1; }
"$fb" --help | grep -q "bench attention" || { echo "FAIL: --help"; fail=1; }
exit $fail
