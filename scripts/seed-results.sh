#!/bin/bash
# The seed's four result tables, measured with this engine, in one command:
# docs/SEED_RESULTS.md with its charts in docs/seed/. Every number in it is
# produced here (scripts/seed_report.py writes the Markdown from the raw
# results in the work folder); only the seed's own GPU figures are quoted.
#
#   bash scripts/seed-results.sh            full mode: docs/SEED_RESULTS.md (62 minutes measured on the
#                                           project's shared 2-core VM; the page records each stage's time)
#   bash scripts/seed-results.sh --quick    reduced sizes for CI (a few minutes):
#                                           build/seed-quick/SEED_RESULTS.md (test seed_results_quick)
# Options: --out FILE.md (charts go to seed/ beside it), --work DIR (raw results, models),
#          --bin PATH (flashblock binary; default build/bin/flashblock, built if missing),
#          --steps N (training steps of the two quality runs), --threads N,
#          --stages quality,inspect,attention,inference,training (default all: re-run some
#          stages and keep the others' results from an earlier run in the same --work folder;
#          --stages none only rewrites the page from the results there).
# The machine is shared: each stage's time and the load average when it ended
# are on the page; inference and training repeat their measurements in
# alternating rounds and keep each variant's best.
# The README model (1.): out/shakespeare/model.safetensors is inspected when it
# exists (bash scripts/quickstart.sh); otherwise the flash run of the quality
# pair (the README's model trained for --steps, default 600) is.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }   # paths given are relative to the caller
mode=full out="" work="" fb="" steps="" threads="" stages=quality,inspect,attention,inference,training
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) mode=quick ;;
        --out) out=$(abs "$2"); shift ;;
        --work) work=$(abs "$2"); shift ;;
        --bin) fb=$(abs "$2"); shift ;;
        --steps) steps="$2"; shift ;;
        --threads) threads="$2"; shift ;;
        --stages) stages="$2"; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "seed-results.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
cd "$root"
if [ "$mode" = quick ]; then
    work=${work:-build/seed-quick}; out=${out:-$work/SEED_RESULTS.md}
else
    work=${work:-build/seed-results}; out=${out:-docs/SEED_RESULTS.md}
fi
fb=${fb:-build/bin/flashblock}
threads=${threads:-$(nproc)}
data="${FLASHBLOCK_DATA:-../shared/data}/tinyshakespeare/input.txt"
[ -r "$data" ] || { echo "seed-results.sh: $data is missing (set FLASHBLOCK_DATA)" >&2; exit 1; }
if [ ! -x "$fb" ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build -j"$(nproc)" --target flashblock_cli
    fb=build/bin/flashblock
fi
py=/usr/bin/python3
$py -c 'import torch' 2>/dev/null || { echo "seed-results.sh: $py lacks torch (the PyTorch peer)" >&2; exit 1; }
isa=$("$fb" --version | sed -n 's/.*kernels: \([a-z0-9]*\).*/\1/p')
std="standard_$isa"

if [ "$mode" = quick ]; then
    model_flags="--layers 2 --dim 64 --heads 4 --ctx 64 --batch 8 --lr 2e-3"
    model_desc="a reduced GPT (quick mode; the README's is 4 layers, d_model 256, 4 heads, context 128)"
    steps=${steps:-60}; eval_every=20; windows=4
    att_seq=256,512,1024,2048; torch_seq=256,512,1024; att_reps=1; budget_mb=16
    gen_runs=("256 8 2" "1024 8 2"); gen_shape=15M
    bt_flags="--layers 2 --dim 128 --heads 4 --vocab 2048 --batch 2 --ctx 256"; bt_reps=1; rounds=1; gen_rounds=1
else
    model_flags="--layers 4 --dim 256 --heads 4 --ctx 128 --batch 32 --lr 2e-3"
    model_desc="the README's main-job GPT (\`scripts/quickstart.sh\`)"
    steps=${steps:-600}; eval_every=100; windows=16
    att_seq=512,1024,2048,4096,8192,16384,32768; torch_seq=512,1024,2048,4096,8192; att_reps=2; budget_mb=1024
    gen_runs=("4096 32 2" "32768 32 1"); gen_shape=15M
    bt_flags="--layers 12 --dim 768 --heads 12 --vocab 50257 --batch 2 --ctx 1024"; bt_reps=1; rounds=3; gen_rounds=2
fi
d_model=$(echo "$model_flags" | sed -n 's/.*--dim \([0-9]*\).*/\1/p')

mkdir -p "$work" "$(dirname "$out")"
[ "$stages" = quality,inspect,attention,inference,training ] && rm -f "$work"/stages.tsv "$work"/commands_*.txt
touch "$work/stages.tsv"
start=$(date +%s)
stage_start=$start
cur=""
want() { case ",$stages," in *",$1,"*) cur=$1; : >"$work/commands_$1.txt"; stage_start=$(date +%s); return 0 ;; *) return 1 ;; esac; }
stage() {   # id name: this stage's time, when it ended and the load average then (replaces an earlier run's line)
    local now; now=$(date +%s)
    grep -v "^$1	" "$work/stages.tsv" >"$work/stages.tmp" || true
    printf '%s\t%s\t%d\t%s\t%s\n' "$1" "$2" $((now - stage_start)) "$(date -u +%Y-%m-%dT%H:%MZ)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/stages.tmp"
    mv "$work/stages.tmp" "$work/stages.tsv"
    echo "seed-results: $2 done ($((now - start)) s so far)"
}
run() {   # log the command (as a reader would type it), then run it
    printf '%q ' "$@" | sed "s|$work|WORK|g; s/ \$//" >>"$work/commands_$cur.txt"
    echo >>"$work/commands_$cur.txt"
    "$@"
}

