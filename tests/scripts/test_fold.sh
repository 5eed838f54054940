#!/usr/bin/env bash
# actcap fold on every reference Llama-family model (llama, mistral, qwen2, qwen3, and llama with biases): a
# random orthogonal residual rotation (one shared R, as .npy, .pt and .safetensors) leaves the logits equal within
# 1e-5 relative and maps hidden_states.k to hidden_states.k·R (captures before and after); attention-head (GQA
# groups kept) and MLP-neuron permutations leave the logits unchanged; the folded folder loads in actcap and its
# safetensors read back with the shared reader; a sharded checkpoint keeps its layout. `actcap rotation` between the stores recovers R, and its
# transport file folds back the same way. Bad specs give one-line errors and leave no folder behind.
set -uo pipefail
ACTCAP=${1:?usage: test_fold.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python numpy torch
CHECK="$ACTCAP_SOURCE_DIR/tests/transform/fold_check.py"

INPUTS=(--input-ids "[1, 5, 9, 30, 2, 7, 100, 3]" --input-ids "[4, 8, 15, 16, 23, 42, 99, 250, 11]")
capture() {  # MODEL OUT [INPUTS...]
  local model=$1 out=$2
  shift 2
  "$ACTCAP" capture --model "$model" "${@:-${INPUTS[@]}}" --sites 'hidden_states.*,logits' --out "$out" --quiet
}

kinds=(npy pt safetensors npy pt)
heads=(query query kv query query)  # qwen2's permutation lists its key/value heads (whole groups move)
i=0
for m in reference/llama reference/mistral reference/qwen2 reference/qwen3 extra/llama-bias; do
  name=$(basename "$m")
  model="$DATA/$m"
  T="$WORK/$name"
  mkdir -p "$T"
  kind=${kinds[$i]}
  head_list=${heads[$i]}
  i=$((i + 1))
  $PY "$CHECK" make "$model" "$T" "$kind" "$i" "$head_list" || { fail "$name: making transforms"; continue; }
  capture "$model" "$T/original" || { fail "$name: capture of the original"; continue; }

  # Source dtype: the folder as HF and actcap expect it.
  if "$ACTCAP" fold --model "$model" --spec "$T/spec_rotation.json" --out "$T/rotated" >"$T/fold.txt"; then
    $PY "$CHECK" folder "$model" "$T/rotated" && pass "$name: folded folder ($(grep -c . "$T/fold.txt") lines of report)" \
      || fail "$name: folded folder"
  else
    fail "$name: fold ($kind rotation)"
  fi
  # A 16-bit checkpoint keeps the function exactly only when the folded weights are f32.
  exact="$T/rotated"
  if grep -q '"BF16"\|"F16"' <(head -c 4096 "$model/model.safetensors"); then
    capture "$T/rotated" "$T/rotated_store_16" &&
      out=$($PY "$CHECK" same "$T/original" "$T/rotated_store_16" 3e-2) && pass "$name: rotation kept in 16 bits: $out" \
      || fail "$name: rotation kept in 16 bits: $out"
    exact="$T/rotated_f32"
    "$ACTCAP" fold --model "$model" --spec "$T/spec_rotation.json" --out "$exact" --dtype f32 >/dev/null || fail "$name: fold --dtype f32"
  fi
  capture "$exact" "$T/rotated_store" || { fail "$name: capture of the folded model"; continue; }
  out=$($PY "$CHECK" rotation "$T/original" "$T/rotated_store" "$T/rotation.$kind" "$model") \
    && pass "$name: shared $kind rotation: $out" || fail "$name: rotation: $out"

  if "$ACTCAP" fold --model "$model" --spec "$T/spec_permutation.json" --out "$T/permuted" >/dev/null &&
    capture "$T/permuted" "$T/permuted_store"; then
    out=$($PY "$CHECK" same "$T/original" "$T/permuted_store") && pass "$name: head + neuron permutations: $out" \
      || fail "$name: permutations: $out"
  else
    fail "$name: fold or capture of the permuted model"
  fi
done

# A sharded checkpoint (index + two files) of the tied qwen2: the layout is kept, lm_head joins the index.
T="$WORK/qwen2"
$PY - "$DATA/reference/qwen2" "$T/sharded" <<'EOF2'
import json, os, shutil, struct, sys
sys.path.insert(0, os.path.join(os.environ["ACTCAP_SOURCE_DIR"], "tests", "scripts"))
import readers
source, out = sys.argv[1:3]
os.makedirs(out)
tensors = readers.read_safetensors_typed(os.path.join(source, "model.safetensors"))
names = sorted(tensors)
weight_map = {}
for k, part in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):
    file = f"model-0000{k + 1}-of-00002.safetensors"
    header, blobs, offset = {}, [], 0
    for name in part:
        dtype, a = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes()); offset += a.nbytes
        weight_map[name] = file
    h = json.dumps(header).encode()
    with open(os.path.join(out, file), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, open(os.path.join(out, "model.safetensors.index.json"), "w"))
