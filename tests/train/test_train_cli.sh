#!/bin/bash
# flashblock train / eval / generate through the CLI:
#  - resume: a run stopped after 7 steps and resumed gives a loss curve
#    bitwise identical to an uninterrupted run (step, train and val loss, lr);
#  - NaN in the gradients stops the run naming the step; the last good
#    checkpoint stays byte-identical;
#  - bad input: one line on stderr, non-zero exit, nothing overwritten.
fb="$1"; work="$2"
set -u
rm -rf "$work"; mkdir -p "$work"
fail=0
die() { echo "FAIL: $*"; fail=1; }

# A small corpus of our own (no external data needed).
for i in $(seq 1 400); do echo "line $i: the quick brown fox jumps over the lazy dog, said the $((i % 7))th cat."; done > "$work/corpus.txt"
common=(--data "$work/corpus.txt" --layers 2 --dim 64 --heads 4 --ctx 32 --batch 4 --steps 16 --eval-every 4 --eval-windows 4 --save-every 100 --seed 7 --threads 2 --quiet)

"$fb" train "${common[@]}" --out "$work/full" || die "uninterrupted run failed"
"$fb" train "${common[@]}" --out "$work/split" --stop-after 7 2>/dev/null || die "first half failed"
[ "$(tail -n +2 "$work/split/loss.csv" | wc -l)" = 7 ] || die "first half did not stop after 7 steps"
"$fb" train "${common[@]}" --out "$work/split" --resume || die "resume failed"
cut -d, -f1-4 "$work/full/loss.csv" > "$work/a.csv"
cut -d, -f1-4 "$work/split/loss.csv" > "$work/b.csv"
if cmp -s "$work/a.csv" "$work/b.csv"; then echo "ok: resumed loss curve is bitwise identical ($(wc -l < "$work/a.csv") lines)"
else die "resumed loss curve differs:"; diff "$work/a.csv" "$work/b.csv" | head; fi
cmp -s "$work/full/model.safetensors" "$work/split/model.safetensors" && echo "ok: final checkpoints identical" || die "final checkpoints differ"
[ -s "$work/full/loss.svg" ] || die "no loss.svg"

# eval: JSON with loss, ppl, tokens
out=$("$fb" eval -m "$work/full/model.safetensors" --data "$work/corpus.txt" --json) || die "eval failed"
echo "$out" | grep -q '"loss":.*"ppl":.*"tokens":' && echo "ok: eval $out" || die "eval output: $out"
# generate from our checkpoint
"$fb" generate -m "$work/full/model.safetensors" -p "line" -n 40 --seed 1 --quiet > "$work/gen.txt" || die "generate failed"
grep -q "^line" "$work/gen.txt" || die "generate output does not start with the prompt"

# NaN stop keeps the last good checkpoint
cp "$work/full/model.safetensors" "$work/good.safetensors"
err=$(FLASHBLOCK_FAULT_NAN_STEP=19 "$fb" train "${common[@]}" --out "$work/full" --resume --steps 40 2>&1 >/dev/null); rc=$?
[ $rc -ne 0 ] || die "NaN did not stop the run"
echo "$err" | grep -q "step" || die "NaN message does not name the step: $err"
cmp -s "$work/full/model.safetensors" "$work/good.safetensors" && echo "ok: NaN stop: $err" || die "checkpoint changed after NaN"

# Ctrl-C: a checkpoint is saved and the run exits cleanly (status 0)
"$fb" train "${common[@]}" --steps 1000000 --out "$work/sigint" > /dev/null 2> "$work/sigint.err" &
pid=$!
# until training runs (the handler is in place by then); generous for loaded machines, where
# a SIGINT that arrives during start-up is ignored (background jobs start with SIGINT ignored)
for i in $(seq 1 600); do [ -s "$work/sigint/loss.csv" ] && [ "$(wc -l < "$work/sigint/loss.csv")" -gt 3 ] && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
if [ $rc -eq 0 ] && grep -q interrupted "$work/sigint.err" && [ -s "$work/sigint/model.safetensors" ]; then
    echo "ok: Ctrl-C: $(cat "$work/sigint.err")"
    "$fb" eval -m "$work/sigint/model.safetensors" --data "$work/corpus.txt" --json > /dev/null || die "checkpoint saved on Ctrl-C does not load"
else die "Ctrl-C: exit $rc, $(cat "$work/sigint.err")"; fi

# Bad input: exit code, one line, nothing overwritten
check() {  # want-rc description cmd...
    want=$1; shift; what=$1; shift
    err=$("$@" 2>&1 >/dev/null); rc=$?
    lines=$(printf '%s\n' "$err" | grep -c .)
    if [ $rc -ne "$want" ] || [ "$lines" -ne 1 ]; then die "$what: exit $rc (want $want), $lines lines: $err"; else echo "ok: $what: $err"; fi
}
: > "$work/empty.txt"
printf 'tiny' > "$work/tiny.txt"
check 1 "empty data" "$fb" train --data "$work/empty.txt" --out "$work/x" --quiet
check 1 "data shorter than a window" "$fb" train --data "$work/tiny.txt" --out "$work/x" --ctx 32 --quiet
check 2 "zero batch" "$fb" train --data "$work/corpus.txt" --out "$work/x" --batch 0
check 2 "negative lr" "$fb" train --data "$work/corpus.txt" --out "$work/x" --lr -1
check 2 "unknown flag" "$fb" train --data "$work/corpus.txt" --out "$work/x" --frobnicate
check 2 "no --out" "$fb" train --data "$work/corpus.txt"
check 1 "missing data file" "$fb" train --data "$work/nope.txt" --out "$work/x" --quiet
head -c 3000 "$work/good.safetensors" > "$work/trunc.safetensors"
check 1 "truncated checkpoint (eval)" "$fb" eval -m "$work/trunc.safetensors" --data "$work/corpus.txt"
check 1 "truncated checkpoint (generate)" "$fb" generate -m "$work/trunc.safetensors" -p hi
python3 - "$work/good.safetensors" "$work/corrupt.safetensors" <<'PY'
import sys
raw = bytearray(open(sys.argv[1], 'rb').read())
i = raw.find(b'"d_model":"64"')
raw[i:i + len(b'"d_model":"64"')] = b'"d_model":"96"'
open(sys.argv[2], 'wb').write(raw)
PY
check 1 "checkpoint of another shape" "$fb" eval -m "$work/corrupt.safetensors" --data "$work/corpus.txt"
mkdir -p "$work/resume_bad"; cp "$work/trunc.safetensors" "$work/resume_bad/model.safetensors"
check 1 "resume from a truncated checkpoint" "$fb" train --data "$work/corpus.txt" --out "$work/resume_bad" --resume --quiet
cmp -s "$work/resume_bad/model.safetensors" "$work/trunc.safetensors" || die "a failed resume overwrote the checkpoint"
ls "$work/full" | grep -q tmp && die "temporary files left behind"
exit $fail