# 2 (quality) and 1 (the model to inspect): the README's model trained twice, flash and standard attention
train_common="$model_flags --steps $steps --eval-every $eval_every --log-every 50 --data $data"
if want quality; then
    rm -rf "$work"/train_flash "$work"/train_standard
    run "$fb" train --out "$work/train_flash" $train_common >"$work/train_flash.log"
    run env FLASHBLOCK_KERNEL_ATTENTION_FORWARD="$std" FLASHBLOCK_KERNEL_ATTENTION_BACKWARD="$std" \
        "$fb" train --out "$work/train_standard" $train_common >"$work/train_standard.log"
    stage quality "quality: two training runs of $steps steps"
fi
[ -s "$work/train_standard/loss.csv" ] || { echo "seed-results.sh: no quality runs in $work (run --stages quality)" >&2; exit 1; }
fk=$(sed -n 's/^kernels: attention forward \([a-z0-9_]*\), backward \([a-z0-9_]*\)$/\1 \/ \2/p' "$work/train_flash.log")
sk=$(sed -n 's/^kernels: attention forward \([a-z0-9_]*\), backward \([a-z0-9_]*\)$/\1 \/ \2/p' "$work/train_standard.log")
[ "$sk" = "$std / $std" ] || { echo "seed-results.sh: the standard run used '$sk', not $std" >&2; exit 1; }
steps=$(tail -1 "$work/train_flash/loss.csv" | cut -d, -f1)

ckpt="$work/train_flash/model.safetensors"
trained_desc="\`flashblock train $model_flags --steps $steps\`, the flash run of the quality pair below"
if [ "$mode" = full ] && [ -s out/shakespeare/model.safetensors ]; then
    ckpt=out/shakespeare/model.safetensors
    trained_desc="out/shakespeare/model.safetensors, the README main job's checkpoint (\`bash scripts/quickstart.sh\`)"
fi
if want inspect; then
    rm -rf "$work"/inspect_init "$work"/inspect_trained
    run "$fb" inspect -m "$ckpt" --data "$data" --windows $windows --init-seed 1337 --label "before training" \
        --out "$work/inspect_init" --json >"$work/inspect_init.json"
    run "$fb" inspect -m "$ckpt" --data "$data" --windows $windows --label "after training" \
        --out "$work/inspect_trained" --json >"$work/inspect_trained.json"
    stage inspect "inspect: before and after training"
fi

if want attention; then
    run "$fb" bench attention --seq $att_seq --head-dim 64 --heads 12 --kernels flash,standard --reps $att_reps \
        --threads "$threads" --mem-limit-mb $budget_mb --json >"$work/attention.jsonl" 2>"$work/attention.log"
    run $py bench/torch_attention.py --seq $torch_seq --head-dim 64 --heads 12 --impls naive,baddbmm,sdpa \
        --reps $att_reps --threads "$threads" --mem-limit-mb $budget_mb >"$work/torch_attention.jsonl"
    stage attention "attention: flash, standard, PyTorch"
fi

if want inference; then   # naive once (it is slow); kv and flash in $gen_rounds alternating rounds
    : >"$work/generate.jsonl"
    for r in $(seq 1 $gen_rounds); do
        for g in "${gen_runs[@]}"; do
            set -- $g
            modes=naive,kv,flash
            [ "$r" -gt 1 ] && modes=kv,flash
            run "$fb" bench generate --contexts "$1" --tokens "$2" --naive-tokens "$3" --modes $modes --shapes $gen_shape \
                --threads "$threads" --json >>"$work/generate.jsonl"
        done
    done
    stage inference "inference: naive, KV cache, FlashAttention + KV cache"
fi

train_cfgs=(
    "baseline|--baseline|baseline: standard attention, unfused LM head, no recompute"
    "flash|--lm-head unfused|+ FlashAttention"
    "fused|--attention flash|+ fused LM head (flash, no recompute)"
    "optimised|--recompute|optimised: flash, fused LM head, recompute"
)
if want training; then   # each configuration once per round, in its own process; the report keeps each one's best
    rm -f "$work"/train_*.json
    for r in $(seq 1 $rounds); do
        for c in "${train_cfgs[@]}"; do
            IFS='|' read -r name flags desc <<<"$c"
            run "$fb" bench train $bt_flags --reps $bt_reps --threads "$threads" $flags --json >"$work/train_${name}_r$r.json"
        done
    done
    stage training "training: baseline vs optimised"
fi
for st in quality inspect attention inference training; do
    [ -s "$work/commands_$st.txt" ] || { echo "seed-results.sh: $work has no results of stage $st (run --stages $st)" >&2; exit 1; }
done

cfg_json=$(for c in "${train_cfgs[@]}"; do IFS='|' read -r n f d <<<"$c"; printf '["%s","%s","%s"],' "$n" "$f" "$d"; done)
cat >"$work/params.json" <<EOF
{"mode": "$mode", "threads": $threads, "model_desc": "$model_desc", "trained_desc": "$trained_desc",
 "d_model": $d_model, "train_flags": "$model_flags", "train_steps": $steps, "std_variant": "$std",
 "flash_kernels": "$fk", "standard_kernels": "$sk", "att_heads": 12, "att_reps": $att_reps, "mem_budget_mb": $budget_mb,
 "gen_shape": "$gen_shape", "bench_train_flags": "$bt_flags", "bench_train_reps": $bt_reps,
 "rounds": $rounds, "gen_rounds": $gen_rounds, "stages_run": "$stages", "train_configs": [${cfg_json%,}]}
EOF
$py scripts/seed_report.py --work "$work" --out "$out" --mode $mode
echo "seed-results: $mode mode finished in $(( $(date +%s) - start )) s: $out"
