#!/usr/bin/env bash
# The same small-track recipe on 1 GPU and on N GPUs of one host, on synthetic shards: the global batch is
# the same, so the val-loss curves should agree step for step within noise. Prints both curves side by
# side and the throughput of each; logs go to $OUT/logs-1gpu and $OUT/logs-<N>gpu.
#   bash benchmarks/gpu_scaling.sh [N_GPUS] [STEPS] [VAL_EVERY]
set -uo pipefail
OUT=${OUT:-gpu-out}
N=${1:-2}
STEPS=${2:-200}
VAL_EVERY=${3:-50}
DATA=/tmp/speedrun-synthetic
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

timeout 90 python3 -m speedrun data synthetic --dir "$DATA" --train-shards 3 --tokens-per-shard 50000000 | tail -2

for n in "$N" 1; do
  echo "== $n GPU(s)"
  timeout 290 python3 -m speedrun train --track small --nproc-per-node "$n" --steps "$STEPS" \
    --val-every "$VAL_EVERY" --seed 1234 --data-dir "$DATA" --log-dir "$OUT/logs-${n}gpu" 2>&1 \
    | grep -E "val_loss|peak memory|error|Error" | tail -12
done

python3 benchmarks/compare_runs.py "$OUT/logs-1gpu" "$OUT/logs-${N}gpu"
