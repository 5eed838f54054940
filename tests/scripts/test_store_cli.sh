#!/usr/bin/env bash
# The capture store through the binary with real processes: two captures on one --out (the second is refused
# while the first completes and verifies), two --resume at once, readers kept out while a capture writes,
# `ls --no-verify`, and a user's file named like a shard that --resume must not delete.
set -uo pipefail
ACTCAP=${1:?usage: test_store_cli.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python json

MODEL="$DATA/reference/tiny-gpt2"
# Enough prompts for a capture of several seconds on the tiny model.
$PY -c "
import random
rng = random.Random(7)
words = 'the store is written by one capture at a time and read when it is complete'.split()
with open('$WORK/prompts.txt', 'w') as f:
    for _ in range(40000):
        f.write(' '.join(rng.choice(words) for _ in range(6)) + '\n')
"
ARGS=(capture --model "$MODEL" --prompts-file "$WORK/prompts.txt" --sites 'hidden_states.*' --positions last --quiet)
capture() { "$ACTCAP" "${ARGS[@]}" "$@"; }  # in the background, "$ACTCAP" "${ARGS[@]}" itself, so that $! is its pid
wait_for() { for _ in $(seq 600); do [[ -e $1 ]] && return 0; sleep 0.05; done; return 1; }
records_of() { $PY -c "import json,sys; print(sum(1 for _ in open(sys.argv[1] + '/records.jsonl')))" "$1"; }

# 1. A second capture (with --resume) while the first writes: refused, naming the first; the first completes.
S="$WORK/two"
"$ACTCAP" "${ARGS[@]}" --out "$S" >/dev/null 2>"$WORK/first.err" &
first=$!
wait_for "$S/manifest.json" || fail "the first capture never started its store"
expect_error "a second writer is refused" "the store is in use by a capture (pid $first)" "$WORK/none" capture --resume --out "$S"
expect_error "ls waits for the writer" "the store is being written by a capture (pid $first)" "$WORK/none" "$ACTCAP" ls "$S"
expect_error "verify waits for the writer" "being written" "$WORK/none" "$ACTCAP" verify "$S"
kill -0 "$first" 2>/dev/null || fail "the first capture ended before the checks (too fast a machine for this test?)"
if wait "$first"; then pass "the first capture completed"; else fail "the first capture failed: $(cat "$WORK/first.err")"; fi
"$ACTCAP" verify "$S" >"$WORK/verify.txt" 2>&1 && grep -q "^OK: .*: 40000 records" "$WORK/verify.txt" \
  && pass "verify: $(cat "$WORK/verify.txt")" || fail "verify after two writers: $(cat "$WORK/verify.txt")"

# 2. An interrupted capture, then two --resume at once: one resumes it, the other is refused.
R="$WORK/resumed"
"$ACTCAP" "${ARGS[@]}" --out "$R" >/dev/null 2>&1 &
victim=$!
wait_for "$R/manifest.json"
sleep 1
kill -9 "$victim"; wait "$victim" 2>/dev/null
"$ACTCAP" "${ARGS[@]}" --resume --out "$R" >/dev/null 2>"$WORK/a.err" & a=$!
"$ACTCAP" "${ARGS[@]}" --resume --out "$R" >/dev/null 2>"$WORK/b.err" & b=$!
wait "$a"; status_a=$?
wait "$b"; status_b=$?
if (( (status_a == 0) + (status_b == 0) == 1 )) && grep -qh "the store is in use by a capture" "$WORK/a.err" "$WORK/b.err"; then
  pass "two --resume at once: one ran, the other was refused: $(cat "$WORK/a.err" "$WORK/b.err")"
else
  fail "two --resume at once: exit $status_a and $status_b: $(cat "$WORK/a.err" "$WORK/b.err")"
fi
"$ACTCAP" verify "$R" >"$WORK/verify.txt" 2>&1 && [[ $(records_of "$R") == 40000 ]] \
  && pass "the resumed store verifies" || fail "resumed store: $(cat "$WORK/verify.txt")"
cmp -s "$S/shard-00000.safetensors" "$R/shard-00000.safetensors" && pass "resumed shard identical to an uninterrupted one" \
  || fail "the resumed store's shard differs from the uninterrupted one's"

# 3. A changed shard: ls refuses it naming the shard, ls --no-verify lists it.
$PY -c "
import sys
p = sys.argv[1] + '/shard-00000.safetensors'
b = bytearray(open(p, 'rb').read()); b[-9] ^= 1; open(p, 'wb').write(bytes(b))" "$S"
expect_error "ls checks the shards" "shard-00000.safetensors: SHA-256" "$WORK/none" "$ACTCAP" ls "$S"
"$ACTCAP" ls --no-verify "$S" >"$WORK/ls.txt" 2>&1 && grep -q "40000 records" "$WORK/ls.txt" \
  && pass "ls --no-verify lists it" || fail "ls --no-verify: $(cat "$WORK/ls.txt")"

# 4. --resume into a folder holding a user's file named like a shard, and no manifest: refused, file kept.
U="$WORK/user"
mkdir -p "$U"
echo "my own data" >"$U/shard-00000.safetensors"
expect_error "--resume leaves a user's file alone" "holds shard-00000.safetensors but no manifest.json" "$WORK/none" \
  capture --resume --out "$U"
[[ $(cat "$U/shard-00000.safetensors") == "my own data" ]] && pass "the user's file is intact" || fail "the user's file changed"

finish "store CLI: all passed"
