#!/bin/bash
# The main job on a fresh machine: install, build, train a small character
# (byte) level GPT on Tiny Shakespeare (../shared/data, or a Debian fortunes
# file when that is absent) for 2000 steps (about 21 minutes on 2 cores of
# the project's Xeon VM; README has the measured run), then write a sample. Progress, loss.csv and loss.svg land in out/shakespeare/.
#
#   bash scripts/quickstart.sh [TRAIN FLAGS...]   the main job; extra flags go to train
#   bash scripts/quickstart.sh --smoke            the same job cut to 40 steps (CI runs
#                                                 this on a clean clone, see .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=2000 eval_every=100 log_every=50 out=out/shakespeare
if [ "${1:-}" = "--smoke" ]; then
    shift
    steps=40 eval_every=20 log_every=10 out=out/shakespeare-smoke
fi
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
./build/bin/flashblock train --out "$out" --layers 4 --dim 256 --heads 4 --ctx 128 \
    --batch 32 --steps "$steps" --lr 2e-3 --eval-every "$eval_every" --log-every "$log_every" "$@"
./build/bin/flashblock generate -m "$out/model.safetensors" -p "ROMEO:" -n 600 --temp 0.8 --seed 42
