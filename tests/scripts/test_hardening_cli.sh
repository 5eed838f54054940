#!/usr/bin/env bash
# Hostile or mistaken inputs given to the CLI: each must end with one clear error line and a non-zero exit,
# quickly and without exhausting the machine (--threads 100000 used to start 32k threads and deadlock;
# detokenize of an unknown id printed nothing and succeeded; a chat template's range(1e9) took 3.4 GB).
set -uo pipefail
ACTCAP=${1:?usage: test_hardening_cli.sh ACTCAP}
source "$(dirname "$0")/common.sh"
M=$ACTCAP_TEST_DATA/reference/tiny-gpt2

expect_error "detokenize unknown id" "token id 99999 is not in the vocabulary (" "$WORK/none" \
  "$ACTCAP" detokenize --model "$M" 15496,99999
printf '[15496]\n[99999]\n' >"$WORK/ids.jsonl"
expect_error "detokenize --jsonl unknown id" "$WORK/ids.jsonl:2: token id 99999 is not in the vocabulary" "$WORK/none" \
  "$ACTCAP" detokenize --model "$M" --jsonl "$WORK/ids.jsonl"
[[ $("$ACTCAP" detokenize --model "$M" 15496,995) == "Hello world" ]] && pass "detokenize known ids" ||
  fail "detokenize 15496,995 did not print Hello world"

expect_error "capture --threads 100000" "thread count 100000 is out of range" "$WORK/threads" \
  timeout 60 "$ACTCAP" capture --model "$M" --prompt "Hi" --threads 100000 --quiet --out "$WORK/threads"
expect_error "capture --threads -3" "thread count -3" "$WORK/threads" \
  timeout 60 "$ACTCAP" capture --model "$M" --prompt "Hi" --threads -3 --quiet --out "$WORK/threads"

echo '[{"role": "user", "content": "hi"}]' >"$WORK/messages.json"
echo '{"chat_template": "{% for i in range(1000000000) %}x{% endfor %}"}' >"$WORK/range_config.json"
expect_error "chat-template range(1e9)" "range() exceeds the limit of 100000 items" "$WORK/none" \
  timeout 60 "$ACTCAP" chat-template --tokenizer-config "$WORK/range_config.json" --messages-file "$WORK/messages.json"
echo '{"chat_template": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"}' >"$WORK/macro_config.json"
expect_error "chat-template recursive macro" "Recursion too deep" "$WORK/none" \
  timeout 60 "$ACTCAP" chat-template --tokenizer-config "$WORK/macro_config.json" --messages-file "$WORK/messages.json"

finish "hardening CLI tests passed"
