#!/bin/bash
# The main job on a fresh machine: install, build, train a small character
# (byte) level GPT on Tiny Shakespeare (../shared/data, or a Debian fortunes
# file when that is absent) for about ten minutes on 2 cores, then write a
# sample with it. Progress, loss.csv and loss.svg land in out/shakespeare/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
./build/bin/flashblock train --out out/shakespeare --layers 4 --dim 256 --heads 4 --ctx 128 \
    --batch 32 --steps 2000 --lr 2e-3 --eval-every 100 --log-every 50 "$@"
./build/bin/flashblock generate -m out/shakespeare/model.safetensors -p "ROMEO:" -n 600 --temp 0.8 --seed 42
