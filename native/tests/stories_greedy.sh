#!/bin/bash
# The real model end to end: lf-devtool converts llama2.c's stories260K.bin to an HF directory,
# and `loraforge-core logits` over the expected greedy continuation (64 tokens from BOS, computed
# independently in fp64 and matching llama2.c run.c) must predict every next token.
#   stories_greedy.sh BUILD_DIR ASSET_DIR
set -eu
B="$1"; A="$2"
W=$(mktemp -d "${TMPDIR:-/tmp}/lf-stories.XXXXXX"); trap 'rm -rf "$W"' EXIT
"$B/lf-devtool" convert-llama2c --bin "$A/stories260K.bin" --out "$W/model"
ids=$(tr -d ' \n' < "$A/expected_greedy.json" | sed 's/.*"greedy_token_ids_from_bos_64":\[\([0-9,]*\)\].*/\1/')
out=$("$B/loraforge-core" logits --model "$W/model" --tokens "$ids")
argmax=$(echo "$out" | sed 's/.*"argmax":\[\([0-9,]*\)\].*/\1/')
want=$(echo "$ids" | cut -d, -f2-)
got=$(echo "$argmax" | rev | cut -d, -f2- | rev)
[ "$want" = "$got" ] || { echo "FAIL: greedy tokens differ"; echo "want $want"; echo "got  $got"; exit 1; }
echo "ok: all 63 greedy next tokens of stories260K match; loss $(echo "$out" | sed 's/.*"loss":\([0-9.e-]*\).*/\1/') nats/token"
