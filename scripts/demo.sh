#!/usr/bin/env bash
# Installs, builds, and captures the activations of the bundled demo model (a tiny GPT-2 with the real
# GPT-2 tokenizer) for one prompt, printing what it generated.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
rm -rf out/demo  # the demo's own output from an earlier run
build/actcap capture --model tests/data/reference/tiny-gpt2 --prompt "Hello world" --max-new-tokens 8 \
  --sites all --out out/demo
echo "activations written to out/demo/"
