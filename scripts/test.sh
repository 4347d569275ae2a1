#!/bin/bash
# The whole test suite: dependencies, Release build, node packages (tokenizer
# references, the openai client), ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
(cd tests/tokenizer/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd tests/server/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
ctest --test-dir build --output-on-failure -j"$(nproc)"
