#!/bin/bash
# CI build checks besides the Release build `npm test` makes (native/build):
#  1. Debug compiles (the core library and loraforge-core): the ISA flags are in every build type.
#  2. A RelWithDebInfo build with AddressSanitizer + UndefinedBehaviorSanitizer
#     (-DLORAFORGE_SANITIZE=ON; so RelWithDebInfo compiles too) runs the core's C++ tests that
#     take seconds: ops, golden_* (forward, gradients, 10 optimizer steps vs PEFT), model_*
#     (gradcheck, merge), bad_* / numerics_* (every refused input), fuzz_replay_* (the seed
#     corpora and their prefixes) and determinism_resume (kill/SIGTERM/resume, threads 1 and 2).
#     Left out: the Python checks (they run the Release core) and the libFuzzer and stories260K
#     runs (minutes under ASan; the fuzzers are ASan+UBSan builds already).
#   build_checks.sh [JOBS]
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
JOBS="${1:-2}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
t0=$(date +%s)
echo "== Debug: configure + build loraforge-core"
cmake -S "$SRC" -B "$SRC/build/ci-debug" -DCMAKE_BUILD_TYPE=Debug > /dev/null
cmake --build "$SRC/build/ci-debug" -j "$JOBS" --target loraforge-core
echo "== RelWithDebInfo + ASan + UBSan: build, C++ tests"
cmake -S "$SRC" -B "$SRC/build/ci-sanitize" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLORAFORGE_SANITIZE=ON > /dev/null
cmake --build "$SRC/build/ci-sanitize" -j "$JOBS"
ctest --test-dir "$SRC/build/ci-sanitize" --output-on-failure -j "$JOBS" \
  -R '^(ops|golden_(stories260k|mha_untied_all7|llama3_rope|gqa_bf16_sharded)|model_.*|bad_.*|numerics_.*|fuzz_replay_.*|determinism_resume)$'
echo "build checks passed in $(( $(date +%s) - t0 )) s"
