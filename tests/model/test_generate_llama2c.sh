#!/bin/bash
# Greedy generation on the real pretrained stories260K model must print
# exactly what llama2.c's run.c printed (reference output in ../shared/data).
fb="$1"; data="${FLASHBLOCK_DATA:-$2}/llama2c"
if [ ! -f "$data/stories260K.bin" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: $data/stories260K.bin missing (CI=true)"; exit 1; fi
    echo "SKIP: $data/stories260K.bin not found"; exit 77
fi
fail=0
out=$(mktemp)
"$fb" generate -m "$data/stories260K.bin" -z "$data/tok512.bin" -p "Lily wanted to" -n 256 --temp 0 --quiet > "$out"
if cmp -s "$out" "$data/reference/stories260K_greedy_lily.txt"; then echo "ok: identical to run.c ($(wc -c < "$out") bytes)"
else echo "FAIL: output differs from run.c"; diff "$out" "$data/reference/stories260K_greedy_lily.txt" | head; fail=1; fi
# The same with Q8_0 weights must still produce text (quality, not identity).
"$fb" generate -m "$data/stories260K.bin" -z "$data/tok512.bin" -p "Lily wanted to" -n 64 --temp 0 --q8 --quiet > "$out" || fail=1
grep -q "^Lily wanted to" "$out" || { echo "FAIL: --q8 output: $(head -c 200 "$out")"; fail=1; }
# Prompt longer than the context: clear error; --truncate works.
long=$(printf 'Once upon a time %.0s' $(seq 1 200))
err=$("$fb" generate -m "$data/stories260K.bin" -z "$data/tok512.bin" -p "$long" -n 600 --temp 0 2>&1 >/dev/null); rc=$?
[ $rc -ne 0 ] && echo "$err" | grep -q context || { echo "FAIL: long prompt: rc=$rc $err"; fail=1; }
"$fb" generate -m "$data/stories260K.bin" -z "$data/tok512.bin" -p "$long" --truncate --temp 0 --quiet > /dev/null || { echo "FAIL: --truncate"; fail=1; }
# Round trips through our writers give the same text: GGUF (vocabulary inside),
# llama2.c v0 (read back by us), and Q8_0 GGUF runs.
tmp=$(mktemp -d)
"$fb" convert -m "$data/stories260K.bin" -o "$tmp/s.gguf" -z "$data/tok512.bin" 2>/dev/null || { echo "FAIL: convert to GGUF"; fail=1; }
"$fb" generate -m "$tmp/s.gguf" -p "Lily wanted to" -n 256 --temp 0 --quiet | cmp -s - "$data/reference/stories260K_greedy_lily.txt" \
    && echo "ok: GGUF export generates identically" || { echo "FAIL: GGUF export output differs"; fail=1; }
"$fb" convert -m "$tmp/s.gguf" -o "$tmp/s.bin" 2>/dev/null || { echo "FAIL: convert to llama2.c"; fail=1; }
"$fb" generate -m "$tmp/s.bin" -z "$data/tok512.bin" -p "Lily wanted to" -n 256 --temp 0 --quiet | cmp -s - "$data/reference/stories260K_greedy_lily.txt" \
    && echo "ok: llama2.c export generates identically" || { echo "FAIL: llama2.c export output differs"; fail=1; }
"$fb" quantize "$data/stories260K.bin" "$tmp/q.gguf" -z "$data/tok512.bin" 2>/dev/null || { echo "FAIL: quantize"; fail=1; }
"$fb" generate -m "$tmp/q.gguf" -p "Lily wanted to" -n 64 --temp 0 --q8 --quiet | grep -q "^Lily wanted to" || { echo "FAIL: Q8_0 GGUF"; fail=1; }
rm -rf "$tmp" "$out"
exit $fail
