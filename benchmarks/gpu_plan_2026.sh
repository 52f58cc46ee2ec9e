#!/usr/bin/env bash
# GPU validation of the 2026-05 recipe (record 84's) and of the FlexAttention stand-in of Flash Attention 3, in
# stages that each fit one command of under 10 minutes on a fresh machine. None of it has run yet.
#
#   STAGE=tests   bash benchmarks/gpu_plan_2026.sh   # 1 GPU: GPU tests, then a 60-step run of ours
#   STAGE=versus  bash benchmarks/gpu_plan_2026.sh   # 2 GPUs: record 84 (stand-in) and ours side by side
#   STAGE=table   bash benchmarks/gpu_plan_2026.sh   # anywhere: the table from logs already in $OUT/versus
#
# RECORD_LOG: record 84's published log, copied into the working tree (it is not committed), by default
# benchmarks/record84.txt. STEPS (300) and VAL_EVERY (100) shorten both schedules the same way: STEPS scheduled
# steps, no extension. DEADLINE (555 s) stops both programs and keeps what they reached.
#
# Compile caches: inductor's and Triton's caches live in /tmp/speedrun-cache; at the end of a stage they are
# packed into $OUT/cache.tar.part-NN (15 MiB each, at most 4), and a stage starts by unpacking any parts it
# finds in gpu-cache/ (copy the parts of the previous command there and carry that folder).
set -uo pipefail
OUT=${OUT:-gpu-out}
STAGE=${STAGE:-tests}
STEPS=${STEPS:-300}
VAL_EVERY=${VAL_EVERY:-100}
DEADLINE=${DEADLINE:-555}
RECORD_LOG=${RECORD_LOG:-benchmarks/record84.txt}
DATA=/tmp/speedrun-versus-2026
CACHE=/tmp/speedrun-cache
mkdir -p "$OUT" "$CACHE"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NO_COLOR=1
export TORCHINDUCTOR_CACHE_DIR=$CACHE/inductor TRITON_CACHE_DIR=$CACHE/triton
started=$(date +%s)

# at most 8 files come back from a command, each under 16 MiB: logs go back as one archive per stage and the
# cache in at most 4 parts
if command -v zstd >/dev/null; then PACK="zstd -q -3 -T0" UNPACK="zstd -dc"; else PACK="gzip -1" UNPACK="gzip -dc"; fi

unpack_cache() {
  if ls gpu-cache/cache.tar.part-* >/dev/null 2>&1; then
    cat gpu-cache/cache.tar.part-* | $UNPACK | tar -x -C "$CACHE" && echo "compile cache: unpacked $(du -sh "$CACHE" | cut -f1)"
  fi
}

pack_cache() {
  (cd "$CACHE" && tar -c . | $PACK) | split -b 15M -d - "$OUT/cache.tar.part-"
  local parts
  parts=$(ls "$OUT"/cache.tar.part-* | wc -l)
  echo "compile cache: $(du -sh "$CACHE" | cut -f1) in $parts part(s) of $OUT"
  if [ "$parts" -gt 4 ]; then
    echo "compile cache too large to come back whole (over 4 parts): keeping the inductor cache only"
    rm -f "$OUT"/cache.tar.part-*
    (cd "$CACHE" && tar -c inductor | $PACK) | split -b 15M -d - "$OUT/cache.tar.part-"
  fi
}

pack_logs() {  # a folder of $OUT into one archive
  [ -d "$OUT/$1" ] && tar -czf "$OUT/$1.tar.gz" -C "$OUT" "$1" && rm -rf "${OUT:?}/$1"
}

python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0), torch.cuda.device_count(), "GPU(s)")'
unpack_cache

case $STAGE in
tests)
  echo "== GPU tests: the stand-in against its dense reference (bf16), FP8 paths, compiled against eager"
  timeout 200 python3 -m pytest -q -x tests/test_flash_flex.py tests/test_model_2026.py -k gpu 2>&1 |
    tee "$OUT/tests.txt" | tail -15
  echo "== synthetic shards"
  timeout 60 python3 -m speedrun data synthetic --dir "$DATA" --language zipf --train-shards 4 \
    --tokens-per-shard 25000000 --val-tokens 11534336 2>&1 | tail -1
  echo "== speedrun train --recipe 2026-05, 60 steps (compile and warmup, step time, peak memory)"
  mkdir -p "$OUT/ours-60"
  timeout $((540 - $(date +%s) + started)) python3 -m speedrun train --track small --recipe 2026-05 --steps 60 \
    --val-every 30 --data-dir "$DATA" --log-dir "$OUT/ours-60" 2>&1 | grep -v "^W[0-9]" >"$OUT/ours-60/out.txt"
  echo "exit status ${PIPESTATUS[0]}"
  grep -E "compile and warmup|val_loss|peak|Error|error" "$OUT/ours-60/out.txt" | tail -12
  tail -3 "$OUT/ours-60/out.txt"
  pack_logs ours-60
  ;;
versus)
  [ -f "$RECORD_LOG" ] || { echo "RECORD_LOG $RECORD_LOG not found: copy record 84's log into the tree"; exit 2; }
  echo "== record 84 (FlexAttention stand-in) and ours, $STEPS steps, validation every $VAL_EVERY"
  python3 benchmarks/versus_record.py --record-log "$RECORD_LOG" --recipe 2026-05 --attention flex \
    --steps "$STEPS" --val-every "$VAL_EVERY" --data-dir "$DATA" --out "$OUT/versus" \
    --deadline $((DEADLINE - $(date +%s) + started)) 2>&1 | tail -25
  grep -hE "Sampling steps|Resetting|compile and warmup|Error|error" "$OUT/versus/record.out" "$OUT/versus/ours.out" | head
  pack_logs versus
  ;;
table)  # from the versus.tar.gz of an earlier command, carried as gpu-cache/versus.tar.gz
  tar -xzf gpu-cache/versus.tar.gz -C "$OUT" && python3 benchmarks/versus_record.py --only table --out "$OUT/versus"
  exit
  ;;
esac
pack_cache
echo "stage $STAGE: $(($(date +%s) - started)) s"
