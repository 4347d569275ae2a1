#!/bin/bash
# Every writer makes the folders its output path needs (as mkdir -p would)
# and fails with one clear line, exit 1 and nothing damaged only when a
# folder truly cannot be made. The README's main job once stopped at
# "cannot create out/shakespeare" on a fresh clone, where out/ is missing.
fb="$1"; work="$2"
set -u
rm -rf "$work"; mkdir -p "$work"; cd "$work" || exit 1
fail=0
die() { echo "FAIL: $*"; fail=1; }
for i in $(seq 1 200); do echo "line $i: the quick brown fox jumps over the lazy dog."; done > corpus.txt
small=(--data corpus.txt --layers 1 --dim 32 --heads 2 --ctx 16 --batch 4 --steps 2 --eval-every 0 --threads 1 --quiet)

# relative and absolute paths, several missing levels
"$fb" train "${small[@]}" --out out/a/b || die "train --out out/a/b"
[ -s out/a/b/model.safetensors ] && [ -s out/a/b/loss.csv ] && [ -s out/a/b/loss.svg ] && echo "ok: train made out/a/b" || die "train outputs missing"
"$fb" train "${small[@]}" --out "$work/abs/x//y/" || die "train --out with an absolute path, // and a trailing /"
[ -s abs/x/y/model.safetensors ] && echo "ok: train made abs/x/y" || die "no checkpoint under abs/x/y"
m=out/a/b/model.safetensors
"$fb" train "${small[@]}" --preset llama --out out/llama || die "train --preset llama"
"$fb" convert -m "$m" -o conv/f32/m.gguf >/dev/null || die "convert -o conv/f32/m.gguf"
"$fb" convert -m out/llama/model.safetensors -o conv/l2c/m.bin >/dev/null || die "convert -o conv/l2c/m.bin"
"$fb" quantize "$m" quant/q8/m.gguf >/dev/null || die "quantize into quant/q8/"
"$fb" tokenizer train --data corpus.txt --vocab-size 300 --out tok/v/vocab.bpe >/dev/null || die "tokenizer train --out tok/v/"
for f in conv/f32/m.gguf conv/l2c/m.bin quant/q8/m.gguf tok/v/vocab.bpe; do
    [ -s "$f" ] && echo "ok: wrote $f" || die "$f missing"
done
"$fb" generate -m quant/q8/m.gguf -z byte -p "line" -n 12 --quiet >/dev/null || die "the quantized copy does not generate"

# a folder that cannot be made: a file stands where a folder must be
echo "keep me" > blocker
expect_fail() {  # description command...
    local what=$1; shift
    local err rc lines
    err=$("$@" 2>&1 >/dev/null); rc=$?
    lines=$(printf '%s\n' "$err" | grep -c .)
    if [ $rc -ne 1 ] || [ "$lines" -ne 1 ] || ! printf '%s' "$err" | grep -q "blocker"; then
        die "$what: exit $rc, $lines stderr lines: $err"
    else echo "ok: $what: $err"; fi
}
expect_fail "train --out under a file" "$fb" train "${small[@]}" --out blocker/run
expect_fail "convert -o under a file" "$fb" convert -m "$m" -o blocker/m.gguf
expect_fail "quantize under a file" "$fb" quantize "$m" blocker/sub/m.gguf
expect_fail "tokenizer train under a file" "$fb" tokenizer train --data corpus.txt --vocab-size 300 --out blocker/v.bpe
[ "$(cat blocker)" = "keep me" ] && echo "ok: the file in the way is untouched" || die "blocker was changed"
ls -a | grep -q '\.tmp\.' && die "a temporary file was left behind: $(ls -a)"
exit $fail
