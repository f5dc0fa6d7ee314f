#!/bin/bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a short time.
#   run_fuzzers.sh SEED_DIR [SECONDS] [TARGETS]   (SEED_DIR: files from `lf-devtool bad-inputs`)
#   FUZZ_RUNS=N: run each target for N executions (the 10M-run campaign, README.md); a SECONDS > 0
#   caps each target's time as well. FUZZ_WORK=DIR keeps the work directory (and its corpora).
# Exit 0 when no target found a crash; crash reproducers are left in the work directory.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
SEEDS="$1"; SECS="${2:-20}"; TARGETS="${3:-safetensors shard config run}"
CXX=$(command -v clang++-14 || command -v clang++ || true)
[ -n "$CXX" ] || { echo "clang++ not found (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
W="${FUZZ_WORK:-$(mktemp -d /tmp/lf-fuzz.XXXXXX)}"
mkdir -p "$W/obj"
flags="-std=c++17 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -I$SRC/src"
objs=""
for s in error json fsutil safetensors shard model_dir run_config lora; do  # the parsers, compiled once
  "$CXX" $flags -c "$SRC/src/$s.cpp" -o "$W/obj/$s.o"
  objs="$objs $W/obj/$s.o"
done
for t in $TARGETS; do
  "$CXX" $flags -fsanitize=fuzzer "$SRC/fuzz/fuzz_$t.cpp" $objs -o "$W/fuzz_$t"
  mkdir -p "$W/corpus_$t"
done
seed() {  # seed TARGET FILES...: copy into the target's corpus
  local t="$1" i=0; shift
  for f in "$@"; do i=$((i+1)); cp "$f" "$W/corpus_$t/seed$i"; done
}
seed safetensors $(find "$SEEDS" -name '*.safetensors' -size -64k)
i=0; for f in $(find "$SEEDS" -name '*.lfs'); do i=$((i+1)); { printf '\001'; head -c -4 "$f"; } > "$W/corpus_shard/seed$i"; done
seed config $(find "$SEEDS" -name config.json)
seed run $(find "$SEEDS" -name 'run-*.json')
for t in $TARGETS; do
  if [ -n "${FUZZ_RUNS:-}" ]; then  # SECONDS > 0 still caps the time
    limit="-runs=$FUZZ_RUNS"; [ "$SECS" -gt 0 ] && limit="$limit -max_total_time=$SECS"; echo "== fuzz_$t for $FUZZ_RUNS runs (at most ${SECS}s; 0: no limit)"
  else limit="-max_total_time=$SECS"; echo "== fuzz_$t for ${SECS}s"; fi
  start=$(date +%s)
  (cd "$W" && ./fuzz_$t $limit -max_len=65536 -print_final_stats=1 "corpus_$t" > "fuzz_$t.log" 2>&1) || true
  grep -E "^Done|number_of_executed_units|peak_rss_mb|ERROR|SUMMARY" "$W/fuzz_$t.log" || tail -20 "$W/fuzz_$t.log"
  echo "fuzz_$t: $(( $(date +%s) - start )) s"
  if ls "$W"/crash-* "$W"/leak-* "$W"/timeout-* >/dev/null 2>&1; then echo "fuzz_$t found a problem: $(ls "$W"/crash-* "$W"/leak-* "$W"/timeout-* 2>/dev/null)"; exit 1; fi
done
echo "no crashes"