for name in ("config.json", "generation_config.json"):
    shutil.copy(os.path.join(source, name), out)
EOF2
if "$ACTCAP" fold --model "$T/sharded" --spec "$T/spec_rotation.json" --out "$T/sharded_rotated" >/dev/null &&
  capture "$T/sharded_rotated" "$T/sharded_store"; then
  out=$($PY "$CHECK" same "$T/original" "$T/sharded_store") && $PY - "$T/sharded_rotated" <<'EOF2' \
    && pass "sharded checkpoint: $out, index keeps the two files and adds lm_head" || fail "sharded checkpoint: $out"
import json, os, sys
index = json.load(open(os.path.join(sys.argv[1], "model.safetensors.index.json")))
files = sorted(set(index["weight_map"].values()))
assert files == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], files
assert "lm_head.weight" in index["weight_map"] and not os.path.exists(os.path.join(sys.argv[1], "model.safetensors"))
size = sum(os.path.getsize(os.path.join(sys.argv[1], f)) for f in files)
assert 0 < index["metadata"]["total_size"] < size, index["metadata"]
EOF2
else
  fail "fold or capture of the sharded checkpoint"
fi

# actcap rotation recovers R from the original and rotated stores (enough tokens for a full-rank covariance),
# and its transport file (linear_map) is a rotation fold accepts.
T="$WORK/llama"
MODEL="$DATA/reference/llama"
LONG=()
for r in 0 1 2 3 4; do LONG+=(--input-ids "$($PY -c "import random; g = random.Random($r); print([g.randrange(512) for _ in range(40)])")"); done
capture "$MODEL" "$T/long_original" "${LONG[@]}" && capture "$T/rotated" "$T/long_rotated" "${LONG[@]}" || fail "long captures"
if "$ACTCAP" rotation --student "$T/long_original" --teacher "$T/long_rotated" --layer hidden_states.1 \
  --ledger "$T/run/rotations.jsonl" >"$T/rotation.txt"; then
  transport=$($PY -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['transport']['safetensors'])" "$T/run/rotations.jsonl")
  out=$($PY -c "
import json, sys
import numpy as np
sys.path.insert(0, '$ACTCAP_SOURCE_DIR/tests/scripts'); import readers
line = json.loads(open('$T/run/rotations.jsonl').readline())
lm = readers.read_safetensors('$transport')['linear_map']
err = np.max(np.abs(lm - np.load('$T/rotation.npy')))
print(f'cosine before {line[\"cosine_before\"]:.4f} after {line[\"cosine_after\"]:.8f}, |linear_map - R| {err:.2e}')
sys.exit(0 if err < 1e-4 and line['cosine_after'] > 0.999999 else 1)") && pass "rotation recovers R: $out" \
    || fail "rotation did not recover R: $out"
  echo "{\"layers\": [{\"name\": \"model.layers.0\", \"rotation_path\": \"$transport\"}, {\"name\": \"model.layers.1\", \"rotation_path\": \"$transport\"}]}" >"$T/spec_transport.json"
  "$ACTCAP" fold --model "$MODEL" --spec "$T/spec_transport.json" --out "$T/from_transport" >/dev/null &&
    capture "$T/from_transport" "$T/from_transport_store" &&
    out=$($PY "$CHECK" same "$T/rotated_store" "$T/from_transport_store") && pass "the transport file folds like R: $out" \
    || fail "folding the transport file: $out"
else
  fail "actcap rotation: $(cat "$T/rotation.txt")"
fi

# Per-layer rotations only with --allow-function-change, which says so; the function does change.
$PY -c "import numpy as np; q, _ = np.linalg.qr(np.random.default_rng(9).standard_normal((64, 64))); np.save('$T/other.npy', q)"
echo "{\"layers\": [{\"name\": \"model.layers.0\", \"rotation_path\": \"$T/rotation.npy\"}, {\"name\": \"model.layers.1\", \"rotation_path\": \"$T/other.npy\"}]}" >"$T/spec_per_layer.json"
if "$ACTCAP" fold --model "$MODEL" --spec "$T/spec_per_layer.json" --out "$T/per_layer" --allow-function-change >"$T/per_layer.txt" &&
  grep -q "the function CHANGES" "$T/per_layer.txt" && capture "$T/per_layer" "$T/per_layer_store"; then
  out=$($PY "$CHECK" same "$T/original" "$T/per_layer_store" | sed -n 1p) && fail "per-layer rotations kept the logits: $out" \
    || pass "per-layer rotations (--allow-function-change) change the logits: $out"
else
  fail "fold --allow-function-change: $(cat "$T/per_layer.txt")"
fi

# Bad specs and models: one line naming the problem, no output folder.
spec() { echo "{\"layers\": [$1]}" >"$WORK/bad.json"; }
spec '{"name": "model.layers.0", "rotation_path": "/nonexistent/r.npy"}'
expect_error "missing file" "'/nonexistent/r.npy' not found" "$WORK/out" "$ACTCAP" fold --model "$MODEL" --spec "$WORK/bad.json" --out "$WORK/out"
$PY -c "import numpy as np; np.save('$WORK/scaled.npy', 2 * np.eye(64)); np.save('$WORK/small.npy', np.eye(32))"
spec "{\"name\": \"model.layers.0\", \"rotation_path\": \"$WORK/scaled.npy\"}"
expect_error "not orthogonal" "not an orthogonal matrix" "$WORK/out" "$ACTCAP" fold --model "$MODEL" --spec "$WORK/bad.json" --out "$WORK/out"
spec "{\"name\": \"model.layers.0\", \"rotation_path\": \"$WORK/small.npy\"}"
expect_error "wrong shape" "shape [32, 32], expected [64, 64]" "$WORK/out" "$ACTCAP" fold --model "$MODEL" --spec "$WORK/bad.json" --out "$WORK/out"
spec "{\"name\": \"model.layers.0\", \"rotation_path\": \"$T/rotation.npy\"}"
expect_error "per-layer rotations" "per-layer rotations change the model's function" "$WORK/out" \
  "$ACTCAP" fold --model "$MODEL" --spec "$WORK/bad.json" --out "$WORK/out"
$PY -c "import torch; torch.save(torch.tensor([0, 2, 1, 3]), '$WORK/split.pt')"
spec "{\"name\": \"model.layers.1\", \"head_permutation_path\": \"$WORK/split.pt\"}"
expect_error "GQA group split" "splits key/value group" "$WORK/out" "$ACTCAP" fold --model "$MODEL" --spec "$WORK/bad.json" --out "$WORK/out"
spec '{"name": "model.layers.1", "head_dim": 8}'
expect_error "head_dim" "head_dim 8 is not the model's (16)" "$WORK/out" "$ACTCAP" fold --model "$MODEL" --spec "$WORK/bad.json" --out "$WORK/out"
spec '{"name": "model.layers.7"}'
expect_error "unknown layer" "\"model.layers.7\" is not a layer" "$WORK/out" "$ACTCAP" fold --model "$MODEL" --spec "$WORK/bad.json" --out "$WORK/out"
spec '{"name": "model.layers.0"}'
expect_error "gpt2 refused" "model_type 'gpt2' cannot be folded" "$WORK/out" \
  "$ACTCAP" fold --model "$DATA/reference/gpt2" --spec "$WORK/bad.json" --out "$WORK/out"
expect_error "opt refused" "model_type 'opt' cannot be folded" "$WORK/out" \
  "$ACTCAP" fold --model "$DATA/reference/opt" --spec "$WORK/bad.json" --out "$WORK/out"
expect_error "existing output" "already exists" "$WORK/out" \
  "$ACTCAP" fold --model "$MODEL" --spec "$WORK/bad.json" --out "$T/rotated"

finish "fold: rotations and permutations keep the function; bad specs refused"
