#!/bin/bash
# The CUDA toolchain for compiling the CUDA backend, from PyPI wheels (no system CUDA needed):
# nvcc + crt + nvvm, the runtime, cuBLAS and CCCL of one pinned CUDA series, installed with
# `pip install --target` into ~/.cache/loraforge/cuda-<series>-<hash of the pins>/ (built once,
# into a staging folder renamed into place, so an interrupted install is never used).
# Prints the CMake flags that select it, one per line:
#   cmake -S native -B native/build-cuda -DLORAFORGE_CUDA=ON $(native/cuda/toolchain.sh)
#
#   toolchain.sh [13.0]
# CUDA 13 no longer compiles for Volta (sm_70: `nvcc fatal: Unsupported gpu architecture`), and
# the CUDA 12 nvcc wheel (nvidia-cuda-nvcc-cu12) ships only ptxas, not nvcc: from PyPI, the
# oldest architecture that compiles is sm_75. A V100 build needs a CUDA 12.x nvcc from elsewhere.
set -euo pipefail
SERIES="${1:-13.0}"
case "$SERIES" in
  13.0) PINS="nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96
nvidia-cublas==13.0.2.14 nvidia-cuda-cccl==13.0.85" ;;
  *) echo "toolchain.sh: unknown CUDA series '$SERIES' (only 13.0)" >&2; exit 2 ;;
esac
PY="${PYTHON:-python3}"
KEY=$(printf '%s\n' "$PINS" | sha256sum | cut -c1-12)
ROOT="${LORAFORGE_CACHE:-$HOME/.cache/loraforge}/cuda-$SERIES-$KEY"
if [ ! -d "$ROOT" ]; then
  STAGE="$ROOT.staging.$$"
  rm -rf "$STAGE"
  echo "toolchain.sh: installing CUDA $SERIES wheels into $ROOT" >&2
  # shellcheck disable=SC2086
  "$PY" -m pip install --quiet --no-deps --no-compile --target "$STAGE/site" $PINS >&2
  # the wheels put each component under nvidia/cu13/ (13.x) or nvidia/<component>/ (12.x);
  # CMake's FindCUDAToolkit wants one root with bin/, include/, lib/: link them together
  mkdir -p "$STAGE/root/bin" "$STAGE/root/include" "$STAGE/root/lib64" "$STAGE/root/nvvm"
  for comp in "$STAGE"/site/nvidia/*/ "$STAGE"/site/nvidia/cu13/; do
    [ -d "$comp" ] || continue
    for d in bin include lib nvvm; do
      [ -d "$comp/$d" ] || continue
      case "$d" in lib) dst=lib64 ;; *) dst=$d ;; esac
      cp -rs "$comp/$d/." "$STAGE/root/$dst/" 2>/dev/null || true
    done
  done
  # unversioned .so links for the linker (the wheels ship only libfoo.so.N)
  for so in "$STAGE"/root/lib64/lib*.so.*; do
    base="${so%%.so.*}.so"
    [ -e "$base" ] || ln -s "$(basename "$so")" "$base"
  done
  chmod +x "$STAGE"/site/nvidia/*/bin/* "$STAGE"/site/nvidia/*/nvvm/bin/* 2>/dev/null || true
  # paths inside are absolute to the staging folder's site/: rebuild the links after the rename
  mv "$STAGE" "$ROOT"
  find "$ROOT/root" -type l -lname "$STAGE/*" | while read -r l; do
    t=$(readlink "$l"); ln -sfn "$ROOT${t#"$STAGE"}" "$l"
  done
fi
"$ROOT/root/bin/nvcc" --version >/dev/null || { echo "toolchain.sh: $ROOT/root/bin/nvcc does not run" >&2; exit 1; }
echo "-DCUDAToolkit_ROOT=$ROOT/root"
echo "-DCMAKE_CUDA_COMPILER=$ROOT/root/bin/nvcc"
