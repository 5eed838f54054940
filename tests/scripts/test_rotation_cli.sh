#!/usr/bin/env bash
# actcap rotation through the binary, between two different models' captures of the same token ids (the
# reference llama as student, qwen3 as teacher): --run writes runs/<id>/rotations.jsonl and checkpoints/;
# concurrent runs on one ledger append whole lines; stores of other inputs and unknown sites are refused in one
# line with the ledger left as it was.
set -uo pipefail
ACTCAP=${1:?usage: test_rotation_cli.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python json numpy

INPUTS=(--input-ids "[1, 5, 9, 30, 2, 7, 100, 3]" --input-ids "[4, 8, 15, 16, 23, 42, 99, 250, 11]")
capture() { "$ACTCAP" capture --model "$DATA/reference/$1" "${@:3}" --sites 'hidden_states.*' --out "$WORK/$2" --quiet; }
capture llama student "${INPUTS[@]}" && capture qwen3 teacher "${INPUTS[@]}" &&
  capture qwen3 other --input-ids "[1, 5, 9, 30, 2, 7, 100, 4]" --input-ids "[4, 8, 15, 16, 23, 42, 99, 250, 11]" ||
  fail "captures"
S=(--student "$WORK/student" --teacher "$WORK/teacher")

# A token-stream bf16 store pairs with a per-record f32 one: same rows, read as float64.
capture qwen3 teacher_stream "${INPUTS[@]}" --layout token-stream --store-dtype bf16 &&
  "$ACTCAP" rotation "${S[@]}" --layer hidden_states.1 --ledger "$WORK/f32.jsonl" >/dev/null &&
  "$ACTCAP" rotation --student "$WORK/student" --teacher "$WORK/teacher_stream" --layer hidden_states.1 \
    --ledger "$WORK/bf16.jsonl" >/dev/null &&
  $PY -c "
import json
a, b = (json.loads(open('$WORK/' + n + '.jsonl').readline()) for n in ('f32', 'bf16'))
assert a['tokens'] == b['tokens'] == 17 and abs(a['cosine_after'] - b['cosine_after']) < 1e-2, (a, b)
" && pass "token-stream bf16 teacher" || fail "token-stream bf16 teacher"

# --run: the run's ledger and checkpoints folder.
RUN="$WORK/runs/r1"
mkdir -p "$RUN" && echo '{}' >"$RUN/manifest.json"
if "$ACTCAP" rotation "${S[@]}" --layer hidden_states.1 --layer model.layers.1 --components 8 --run "$RUN" >"$WORK/out.txt"; then
  $PY - "$RUN" <<'EOF2' && pass "--run: $(head -1 "$WORK/out.txt")" || fail "--run ledger"
import json, os, sys
run = sys.argv[1]
lines = [json.loads(l) for l in open(os.path.join(run, "rotations.jsonl"))]
assert [l["site"] for l in lines] == ["hidden_states.1", "hidden_states.2"], lines
for l in lines:
    assert l["components"] == 8 and len(l["singular_values"]) == 8 and l["tokens"] == 17
    assert l["transport"]["safetensors"].startswith(os.path.join(run, "checkpoints") + "/")
    assert os.path.exists(l["transport"]["pt"])
    assert -1 <= l["cosine_before"] <= 1 and l["cosine_after"] > l["cosine_before"]
    assert 0 < l["explained_variance_student"] <= 1 and 0 <= l["residual_error"] < 1
EOF2
else
  fail "--run: $(cat "$WORK/out.txt")"
fi
expect_error "--run without a manifest" "not a run folder" "$WORK/runs/none" \
  "$ACTCAP" rotation "${S[@]}" --layer hidden_states.1 --run "$WORK/runs/none"

# Four runs at once on one ledger: 12 whole lines.
L="$WORK/shared/rotations.jsonl"
pids=()
for k in 1 2 3 4; do
  "$ACTCAP" rotation "${S[@]}" --layer hidden_states.0 --layer hidden_states.1 --layer hidden_states.2 \
    --components "$k" --ledger "$L" >/dev/null &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent rotation failed"; done
$PY -c "
import json, sys
lines = open('$L').read().split('\n')
assert lines[-1] == '' and len(lines) == 13, len(lines)
assert sorted(json.loads(l)['components'] for l in lines[:-1]) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
sys.path.insert(0, '$ACTCAP_SOURCE_DIR/tests/scripts'); import readers, hashlib
for l in map(json.loads, lines[:-1]):  # each line names its own transport, whatever ran beside it
    t = l['transport']
    assert hashlib.sha256(open(t['safetensors'], 'rb').read()).hexdigest() == t['sha256']
    assert readers.read_safetensors(t['safetensors'])['rotation'].shape == (l['components'],) * 2
" && pass "concurrent appends: 12 whole lines, each with its own transport" || fail "concurrent appends"

before=$(sha256sum "$L")
expect_error "other inputs" "record 0 has other token ids" "$WORK/nothing" \
  "$ACTCAP" rotation --student "$WORK/student" --teacher "$WORK/other" --layer hidden_states.1 --ledger "$L"
expect_error "unknown site" "no site 'blocks.0.hook_resid_post'" "$WORK/nothing" \
  "$ACTCAP" rotation "${S[@]}" --layer hidden_states.1 --layer blocks.0.hook_resid_post --ledger "$L"
expect_error "too many components" "--components 65" "$WORK/nothing" \
  "$ACTCAP" rotation "${S[@]}" --layer hidden_states.1 --components 65 --ledger "$L"
[[ $(sha256sum "$L") == "$before" ]] && pass "refused runs left the ledger as it was" || fail "the ledger changed"

finish "rotation CLI: runs, concurrent ledger appends, refusals"
