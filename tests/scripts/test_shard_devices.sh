#!/usr/bin/env bash
# capture --device A,B,... (data-parallel over several devices in one process; cuda:all = every GPU): with CPU
# devices standing in for GPUs, the one store equals a single-device capture (records.jsonl byte for byte, every
# record's tensors bit for bit) and verifies, in both layouts, with graded accuracy added up; killed mid-run it
# resumes to the same store; cuda:all without a GPU, --shard and stdin are refused in one line.
set -uo pipefail
ACTCAP=${1:?usage: test_shard_devices.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python json numpy
COMPARE="$PY ${ACTCAP_SOURCE_DIR}/tests/scale/compare_stores.py"
MODEL="$DATA/reference/tiny-gpt2"
same() {
  local problem
  if ! problem=$($COMPARE "$2" "$3" 2>&1); then fail "$1: $problem"
  elif ! "$ACTCAP" verify "$3" >/dev/null 2>&1; then fail "$1: verify: $("$ACTCAP" verify "$3" 2>&1)"
  elif ! cmp -s "$2/records.jsonl" "$3/records.jsonl"; then fail "$1: records.jsonl differs"
  elif [[ -e "$3.parts" ]]; then fail "$1: $3.parts was left behind"
  else pass "$1: $problem, verify OK"; fi
}

# 1. per_record, generating: 2 CPU devices.
$PY -c "
import json, random
rng = random.Random(8)
words = 'paris london rome is the capital of france england italy'.split()
with open('$WORK/qa.jsonl', 'w') as f:
    for i in range(17):
        f.write(json.dumps({'text': ' '.join(rng.choice(words) for _ in range(2 + rng.randrange(8))), 'answer': 'paris'}) + '\n')
"
ARGS=(capture --model "$MODEL" --jsonl "$WORK/qa.jsonl" --max-new-tokens 3 --sites all --shard-size 200KB --quiet)
"$ACTCAP" "${ARGS[@]}" --out "$WORK/single" || fail "single device"
"$ACTCAP" "${ARGS[@]}" --device cpu,cpu --out "$WORK/two" || fail "--device cpu,cpu"
same "--device cpu,cpu" "$WORK/single" "$WORK/two"
$PY - "$WORK/single/summary.json" "$WORK/two/summary.json" <<'PY' && pass "summary.json adds the devices' counts up" || fail "summary.json"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for key in ("records", "tokens", "accuracy"):
    assert a[key] == b[key], (key, a[key], b[key])
assert b["devices"] == ["cpu", "cpu"] and all(a["sites"][s]["rows"] == b["sites"][s]["rows"] for s in a["sites"])
PY

# 2. token_stream, fp16 rows, 3 devices.
TS=(capture --model "$MODEL" --jsonl "$WORK/qa.jsonl" --sites 'hidden_states.*' --layout token-stream
    --store-dtype fp16 --shard-size 2KB --quiet)
"$ACTCAP" "${TS[@]}" --out "$WORK/ts_single" || fail "token_stream single"
"$ACTCAP" "${TS[@]}" --device cpu,cpu,cpu --out "$WORK/ts_three" || fail "token_stream on 3 devices"
same "token_stream --device cpu,cpu,cpu" "$WORK/ts_single" "$WORK/ts_three"

# 3. Killed mid-run, then --resume: the same store.
$PY -c "
with open('$WORK/many.txt', 'w') as f:
    for i in range(3000):
        f.write('prompt %d of a capture on two devices that is killed and resumed\n' % i)
"
MANY=(capture --model "$MODEL" --prompts-file "$WORK/many.txt" --sites 'hidden_states.*' --positions last
      --shard-size 8KB --quiet)
"$ACTCAP" "${MANY[@]}" --out "$WORK/many_single" || fail "many single"
"$ACTCAP" "${MANY[@]}" --device cpu,cpu --out "$WORK/many" &
pid=$!
for _ in $(seq 1000); do [[ -e "$WORK/many.parts/device-1/shard-00003.safetensors" ]] && break; sleep 0.02; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[[ -e "$WORK/many/manifest.json" ]] && fail "the capture completed before the kill (too fast a machine for this test?)"
"$ACTCAP" "${MANY[@]}" --device cpu,cpu --resume --out "$WORK/many" || fail "--resume on 2 devices"
same "killed on 2 devices, then --resume" "$WORK/many_single" "$WORK/many"

# 4. Refusals.
if "$ACTCAP" capture --model "$MODEL" --prompt hi --device cuda --out "$WORK/probe" >/dev/null 2>&1; then
  echo "(a GPU is present: cuda:all is not refused here)"
else
  expect_error "cuda:all without a GPU" "--device cuda:all: no GPU is visible" "$WORK/gpu" \
    "$ACTCAP" capture --model "$MODEL" --prompt hi --device cuda:all --out "$WORK/gpu"
fi
expect_error "--shard with several devices" "leave out --shard" "$WORK/bad" \
  "$ACTCAP" "${ARGS[@]}" --device cpu,cpu --shard 0/2 --out "$WORK/bad"
expect_error "stdin with several devices" "not stdin" "$WORK/bad" \
  "$ACTCAP" capture --model "$MODEL" --prompts-file - --device cpu,cpu --out "$WORK/bad" </dev/null
expect_error "an unknown device in the list" "gpu" "$WORK/bad" \
  "$ACTCAP" "${ARGS[@]}" --device cpu,gpu --out "$WORK/bad"
expect_error "a missing model on 2 devices" "no-model" "$WORK/nomodel" \
  "$ACTCAP" capture --model "$WORK/no-model" --prompt hi --device cpu,cpu --out "$WORK/nomodel"
"$ACTCAP" capture --model "$MODEL" --prompt hi --out "$WORK/incomplete" --quiet || fail "a store to mark incomplete"
$PY - "$WORK/incomplete/manifest.json" <<'PY'
import hashlib, json, sys
m = json.load(open(sys.argv[1]))
m["complete"] = False
del m["manifest_sha256"]
m["manifest_sha256"] = hashlib.sha256(json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
json.dump(m, open(sys.argv[1], "w"))
PY
expect_error "--resume over an incomplete store no merge wrote" "no merge wrote" "$WORK/incomplete.parts" \
  "$ACTCAP" capture --model "$MODEL" --prompt hi --device cpu,cpu --resume --out "$WORK/incomplete"
expect_error "an existing store" "already holds a capture store" "$WORK/two.parts" \
  "$ACTCAP" "${ARGS[@]}" --device cpu,cpu --out "$WORK/two"

finish "several devices: OK"
