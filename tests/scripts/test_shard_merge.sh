#!/usr/bin/env bash
# capture --shard K/N + merge: the merged store equals a single-process capture (records.jsonl byte for byte,
# every record's tensors bit for bit, through an independent reader) and passes verify, in both layouts; parts
# given in any order; empty parts; a part killed mid-run and resumed; and merge's refusals (a part missing,
# given twice, from another job, incomplete, not a part; an existing --out), each one line, nothing left behind.
set -uo pipefail
ACTCAP=${1:?usage: test_shard_merge.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python json numpy
COMPARE="$PY ${ACTCAP_SOURCE_DIR}/tests/scale/compare_stores.py"

MODEL="$DATA/reference/tiny-gpt2"
$PY -c "
import random
rng = random.Random(3)
words = 'parts of one capture merge into the store a single process writes bit for bit'.split()
with open('$WORK/p.txt', 'w') as f:
    for i in range(23):
        f.write(' '.join(rng.choice(words) for _ in range(1 + rng.randrange(12))) + '\n')
"
capture() { "$ACTCAP" capture --model "$MODEL" --prompts-file "$WORK/p.txt" --max-new-tokens 4 --quiet "$@"; }
same() {  # NAME A B: equal through the reader, and the merged one verifies
  local problem
  if ! problem=$($COMPARE "$2" "$3" 2>&1); then fail "$1: $problem"
  elif ! "$ACTCAP" verify "$3" >/dev/null 2>&1; then fail "$1: verify: $("$ACTCAP" verify "$3" 2>&1)"
  elif ! cmp -s "$2/records.jsonl" "$3/records.jsonl"; then fail "$1: records.jsonl differs"
  else pass "$1: $problem, verify OK"; fi
}

# 1. per_record, fp32, shards holding several records: 3 parts, merged in shuffled order.
OPTS=(--sites all --shard-size 300KB)
capture "${OPTS[@]}" --out "$WORK/single" || fail "single capture"
for k in 0 1 2; do capture "${OPTS[@]}" --shard $k/3 --out "$WORK/part$k" || fail "part $k"; done
"$ACTCAP" merge "$WORK/part2" "$WORK/part0" "$WORK/part1" --out "$WORK/merged" >"$WORK/merge.txt" 2>&1 \
  || fail "merge: $(cat "$WORK/merge.txt")"
grep -q "merged 3 parts .*23 records" "$WORK/merge.txt" || fail "merge summary: $(cat "$WORK/merge.txt")"
same "per_record 3 parts" "$WORK/single" "$WORK/merged"
[[ $(stat -c %h "$WORK/merged/shard-00000.safetensors") == 2 ]] && pass "shards are hard links" \
  || fail "shard not hard-linked"
# The parts hold contiguous slices, balanced by tokens (prompt + new tokens), and say so.
$PY - "$WORK" <<'PY' || fail "part manifests"
import json, sys
parts = [json.load(open(f"{sys.argv[1]}/part{k}/manifest.json"))["part"] for k in range(3)]
assert [p["records"] for p in parts][0][0] == 0 and parts[-1]["records"][1] == 23, parts
assert all(a["records"][1] == b["records"][0] for a, b in zip(parts, parts[1:])), parts
assert len({p["job_sha256"] for p in parts}) == 1 and all(p["count"] == 3 and p["total_records"] == 23 for p in parts)
PY

# Across filesystems the shards are copied (by the kernel), with the same result.
OTHER=$(mktemp -d -p /dev/shm 2>/dev/null)
if [[ -n $OTHER && $(stat -c %d "$OTHER") != $(stat -c %d "$WORK") ]]; then
  "$ACTCAP" merge "$WORK/part0" "$WORK/part1" "$WORK/part2" --out "$OTHER/merged" >"$WORK/copy.txt" 2>&1 \
    || fail "merge across filesystems: $(cat "$WORK/copy.txt")"
  grep -q "(0 linked, [1-9][0-9]* copied)" "$WORK/copy.txt" || fail "merge across filesystems: $(cat "$WORK/copy.txt")"
  same "merged across filesystems (copied)" "$WORK/single" "$OTHER/merged"
fi
[[ -n $OTHER ]] && rm -rf "$OTHER"

# 2. token_stream, bf16 rows, 2 parts.
OPTS=(--sites 'hidden_states.*' --layout token-stream --store-dtype bf16 --shard-size 4KB)
capture "${OPTS[@]}" --out "$WORK/ts_single" || fail "token_stream single"
for k in 0 1; do capture "${OPTS[@]}" --shard $k/2 --out "$WORK/ts$k" || fail "token_stream part $k"; done
"$ACTCAP" merge "$WORK/ts0" "$WORK/ts1" --out "$WORK/ts_merged" >/dev/null || fail "token_stream merge"
same "token_stream bf16 2 parts" "$WORK/ts_single" "$WORK/ts_merged"

# 3. More parts than records: empty parts merge too.
head -3 "$WORK/p.txt" > "$WORK/three.txt"
few() { "$ACTCAP" capture --model "$MODEL" --prompts-file "$WORK/three.txt" --quiet "$@"; }
few --out "$WORK/few_single" || fail "few single"
for k in 0 1 2 3 4; do few --shard $k/5 --out "$WORK/few$k" || fail "few part $k"; done
"$ACTCAP" merge "$WORK"/few[0-4] --out "$WORK/few_merged" >/dev/null || fail "merge with empty parts"
same "5 parts of 3 records" "$WORK/few_single" "$WORK/few_merged"

# 4. A part killed mid-run, then --resume: the merge is still the single capture.
$PY -c "
import random
rng = random.Random(5)
with open('$WORK/many.txt', 'w') as f:
    for i in range(3000):
        f.write(' '.join(rng.choice('a resumed part completes the same store'.split()) for _ in range(5)) + '\n')
"
MANY=(--model "$MODEL" --prompts-file "$WORK/many.txt" --sites 'hidden_states.*' --positions last --shard-size 8KB --quiet)
"$ACTCAP" capture "${MANY[@]}" --out "$WORK/many_single" || fail "many single"
"$ACTCAP" capture "${MANY[@]}" --shard 0/2 --out "$WORK/many0" || fail "many part 0"
"$ACTCAP" capture "${MANY[@]}" --shard 1/2 --out "$WORK/many1" &
pid=$!
for _ in $(seq 400); do [[ -e "$WORK/many1/shard-00003.safetensors" ]] && break; sleep 0.02; done
kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
if $PY -c "import json,sys; sys.exit(json.load(open('$WORK/many1/manifest.json'))['complete'])"; then
  pass "part 1 killed before completing"
else
  fail "part 1 completed before the kill (too fast a machine for this test?)"
fi
expect_error "an incomplete part is refused" "the part is incomplete" "$WORK/many_merged" \
  "$ACTCAP" merge "$WORK/many0" "$WORK/many1" --out "$WORK/many_merged"
expect_error "resume with another K/N is refused" "cannot resume" "$WORK/none" \
  "$ACTCAP" capture "${MANY[@]}" --shard 0/2 --resume --out "$WORK/many1"
"$ACTCAP" capture "${MANY[@]}" --shard 1/2 --resume --out "$WORK/many1" || fail "resume part 1"
"$ACTCAP" merge "$WORK/many1" "$WORK/many0" --out "$WORK/many_merged" >/dev/null || fail "merge after resume"
same "killed part resumed" "$WORK/many_single" "$WORK/many_merged"

# 5. Refusals: one line naming the part, no merged store and no temporary left.
expect_error "a missing part" "part 1/3 is missing" "$WORK/bad" \
  "$ACTCAP" merge "$WORK/part0" "$WORK/part2" --out "$WORK/bad"
expect_error "a part given twice" "part 0/3 is given twice" "$WORK/bad" \
  "$ACTCAP" merge "$WORK/part0" "$WORK/part1" "$WORK/part0" "$WORK/part2" --out "$WORK/bad"
capture --sites all --shard-size 300KB --max-length 5 --shard 1/3 --out "$WORK/foreign1" || fail "foreign part"
expect_error "a part of another job" "part of another job" "$WORK/bad" \
  "$ACTCAP" merge "$WORK/part0" "$WORK/foreign1" "$WORK/part2" --out "$WORK/bad"
expect_error "a part of another N" "part of another job" "$WORK/bad" \
  "$ACTCAP" merge "$WORK/part0" "$WORK/part1" "$WORK/part2" "$WORK/ts1" --out "$WORK/bad"
expect_error "a store that is not a part" "not a part-store" "$WORK/bad" \
  "$ACTCAP" merge "$WORK/single" --out "$WORK/bad"
expect_error "an existing --out" "already exists" "$WORK/merged.tmp" \
  "$ACTCAP" merge "$WORK/part0" "$WORK/part1" "$WORK/part2" --out "$WORK/merged"
expect_error "--shard out of range" "--shard must be K/N" "$WORK/bad" capture --shard 3/3 --out "$WORK/bad"
cp -r "$WORK/part1" "$WORK/edited1"
sed -i '1s/"n_prompt":/"n_prompt" :/' "$WORK/edited1/records.jsonl"
expect_error "an edited part" "differs from its manifest" "$WORK/bad" \
  "$ACTCAP" merge "$WORK/part0" "$WORK/edited1" "$WORK/part2" --out "$WORK/bad"
ls -d "$WORK"/*.tmp-* >/dev/null 2>&1 && fail "a temporary folder was left: $(ls -d "$WORK"/*.tmp-*)"

finish "shard + merge: OK"
