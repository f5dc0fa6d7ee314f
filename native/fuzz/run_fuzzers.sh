#!/bin/bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a short time.
#   run_fuzzers.sh SEED_DIR [SECONDS]     (SEED_DIR: files from `lf-devtool bad-inputs`)
# Exit 0 when no target found a crash; crash reproducers are left in the work directory.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
SEEDS="$1"; SECS="${2:-20}"
CXX=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$CXX" ] || { echo "clang++ not found (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
W="${FUZZ_WORK:-$(mktemp -d /tmp/lf-fuzz.XXXXXX)}"
mkdir -p "$W"
common="$SRC/src/error.cpp $SRC/src/json.cpp $SRC/src/fsutil.cpp $SRC/src/safetensors.cpp $SRC/src/shard.cpp"
for t in safetensors shard; do
  "$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$SRC/src" \
    "$SRC/fuzz/fuzz_$t.cpp" $common -o "$W/fuzz_$t"
  mkdir -p "$W/corpus_$t"
done
i=0; for f in $(find "$SEEDS" -name '*.safetensors' -size -64k); do i=$((i+1)); cp "$f" "$W/corpus_safetensors/seed$i"; done
i=0; for f in $(find "$SEEDS" -name '*.lfs'); do i=$((i+1)); { printf '\001'; head -c -4 "$f"; } > "$W/corpus_shard/seed$i"; done
for t in safetensors shard; do
  echo "== fuzz_$t for ${SECS}s"
  (cd "$W" && ./fuzz_$t -max_total_time="$SECS" -max_len=65536 -print_final_stats=1 "corpus_$t" 2>&1 | tail -4)
  if ls "$W"/crash-* "$W"/leak-* "$W"/timeout-* >/dev/null 2>&1; then echo "fuzz_$t found a problem: $(ls "$W"/crash-* "$W"/leak-* "$W"/timeout-* 2>/dev/null)"; exit 1; fi
done
echo "no crashes"
