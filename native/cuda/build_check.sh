#!/bin/bash
# CI's compile check of the CUDA backend (no GPU needed, none used): the pinned CUDA 13.0
# toolchain from PyPI wheels (native/cuda/toolchain.sh, cached under ~/.cache/loraforge/), then
# the backend's sources (src/cuda/*.cu, target lfcuda) for sm_75, sm_80 and sm_90, with warnings
# as errors. Only the backend is compiled: the C++ core is the Release build's job.
# CUDA 13 does not compile for sm_70 (Volta); see toolchain.sh.
#   build_check.sh [JOBS]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
JOBS="${1:-2}"
t0=$(date +%s)
mapfile -t FLAGS < <("$SRC/cuda/toolchain.sh" 13.0)
t1=$(date +%s)
echo "== CUDA toolchain ready in $((t1 - t0)) s: ${FLAGS[*]}"
cmake -S "$SRC" -B "$SRC/build/ci-cuda" -DCMAKE_BUILD_TYPE=Release -DLORAFORGE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="75;80;90" -DCMAKE_CUDA_FLAGS="-Werror=all-warnings" "${FLAGS[@]}" > /dev/null
cmake --build "$SRC/build/ci-cuda" -j "$JOBS" --target lfcuda
echo "cuda build check (sm_75, sm_80, sm_90) passed in $(( $(date +%s) - t0 )) s (toolchain $((t1 - t0)) s)"
