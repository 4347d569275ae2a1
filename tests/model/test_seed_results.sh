#!/bin/sh
# scripts/seed-results.sh --quick (the reduced mode of docs/SEED_RESULTS.md):
# it runs, and the page it writes has every section, numbers in every
# section's tables, every chart it links, and a summary with every key.
# usage: test_seed_results.sh FLASHBLOCK SOURCE_DIR WORK_DIR DATA_DIR
fb="$1" src="$2" work="$3" data="$4"
if [ ! -r "$data/tinyshakespeare/input.txt" ] || ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    if [ "${CI:-}" = true ]; then echo "FAIL: needs $data/tinyshakespeare/input.txt and PyTorch (CI=true)"; exit 1; fi
    echo "SKIP: needs $data/tinyshakespeare/input.txt and PyTorch"; exit 77
fi
md="$work/SEED_RESULTS.md"
rm -f "$md"
FLASHBLOCK_DATA="$data" bash "$src/scripts/seed-results.sh" --quick --bin "$fb" --work "$work" --out "$md" || {
    echo "FAIL: seed-results.sh --quick exited with $?"; exit 1; }
fail=0
for h in "^# The seed's results" "REDUCED MODE" "^## 1\. Transformer block: attention and MLP" \
         "^### Attention: near-uniform at initialisation" "^### Ablations" "^## 2\. FlashAttention in the block" \
         "^### Quality" "^## 3\. Production block: inference" "^## 4\. Production block: training" "^## Reproducing"; do
    grep -q "$h" "$md" || { echo "FAIL: no '$h' in $md"; fail=1; }
done
# every numbered section has table rows with numbers; no NaN or None anywhere
for n in 1 2 3 4; do
    rows=$(awk -v n="$n" '/^## /{on = ($2 == n".")} on && /^\| / && !/^\|---/ && /[0-9]\.[0-9]/' "$md" | wc -l)
    [ "$rows" -ge 2 ] || { echo "FAIL: section $n has $rows table rows with numbers"; fail=1; }
done
if grep -E '^\|' "$md" | grep -qiwE "nan|none|inf"; then echo "FAIL: NaN/None/inf in a table of $md:"; grep -E '^\|' "$md" | grep -iwE "nan|none|inf" | head; fail=1; fi
# every linked image exists and is an SVG
for img in $(sed -n 's/.*](\(seed\/[^)]*\)).*/\1/p' "$md"); do
    grep -q "<svg" "$work/$img" 2>/dev/null || { echo "FAIL: $img is missing or not an SVG"; fail=1; }
done
n_img=$(grep -o '](seed/[^)]*)' "$md" | wc -l)
[ "$n_img" -ge 10 ] || { echo "FAIL: only $n_img images linked"; fail=1; }
/usr/bin/python3 - "$work/summary.json" <<'PY' || fail=1
import json, math, sys
s = json.load(open(sys.argv[1]))
need = ["entropy_before", "entropy_after", "mlp_delta", "attn_delta", "attention_flash_max_extra_mib", "quality_final",
        "inference", "train"]
bad = [k for k in need if s.get(k) in (None, [], {})]
def finite(v):
    if isinstance(v, dict): return all(finite(x) for x in v.values())
    if isinstance(v, list): return all(finite(x) for x in v)
    return isinstance(v, (int, float)) and math.isfinite(v)
bad += [k for k in need if k not in bad and not finite(s[k])]
for c, modes in s.get("inference", {}).items():
    if sorted(modes) != ["flash", "kv", "naive"]: bad.append("inference[%s]" % c)
if bad: print("FAIL: summary.json lacks or has non-finite:", bad); sys.exit(1)
print("summary.json: entropy %.3f -> %.3f, %d inference contexts" % (s["entropy_before"], s["entropy_after"], len(s["inference"])))
PY
[ $fail -eq 0 ] && echo "ok: $md has every section, $n_img charts and a complete summary"
exit $fail
