#!/usr/bin/env bash
# One device session comparing the trainer against an earlier version of it, plus a short medium-track run.
#   bash benchmarks/gpu_compare.sh BEFORE_DIR [bench_steps] [medium_steps]
# BEFORE_DIR holds the earlier kernels.py, model.py and train_throughput.py; they are run from a copy of the
# tree. Each benchmark compiles cold (its own inductor and Triton caches). Writes everything under $OUT.
# STAGES picks stages (default: tests after medium before); BENCH_FLAGS adds options to the current benchmark.
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
BEFORE=$(realpath "${1:?usage: gpu_compare.sh BEFORE_DIR [bench_steps] [medium_steps]}")
BENCH_STEPS=${2:-10}
MEDIUM_STEPS=${3:-20}
STAGES=${STAGES:-tests after medium before}
DATA=/tmp/speedrun-synthetic
HERE=$(pwd)

python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0))'
timeout 60 env PYTHONPATH=. python3 -m speedrun data synthetic --dir "$DATA" --train-shards 1 \
  --tokens-per-shard 30000000 2>&1 | tail -1

bench() {  # name, tree, timeout, extra flags...
  local name=$1 tree=$2 limit=$3
  shift 3
  echo "== benchmark: $name"
  (cd "$tree" && timeout "$limit" env PYTHONPATH=. TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-$name \
    TRITON_CACHE_DIR=/tmp/triton-$name python3 benchmarks/train_throughput.py --data-dir "$DATA" \
    --steps "$BENCH_STEPS" --json "$OUT/$name.json" "$@" 2>&1 | grep -v "^W[0-9]" >"$OUT/$name.txt")
  grep -E "^(step_ms|tokens_per_s_per_gpu|mfu|peak_memory|compile_and_warmup_s|fp8_grad|cross_entropy)" "$OUT/$name.txt" \
    || tail -30 "$OUT/$name.txt"
}

for stage in $STAGES; do
  case $stage in
  tests)
    echo "== kernel and model tests"
    timeout 120 env PYTHONPATH=. python3 -m pytest -q -x tests/test_kernels.py tests/test_model.py 2>&1 |
      tee "$OUT/tests.txt" | tail -8
    ;;
  after)
    bench after "$HERE" 170 ${BENCH_FLAGS:-}
    ;;
  before)
    rm -rf /tmp/before && mkdir -p /tmp/before && cp -r "$HERE/speedrun" "$HERE/benchmarks" /tmp/before/
    cp "$BEFORE/kernels.py" "$BEFORE/model.py" /tmp/before/speedrun/trainer/
    cp "$BEFORE/train_throughput.py" /tmp/before/benchmarks/
    bench before /tmp/before 90
    ;;
  small | medium)
    echo "== speedrun train --track $stage --steps $MEDIUM_STEPS --val-every 10"
    timeout 200 env PYTHONPATH=. python3 -m speedrun train --track "$stage" --steps "$MEDIUM_STEPS" --val-every 10 \
      --data-dir "$DATA" --log-dir "$OUT/logs-$stage" 2>&1 | grep -v "^W[0-9]" >"$OUT/train-$stage.txt"
    echo "exit status ${PIPESTATUS[0]}"
    grep -E "val_loss|compile|peak|Error|error|recompil" "$OUT/train-$stage.txt" | tail -12
    tail -3 "$OUT/train-$stage.txt"
    ;;
  esac
done
