#!/bin/bash
# Determinism and resume (CPU): same seed -> bit-identical adapters; a run killed with SIGKILL
# mid-training and resumed -> the same final adapter, bit for bit, as an uninterrupted run;
# SIGTERM -> checkpoint, exit 130, resumable, also when it comes between micro-batches.
#   determinism.sh BUILD_DIR
set -u
B="$1"
CORE="$B/loraforge-core"
W=$(mktemp -d "${TMPDIR:-/tmp}/lf-determinism.XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$B/lf-devtool" random-model --out "$W/model" --dim 64 --hidden 128 --layers 3 --heads 4 --kv-heads 2 --vocab 256 --seed 3 || fail devtool
"$B/lf-devtool" shard --out "$W/train.lfs" --vocab 256 --records 96 --min-len 16 --max-len 64 --prompt-mask --seed 4 || fail devtool
"$B/lf-devtool" shard --out "$W/val.lfs" --vocab 256 --records 8 --min-len 16 --max-len 32 --seed 5 || fail devtool

THREADS=1  # the runs compared bit for bit use the same thread count; see also the threads=2 pair below
run_json() {  # out_dir seed save_steps
  cat > "$W/run-$(basename "$1").json" <<JSON
{"version":1,"model_dir":"$W/model","train_shards":["$W/train.lfs"],"val_shards":["$W/val.lfs"],
 "output_dir":"$1","threads":$THREADS,
 "lora":{"r":8,"alpha":16,"dropout":0.1,"target_modules":["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]},
 "training":{"epochs":3,"learning_rate":0.003,"batch_size":8,"micro_batch_size":4,"warmup_steps":3,"seed":$2,"shuffle":true},
 "intervals":{"eval_steps":10,"save_steps":$3,"save_total_limit":2}}
JSON
  echo "$W/run-$(basename "$1").json"
}

# 1. same seed twice -> identical adapters; another seed -> different
"$CORE" train --config "$(run_json "$W/a" 7 0)" > "$W/a.log" 2>&1 || fail "run a: $(tail -3 "$W/a.log")"
"$CORE" train --config "$(run_json "$W/b" 7 0)" > "$W/b.log" 2>&1 || fail "run b"
"$CORE" train --config "$(run_json "$W/c" 8 0)" > "$W/c.log" 2>&1 || fail "run c"
cmp -s "$W/a/final/adapter_model.safetensors" "$W/b/final/adapter_model.safetensors" || fail "same seed gave different adapters"
echo "ok: same seed -> bit-identical adapter ($(grep -c '"event":"step"' "$W/a.log") steps, dropout 0.1, shuffle)"
cmp -s "$W/a/final/adapter_model.safetensors" "$W/c/final/adapter_model.safetensors" && fail "different seeds gave the same adapter"
echo "ok: another seed -> a different adapter"
THREADS=2
"$CORE" train --config "$(run_json "$W/a2" 7 0)" > "$W/a2.log" 2>&1 || fail "run a2"
"$CORE" train --config "$(run_json "$W/b2" 7 0)" > "$W/b2.log" 2>&1 || fail "run b2"
cmp -s "$W/a2/final/adapter_model.safetensors" "$W/b2/final/adapter_model.safetensors" || fail "same seed, 2 threads: different adapters"
echo "ok: same seed with 2 threads -> bit-identical adapter (reductions do not depend on thread timing)"
THREADS=1

# 2. SIGKILL mid-training, then resume
cfg=$(run_json "$W/k" 7 5)
"$CORE" train --config "$cfg" > "$W/k1.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  grep -q '"event":"step","time":"[^"]*","step":12,' "$W/k1.log" && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -9 $pid 2>/dev/null || fail "the run finished before it could be killed"
wait $pid 2>/dev/null
last=$(grep -c '"event":"step"' "$W/k1.log")
[ -e "$W/k/final" ] && fail "killed run left a final adapter"
"$CORE" train --config "$cfg" > "$W/k2.log" 2>&1 || fail "resume failed: $(tail -3 "$W/k2.log")"
grep -q '"resumed_from_step":\(10\|15\|20\)' "$W/k2.log" || fail "resume did not start from a checkpoint: $(head -1 "$W/k2.log")"
cmp -s "$W/a/final/adapter_model.safetensors" "$W/k/final/adapter_model.safetensors" || fail "killed+resumed adapter differs from the uninterrupted one"
echo "ok: SIGKILL after $last steps, resumed from step $(grep -o '"resumed_from_step":[0-9]*' "$W/k2.log" | cut -d: -f2) -> bit-identical final adapter"
n=$(ls "$W/k/checkpoints" | grep -c '^checkpoint-[0-9]*$')
[ "$n" -le 2 ] || fail "save_total_limit 2 but $n checkpoints kept"
echo "ok: $n checkpoints kept (save_total_limit 2)"

# 3. SIGTERM -> checkpoint + exit 130, then resume to the same adapter
cfg=$(run_json "$W/t" 7 0)
: > "$W/t1.log"
"$CORE" train --config "$cfg" > "$W/t1.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  grep -q '"event":"step","time":"[^"]*","step":4' "$W/t1.log" && break
  sleep 0.05
done
kill -TERM $pid
wait $pid; rc=$?
[ "$rc" = 130 ] || fail "SIGTERM exit code $rc, expected 130"
grep -q '"kind":"interrupted"' "$W/t1.log" || fail "no interrupted error event"
ls "$W/t/checkpoints" | grep -q '^checkpoint-[0-9]*$' || fail "no checkpoint after SIGTERM"
"$CORE" train --config "$cfg" > "$W/t2.log" 2>&1 || fail "resume after SIGTERM failed"
cmp -s "$W/a/final/adapter_model.safetensors" "$W/t/final/adapter_model.safetensors" || fail "SIGTERM+resume adapter differs"
echo "ok: SIGTERM -> exit 130 with a checkpoint; resumed -> bit-identical final adapter"

# 3b. SIGTERM between the micro-batches of an optimizer step (8 per step here): the stop is taken
# after the micro-batch, not the step; the partial accumulation is dropped, the checkpoint is the
# state after the last completed step, and the resumed run ends bit-identical. Both trainer paths:
# one thread (one model) and two replicas (DataParallel of 2). The test hook raises SIGTERM in the
# process once its 13th micro-batch is done: 5th of step 2 (0-based 1), so checkpoint-1.
for THREADS in 1 2; do
  mid_json() {  # out_dir
    cat > "$W/run-$(basename "$1").json" <<JSON
{"version":1,"model_dir":"$W/model","train_shards":["$W/train.lfs"],"output_dir":"$1","threads":$THREADS,
 "lora":{"r":4,"alpha":8,"dropout":0.1,"target_modules":["q_proj","v_proj","down_proj"]},
 "training":{"epochs":1,"learning_rate":0.003,"batch_size":16,"micro_batch_size":2,"warmup_steps":1,"seed":11}}
JSON
    echo "$W/run-$(basename "$1").json"
  }
  "$CORE" train --config "$(mid_json "$W/mref$THREADS")" > "$W/mref$THREADS.log" 2>&1 || fail "run mref$THREADS"
  cfg=$(mid_json "$W/mid$THREADS")
  LORAFORGE_TEST_SIGTERM_AFTER_MICRO_BATCH=13 "$CORE" train --config "$cfg" > "$W/mid$THREADS-1.log" 2>&1; rc=$?
  [ "$rc" = 130 ] || fail "threads $THREADS: SIGTERM after micro-batch 13: exit code $rc, expected 130"
  grep -q '"kind":"interrupted"' "$W/mid$THREADS-1.log" || fail "threads $THREADS: no interrupted error event"
  steps=$(grep -c '"event":"step"' "$W/mid$THREADS-1.log")
  [ "$steps" = 1 ] || fail "threads $THREADS: $steps optimizer steps done, expected 1 (the stop must not wait for step 2's other micro-batches)"
  [ "$(ls "$W/mid$THREADS/checkpoints")" = "checkpoint-1" ] || fail "threads $THREADS: checkpoints $(ls "$W/mid$THREADS/checkpoints"), expected checkpoint-1"
  grep -q '"event":"checkpoint","time":"[^"]*","step":1,' "$W/mid$THREADS-1.log" || fail "threads $THREADS: no checkpoint event for step 1"
  "$CORE" train --config "$cfg" > "$W/mid$THREADS-2.log" 2>&1 || fail "threads $THREADS: resume after mid-step SIGTERM failed: $(tail -3 "$W/mid$THREADS-2.log")"
  grep -q '"resumed_from_step":1' "$W/mid$THREADS-2.log" || fail "threads $THREADS: did not resume from step 1"
  cmp -s "$W/mref$THREADS/final/adapter_model.safetensors" "$W/mid$THREADS/final/adapter_model.safetensors" ||
    fail "threads $THREADS: mid-step SIGTERM + resume: final adapter differs from the uninterrupted run"
  echo "ok: threads $THREADS: SIGTERM after micro-batch 13 (mid step 2 of 6) -> exit 130 with checkpoint-1; resumed -> bit-identical final adapter"
done
THREADS=1
# a stop after a step's last micro-batch lets that step finish: 16 = the 8th of step 2 -> checkpoint-2
cfg=$(mid_json "$W/last")
LORAFORGE_TEST_SIGTERM_AFTER_MICRO_BATCH=16 "$CORE" train --config "$cfg" > "$W/last1.log" 2>&1; rc=$?
[ "$rc" = 130 ] && [ "$(ls "$W/last/checkpoints")" = "checkpoint-2" ] || fail "SIGTERM after a step's last micro-batch: exit $rc, checkpoints $(ls "$W/last/checkpoints" 2>/dev/null)"
"$CORE" train --config "$cfg" > "$W/last2.log" 2>&1 || fail "resume after checkpoint-2 failed"
cmp -s "$W/mref1/final/adapter_model.safetensors" "$W/last/final/adapter_model.safetensors" || fail "stop after a step's last micro-batch + resume: adapter differs"
echo "ok: SIGTERM after the last micro-batch of step 2 -> that step completes, checkpoint-2; resumed -> bit-identical"

# 3c. a stop between scheduled saves (save_steps 5; the stop after step 7 writes checkpoint-7, off
# the schedule): the resumed run reports checkpoint-10's train loss over its whole window (steps
# 6-10, as uninterrupted), the stop checkpoint goes once checkpoint-10 exists and never counts
# against save_total_limit, so the run ends with the uninterrupted run's checkpoints, bit for bit.
cfg=$(run_json "$W/sref" 7 5)
"$CORE" train --config "$cfg" > "$W/sref.log" 2>&1 || fail "run sref"
cfg=$(run_json "$W/s" 7 5)
LORAFORGE_TEST_SIGTERM_AFTER_MICRO_BATCH=14 "$CORE" train --config "$cfg" > "$W/s1.log" 2>&1; rc=$?
[ "$rc" = 130 ] || fail "SIGTERM after micro-batch 14: exit $rc, expected 130"
[ "$(ls "$W/s/checkpoints" | tr '\n' ' ')" = "checkpoint-5 checkpoint-7 " ] || fail "after the stop: checkpoints $(ls "$W/s/checkpoints" | tr '\n' ' '), expected checkpoint-5 checkpoint-7"
"$CORE" train --config "$cfg" > "$W/s2.log" 2>&1 || fail "resume from the stop checkpoint failed: $(tail -3 "$W/s2.log")"
grep -q '"resumed_from_step":7' "$W/s2.log" || fail "did not resume from checkpoint-7"
loss10() { grep -o '"event":"checkpoint","time":"[^"]*","step":10,[^}]*' "$1" | grep -o '"train_loss":[^,}]*'; }
[ -n "$(loss10 "$W/sref.log")" ] && [ "$(loss10 "$W/sref.log")" = "$(loss10 "$W/s2.log")" ] ||
  fail "checkpoint-10 train loss: uninterrupted $(loss10 "$W/sref.log"), resumed $(loss10 "$W/s2.log")"
[ "$(ls "$W/s/checkpoints")" = "$(ls "$W/sref/checkpoints")" ] || fail "checkpoints at the end: $(ls "$W/s/checkpoints" | tr '\n' ' ') vs uninterrupted $(ls "$W/sref/checkpoints" | tr '\n' ' ')"
for c in $(ls "$W/sref/checkpoints"); do
  cmp -s "$W/sref/checkpoints/$c/adapter_model.safetensors" "$W/s/checkpoints/$c/adapter_model.safetensors" || fail "$c differs from the uninterrupted run's"
done
cmp -s "$W/sref/final/adapter_model.safetensors" "$W/s/final/adapter_model.safetensors" || fail "stop between saves + resume: final adapter differs"
echo "ok: SIGTERM between scheduled saves -> checkpoint-7 kept only until checkpoint-10; checkpoint-10's train loss, the kept checkpoints ($(ls "$W/s/checkpoints" | tr '\n' ' ')) and the final adapter equal the uninterrupted run's"

# 4. a checkpoint from another run.json is refused
sed -e 's/"learning_rate":0.003/"learning_rate":0.004/' "$cfg" > "$W/other.json"
"$CORE" train --config "$W/other.json" > "$W/o.log" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q "different run.json" "$W/o.log" || fail "checkpoint of another config not refused (rc $rc)"
echo "ok: a checkpoint made with a different run.json is refused (exit 2)"
