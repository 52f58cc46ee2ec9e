#!/usr/bin/env bash
# One device session: kernel tests, a short synthetic-data run through `speedrun train`, the throughput
# benchmark. Writes everything under $OUT (default ./gpu-out). Each stage has its own time limit.
# BENCH_FLAGS adds benchmark options (e.g. --profile).
#   bash benchmarks/gpu_session.sh [train_steps] [benchmark_steps]
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
TRAIN_STEPS=${1:-40}
BENCH_STEPS=${2:-10}
DATA=/tmp/speedrun-synthetic

python3 -c 'import torch, triton, typer, rich; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0))'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv

echo "== kernel and model tests"
timeout 100 python3 -m pytest -q tests/test_kernels.py tests/test_model.py 2>&1 | tee "$OUT/tests.txt" | tail -15

echo "== synthetic shards"
timeout 60 python3 -m speedrun data synthetic --dir "$DATA" --train-shards 1 --tokens-per-shard 30000000 \
  2>&1 | tail -3

echo "== throughput benchmark"
timeout 240 python3 benchmarks/train_throughput.py --data-dir "$DATA" --steps "$BENCH_STEPS" --kernel-gain \
  ${BENCH_FLAGS:-} --json "$OUT/throughput.json" 2>&1 | tee "$OUT/throughput.txt" | grep -v "^W[0-9]" | tail -80

echo "== short training run"
timeout 180 python3 -m speedrun train --track small --steps "$TRAIN_STEPS" --val-every 20 --data-dir "$DATA" \
  --log-dir "$OUT/logs" 2>&1 | tee "$OUT/train.txt" | grep -v "train_time:.*step_avg" | tail -20
tail -4 "$OUT/train.txt"
