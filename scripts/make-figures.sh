#!/usr/bin/env bash
# Regenerates the README's figures of `compare`, `stats` and `concept` from the bundled demo model
# (tests/data/reference/tiny-gpt2): docs/images/compare.png (two prompts that differ in two words),
# docs/images/stats.png (the reference prompts) and docs/images/concept.png (the built-in honesty concept).
# Uses build/actcap (built if missing) or $ACTCAP. (scripts/readme-report-figure.sh makes the report's.)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ACTCAP=${ACTCAP:-$ROOT/build/actcap}
if [[ ! -x $ACTCAP ]]; then
  cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$ROOT/build" -j2 --target actcap
fi
MODEL=$ROOT/tests/data/reference/tiny-gpt2
IMAGES=$ROOT/docs/images
mkdir -p "$IMAGES"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"  # short store names in the figures' titles

"$ACTCAP" capture --quiet --model "$MODEL" --prompt "The cat sat on the mat" --sites all --out cat
"$ACTCAP" capture --quiet --model "$MODEL" --prompt "The dog sat on the rug" --sites all --out dog
"$ACTCAP" compare cat dog --allow-different-tokens --sites 'hidden_states.*' 'blocks.*.ln1.hook_normalized' \
  'blocks.*.hook_attn_out' 'blocks.*.hook_mlp_out' 'blocks.*.mlp.hook_post' --plot "$IMAGES/compare.png"

"$ACTCAP" capture --quiet --model "$MODEL" --prompt "Hello world" --max-new-tokens 8 \
  --prompt "Explain verifiable inference in one paragraph." --sites all --out demo
"$ACTCAP" stats demo --sites 'hidden_states.*' 'blocks.*.ln1.hook_normalized' 'blocks.*.hook_attn_out' \
  'blocks.*.hook_mlp_out' 'blocks.*.mlp.hook_post' --plot "$IMAGES/stats.png" >/dev/null
"$ACTCAP" concept --quiet --model "$MODEL" --concept honesty --max-samples 64 --out honesty >/dev/null
cp honesty/concept.png "$IMAGES/concept.png"
ls -l "$IMAGES/compare.png" "$IMAGES/stats.png" "$IMAGES/concept.png"
