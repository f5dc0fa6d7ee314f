#!/bin/bash
# generate_sampling.sh CORE MODEL ADAPTER PROMPTS: seeded sampling through the verb gives the same
# sequences (both variants) alone on 1 thread and batched on 2 threads; another seed differs.
set -euo pipefail
core="$1" model="$2" adapter="$3" prompts="$4"
run() {
    "$core" generate --model "$model" --adapter "$adapter" --variants base,adapter --prompts "$prompts" \
        --max-new-tokens 20 --temperature 0.8 --top-k 50 --top-p 0.9 --repetition-penalty 1.2 --stop-tokens "" "$@" |
        grep '"event":"sequence"' | sed 's/"time":"[^"]*",//' | sort
}
a=$(run --seed 11 --batch-size 1 --threads 1)
b=$(run --seed 11 --batch-size 4 --threads 2)
c=$(run --seed 12 --batch-size 4 --threads 2)
[ "$(echo "$a" | wc -l)" = 10 ] || { echo "FAIL: expected 10 sequences"; echo "$a"; exit 1; }
[ "$a" = "$b" ] || { echo "FAIL: batch 1 / 1 thread and batch 4 / 2 threads differ"; diff <(echo "$a") <(echo "$b"); exit 1; }
[ "$a" != "$c" ] || { echo "FAIL: seeds 11 and 12 sample the same tokens"; exit 1; }
echo "ok: 10 sampled sequences identical at batch 1 / 1 thread and batch 4 / 2 threads; seed 12 differs"
