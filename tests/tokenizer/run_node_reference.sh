#!/bin/sh
# CTest driver for the live node comparison: skip (77) when node or the npm
# references are missing, unless CI=true (then that is a failure).
# usage: run_node_reference.sh TOK_DUMP GPT2_DIR STRESS.json [CORPUS...]
here=$(cd "$(dirname "$0")" && pwd)
missing() {
    echo "$1" >&2
    if [ "$CI" = "true" ]; then echo "FAIL: required in CI" >&2; exit 1; fi
    echo "SKIP" >&2; exit 77
}
command -v node >/dev/null 2>&1 || missing "node not found"
[ -d "$here/node/node_modules/js-tiktoken" ] && [ -d "$here/node/node_modules/gpt-3-encoder" ] ||
    missing "npm references not installed: (cd tests/tokenizer/node && npm ci)"
for f in "$2/encoder.json" "$2/vocab.bpe" "$3" "${4:-$3}"; do
    [ -r "$f" ] || missing "data file $f not found"
done
exec node "$here/node/compare.mjs" "$@"
