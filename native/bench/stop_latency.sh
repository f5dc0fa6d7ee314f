#!/bin/bash
# How long a trainer takes from SIGTERM to exit 130 with its checkpoint written: the time a
# preempted pod needs inside its grace period. stories260K (the golden copy of the real model),
# batch 128 in micro-batches of 4 (32 per optimizer step, alpaca-lora's accumulation), 1 thread;
# the signal lands at a random point of an optimizer step, TRIALS times. Prints a table.
#   stop_latency.sh BUILD_DIR [TRIALS]
set -u
B="$1"; TRIALS="${2:-5}"
SRC=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/lf-stop.XXXXXX")
trap 'rm -rf "$W"' EXIT
"$B/lf-devtool" shard --out "$W/train.lfs" --vocab 512 --records 2048 --min-len 64 --max-len 256 --prompt-mask --seed 1 >/dev/null || exit 1
now() { date +%s.%N; }
printf '| trial | optimizer step (s) | signal after (s) | signal -> exit (s) | exit | checkpoint |\n| --- | --- | --- | --- | --- | --- |\n'
for i in $(seq 1 "$TRIALS"); do
  rm -rf "$W/out"
  cat > "$W/run.json" <<JSON
{"version":1,"model_dir":"$SRC/tests/golden/v1/stories260k/model","train_shards":["$W/train.lfs"],"output_dir":"$W/out","threads":1,
 "lora":{"r":8,"alpha":16,"target_modules":["q_proj","k_proj","v_proj","o_proj"]},
 "training":{"epochs":1,"learning_rate":0.0003,"batch_size":128,"micro_batch_size":4,"seed":$i}}
JSON
  "$B/loraforge-core" train --config "$W/run.json" > "$W/log" 2>&1 &
  pid=$!
  until grep -q '"event":"step"' "$W/log"; do sleep 0.01; kill -0 $pid 2>/dev/null || break; done
  t1=$(now)
  until [ "$(grep -c '"event":"step"' "$W/log")" -ge 2 ]; do sleep 0.01; kill -0 $pid 2>/dev/null || break; done
  step_s=$(echo "$(now) - $t1" | bc)  # one optimizer step, the most the old trainer could need
  delay=$(awk -v s="$step_s" -v r="$RANDOM" 'BEGIN { printf "%.2f", s * (r % 100) / 100 }')
  sleep "$delay"
  ts=$(now); kill -TERM $pid; wait $pid; rc=$?; te=$(now)
  ck=$(ls "$W/out/checkpoints" 2>/dev/null | grep -m1 '^checkpoint-[0-9]*$' || echo none)
  printf '| %d | %.2f | %s | %.3f | %d | %s |\n' "$i" "$step_s" "$delay" "$(echo "$te - $ts" | bc)" "$rc" "$ck"
done
