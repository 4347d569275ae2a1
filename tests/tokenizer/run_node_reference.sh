#!/bin/sh
# CTest driver for the live node comparison: skip (77) when node or the npm
# references are missing, unless CI=true (then that is a failure).
# usage: run_node_reference.sh TOK_DUMP DATA_ROOT STRESS.json
# ($FLASHBLOCK_DATA overrides DATA_ROOT, as for the C tests.)
here=$(cd "$(dirname "$0")" && pwd)
missing() {
    echo "$1" >&2
    if [ "$CI" = "true" ]; then echo "FAIL: required in CI" >&2; exit 1; fi
    echo "SKIP" >&2; exit 77
}
dump=$1
data=${FLASHBLOCK_DATA:-$2}
stress=$3
command -v node >/dev/null 2>&1 || missing "node not found"
[ -d "$here/node/node_modules/js-tiktoken" ] && [ -d "$here/node/node_modules/gpt-3-encoder" ] ||
    missing "npm references not installed: (cd tests/tokenizer/node && npm ci)"
for f in "$data/gpt2/encoder.json" "$data/gpt2/vocab.bpe" "$data/tinyshakespeare/input.txt" "$stress"; do
    [ -r "$f" ] || missing "data file $f not found"
done
exec node "$here/node/compare.mjs" "$dump" "$data/gpt2" "$stress" "$data/tinyshakespeare/input.txt"
