#!/bin/bash
# actcap metrics: a model against itself gives exactly KL 0 and cosine 1; against a copy with perturbed weights
# every value matches numpy's float64 computation from the logits and hidden states actcap captures; models that
# cannot be compared and bad inputs give one-line errors.
set -u
A=${1:?usage: test_metrics_cli.sh path/to/actcap}
source "$(dirname "$0")/common.sh"
require_python numpy
M=$ACTCAP_TEST_DATA/reference/tiny-gpt2
LLAMA=$ACTCAP_TEST_DATA/reference/llama

printf 'Hello world\n\nThe quick brown fox jumps over the lazy dog\nA\n' >"$WORK/p.txt"

# A copy with every weight perturbed (relative noise 5%), and one whose tokenizer maps two tokens the other way.
cp -r "$M" "$WORK/perturbed"
cp -r "$M" "$WORK/copy"
cp -r "$M" "$WORK/other-tokenizer"
$PY - "$WORK/perturbed/model.safetensors" "$WORK/other-tokenizer/tokenizer.json" <<'PY'
import json, struct, sys
import numpy as np
path = sys.argv[1]
raw = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
rng = np.random.default_rng(7)
for name, entry in header.items():
    if name == "__metadata__":
        continue
    begin, end = (8 + n + o for o in entry["data_offsets"])
    x = np.frombuffer(bytes(raw[begin:end]), dtype=np.float32)
    raw[begin:end] = (x * (1 + 0.05 * rng.standard_normal(x.size))).astype(np.float32).tobytes()
open(path, "wb").write(bytes(raw))
tok = json.load(open(sys.argv[2]))
vocab = tok["model"]["vocab"]
vocab["Hello"], vocab["ĠHello"] = vocab["ĠHello"], vocab["Hello"]
json.dump(tok, open(sys.argv[2], "w"))
PY

check_self() {  # NAME FILE: every KL exactly 0, every cosine exactly 1, RMS equal
  $PY - "$2" <<'PY' && pass "$1" || fail "$1"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
logits = [l for l in lines if l["kind"] == "logits"]
hidden = [l for l in lines if l["kind"] == "hidden_state"]
assert len(logits) == 3 and len(hidden) == 9, (len(logits), len(hidden))
assert all(k == 0.0 for l in logits for k in l["kl"]) and all(l["kl_mean"] == 0.0 for l in logits)
assert all(l["cosine_mean"] == 1.0 and l["rms_a"] == l["rms_b"] > 0 for l in hidden)
assert all(l["surprisal_a"] == l["surprisal_b"] for l in logits)
assert [l["id"] for l in logits] == ["p.txt:1", "p.txt:3", "p.txt:4"], [l["id"] for l in logits]
assert [l["site"] for l in hidden[:3]] == ["hidden_states.0", "hidden_states.1", "hidden_states.2"]
assert logits[2]["surprisal_a"] == [] and logits[2]["surprisal_a_mean"] is None  # one token: no next token
assert len({l["model_a"]["weights_sha256"] for l in lines}) == 1
print("KL 0 and cosine 1 on", len(lines), "lines")
PY
}

$A metrics --model "$M" --model "$M" --prompts-file "$WORK/p.txt" --out "$WORK/self.jsonl" --quiet
check_self "a model against itself (one load)" "$WORK/self.jsonl"
$A metrics --model "$M" --model "$WORK/copy" --prompts-file "$WORK/p.txt" --out "$WORK/copy.jsonl" --quiet
check_self "a model against a copy of itself (two loads, two forward passes)" "$WORK/copy.jsonl"

# Against the perturbed copy: numpy from the logits and hidden states that actcap capture stores.
$A metrics --model "$M" --model "$WORK/perturbed" --prompts-file "$WORK/p.txt" --out "$WORK/perturbed.jsonl" --quiet
for side in a b; do
  model=$M; [[ $side == b ]] && model=$WORK/perturbed
  $A capture --model "$model" --prompts-file "$WORK/p.txt" --sites 'hidden_states.*,logits' --out "$WORK/store_$side" --quiet
done
if $PY "$ACTCAP_SOURCE_DIR/tests/scripts/metrics_reference.py" "$WORK/store_a" "$WORK/store_b" "$WORK/perturbed.jsonl" >"$WORK/ref.txt"; then
  pass "perturbed copy matches numpy: $(tail -1 "$WORK/ref.txt")"
else
  fail "perturbed copy: $(cat "$WORK/ref.txt")"
fi
$PY -c "
import json, sys
lines = [json.loads(l) for l in open('$WORK/perturbed.jsonl')]
assert all(l['kl_mean'] > 1e-6 for l in lines if l['kind'] == 'logits')
assert all(l['cosine_mean'] < 1 for l in lines if l['kind'] == 'hidden_state' and l['layer'] > 0)
assert lines[0]['model_a']['weights_sha256'] != lines[0]['model_b']['weights_sha256']
" && pass "perturbed: KL > 0, cosine < 1, different weight hashes" || fail "perturbed: values not those of two different models"

# A llama model from token ids (no tokenizer), against itself.
printf '{"input_ids": [1, 5, 9, 200, 7]}\n{"input_ids": [1, 42]}\n' >"$WORK/ids.jsonl"
$A metrics --model "$LLAMA" --model "$LLAMA" --jsonl "$WORK/ids.jsonl" --out "$WORK/llama.jsonl" --quiet &&
  $PY -c "
import json
lines = [json.loads(l) for l in open('$WORK/llama.jsonl')]
assert len(lines) == 2 * 4 and all(l.get('kl_mean', 0) == 0 and l.get('cosine_mean', 1) == 1 for l in lines)
" && pass "llama from token ids against itself" || fail "llama from token ids"

expect_error "one model" "exactly two --model" "$WORK/one.jsonl" \
  $A metrics --model "$M" --prompts-file "$WORK/p.txt" --out "$WORK/one.jsonl"
expect_error "different vocabularies" "need the same tokenizer" "$WORK/vocab.jsonl" \
  $A metrics --model "$M" --model "$LLAMA" --jsonl "$WORK/ids.jsonl" --out "$WORK/vocab.jsonl"
cp -r "$LLAMA" "$WORK/one-layer"
sed -i 's/"num_hidden_layers": 2/"num_hidden_layers": 1/' "$WORK/one-layer/config.json"
expect_error "different depths" "has 2 layers and $WORK/one-layer has 1" "$WORK/depth.jsonl" \
  $A metrics --model "$LLAMA" --model "$WORK/one-layer" --jsonl "$WORK/ids.jsonl" --out "$WORK/depth.jsonl"
expect_error "tokenizers that disagree" "p.txt:1: the two models' tokenizers encode this prompt differently" "$WORK/tok.jsonl" \
  $A metrics --model "$M" --model "$WORK/other-tokenizer" --prompts-file "$WORK/p.txt" --out "$WORK/tok.jsonl"
expect_error "missing prompts file" "missing.txt" "$WORK/missing.jsonl" \
  $A metrics --model "$M" --model "$M" --prompts-file "$WORK/missing.txt" --out "$WORK/missing.jsonl"
expect_error "no prompts" "give the prompts" "$WORK/none.jsonl" \
  $A metrics --model "$M" --model "$M" --out "$WORK/none.jsonl"
expect_error "--run that is not a run" "not a run folder" "$WORK/notrun/metrics.jsonl" \
  $A metrics --model "$M" --model "$M" --prompts-file "$WORK/p.txt" --run "$ACTCAP_TEST_DATA"
finish "metrics CLI: all checks passed"
