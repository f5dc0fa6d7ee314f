#!/bin/bash
# The GPU check of the CUDA backend (issue 15): on a machine with one NVIDIA GPU (H100/H200
# class; about 8 minutes; nothing is downloaded: the CUDA toolkit (nvcc on PATH, $CUDA_HOME,
# /usr/local/cuda, or the wheels native/cuda/toolchain.sh cached), torch, transformers and peft
# must be there). From the repository root:
#
#   native/gpu/check.sh                 # build, op tests, goldens, benchmark table
#   native/gpu/check.sh --cpu-dry-run   # everything up to the GPU calls, on a CPU machine
#
# Steps: 1. build loraforge-core, test_ops and test_golden with the cuda backend for this GPU;
# 2. op tests, CUDA vs the f64/CPU reference, in fp32, fp16 and (cc >= 8.0) bf16, with per-op
# tolerances for the ops that read frozen fp16/bf16 tensors; 3. the goldens (transformers +
# PEFT values) on the GPU; 4. the benchmark: Llama-2-7B shape, random weights, LoRA r16 q,k,v,o,
# seq 512, micro-batch 4, bf16 and fp16, ours vs transformers + PEFT (SDPA); then the 13B shape
# in fp16 with gradient checkpointing, our peak memory. One table at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DRY=0
[ "${1:-}" = "--cpu-dry-run" ] && DRY=1
PY="${LORAFORGE_PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
BUILD="$ROOT/native/build-gpu"
WORK="${LORAFORGE_GPU_WORK:-/tmp/loraforge-gpu-check}"
t0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - t0 )) s] $*"; }

if [ $DRY = 1 ]; then
  # the CPU half: the benchmark driver end to end (model and shard writer, the core's bench verb,
  # the PEFT reference, the table) on a tiny shape, with the CPU build of the core
  CORE="${LORAFORGE_CORE:-$ROOT/native/build/loraforge-core}"
  [ -x "$CORE" ] || { echo "check.sh --cpu-dry-run: $CORE not built (cmake -S native -B native/build && cmake --build native/build)" >&2; exit 2; }
  step "benchmark driver, CPU dry run (tiny shape, fp32)"
  "$PY" "$ROOT/native/gpu/bench_gpu.py" --core "$CORE" --device cpu --shapes tiny --precisions fp32 \
    --steps 2 --warmup 1 --work "$WORK"
  echo "dry run passed in $(( $(date +%s) - t0 )) s"
  exit 0
fi

command -v nvidia-smi > /dev/null || { echo "check.sh: nvidia-smi not found: this is the GPU check (use --cpu-dry-run without one)" >&2; exit 2; }
NVCC=$(command -v nvcc || true)
for c in "${CUDA_HOME:-}/bin/nvcc" /usr/local/cuda/bin/nvcc "$HOME"/.cache/loraforge/cuda-13.0-*/root/bin/nvcc; do
  [ -n "$NVCC" ] && break
  [ -x "$c" ] && NVCC=$c
done
[ -n "$NVCC" ] || { echo "check.sh: no nvcc (PATH, CUDA_HOME, /usr/local/cuda, or native/cuda/toolchain.sh's cache): nothing is downloaded here" >&2; exit 2; }
CUDA_ROOT=$(cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd)
case "$NVCC" in */.cache/loraforge/*) CUDA_ROOT=$(cd "$(dirname "$NVCC")/.." && pwd) ;; esac
CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader -i 0 | head -1)
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv -i 0

step "build (nvcc $NVCC, architecture native = ${CC})"
cmake -S "$ROOT/native" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLORAFORGE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native \
  -DCUDAToolkit_ROOT="$CUDA_ROOT" -DCMAKE_CUDA_COMPILER="$NVCC" -DLORAFORGE_PYTHON="$PY" > /dev/null
cmake --build "$BUILD" -j "$(nproc)" --target loraforge-core test_ops test_golden > /dev/null
"$BUILD/loraforge-core" backends

fail=0
mkdir -p "$WORK"
step "op tests: cuda vs the f64 reference"
PRECS="fp32 fp16"
[ "${CC%%.*}" -ge 8 ] && PRECS="$PRECS bf16"
for p in $PRECS; do
  echo "-- precision $p"
  "$BUILD/test_ops" test -b cuda -p "$p" > "$WORK/ops-$p.log" 2>&1 || { echo "op tests ($p) FAILED: $WORK/ops-$p.log"; fail=1; }
  grep -E "FAIL|skipped|passed|failed" "$WORK/ops-$p.log" || true
done

step "goldens (transformers + PEFT values) on the GPU"
for d in "$ROOT"/native/tests/golden/v1/*/; do
  "$BUILD/test_golden" --backend cuda "$d" || fail=1
done

step "benchmark: 7B shape, bf16 and fp16, ours vs transformers + PEFT"
"$PY" "$ROOT/native/gpu/bench_gpu.py" --core "$BUILD/loraforge-core" --shapes 7b --precisions bf16,fp16 \
  --steps 6 --warmup 2 --work "$WORK" 2> "$WORK/bench-7b.jsonl" | tee "$WORK/table-7b.txt" || fail=1
rm -rf "$WORK/model-7b"
step "13B shape, fp16, gradient checkpointing: peak memory (ours)"
"$PY" "$ROOT/native/gpu/bench_gpu.py" --core "$BUILD/loraforge-core" --shapes 13b --precisions fp16 \
  --checkpointing --memory-only --steps 2 --warmup 1 --work "$WORK" 2> "$WORK/bench-13b.jsonl" | tee "$WORK/table-13b.txt" || fail=1
rm -rf "$WORK/model-13b"
echo
echo "GPU check finished in $(( $(date +%s) - t0 )) s: $([ $fail = 0 ] && echo passed || echo FAILED)"
exit $fail
