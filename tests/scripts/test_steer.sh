#!/usr/bin/env bash
# capture --steer / --steer-layers / --ablate / --patch through the binary, checked with numpy on the stores:
# a steered block output is the unsteered one + scale * v bit for bit at every position (generated tokens
# included), a mean ablation is numpy's mean of the donor store, the manifest records each intervention with
# its file's SHA-256, --resume refuses other interventions, and bad inputs give one-line errors.
set -uo pipefail
ACTCAP=${1:?usage: test_steer.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python numpy

MODEL="$DATA/reference/tiny-gpt2"
# direction.0 and direction.1 (n_embd 32) as safetensors, written here with struct (no actcap code).
$PY - "$WORK" <<'EOF' || fail "writing the vectors"
import json, struct, sys
import numpy as np
work = sys.argv[1]
def write(path, tensors):
    header, data = {}, b""
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
rng = np.random.default_rng(5)
v = rng.standard_normal((2, 32)).astype(np.float32)
np.save(f"{work}/v.npy", v)
write(f"{work}/v.safetensors", {"direction.0": v[0], "direction.1": v[1]})
write(f"{work}/narrow.safetensors", {"direction.1": v[1][:31]})
EOF

C=("$ACTCAP" capture --model "$MODEL" --quiet)
# 1. Steering block 0 only (--steer-layers 0-0), while generating; then the unsteered pass over the same tokens.
"${C[@]}" --prompt "Hello world" --max-new-tokens 4 --sites all --steer "$WORK/v.safetensors:1.5" \
  --steer-layers 0-0 --out "$WORK/steered" || fail "steered capture"
IDS=$($PY -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['token_ids'])" "$WORK/steered/records.jsonl")
"${C[@]}" --input-ids "$IDS" --sites all --out "$WORK/plain" || fail "unsteered capture"
$PY - "$WORK" <<'EOF' && pass "steered block 0 output = unsteered + 1.5 * v at every position; upstream unchanged, block 1 untouched by direction.1" || fail "steering values"
import json, sys
import numpy as np
import readers
work = sys.argv[1]
s, p = readers.read_store_tensors(f"{work}/steered"), readers.read_store_tensors(f"{work}/plain")
v = np.load(f"{work}/v.npy")
expected = p["0/blocks.0.hook_resid_post"] + np.float32(1.5) * v[0]
assert expected.shape[0] == 6, expected.shape  # 2 prompt tokens + 4 generated
for site in ["blocks.0.hook_resid_post", "hidden_states.1", "blocks.1.hook_resid_pre"]:
    assert np.array_equal(s[f"0/{site}"].view(np.uint32), expected.view(np.uint32)), site
sites = json.load(open(f"{work}/plain/manifest.json"))["sites"]
for site in sites[: sites.index("blocks.0.hook_resid_post")]:
    assert np.array_equal(s[f"0/{site}"].view(np.uint32), p[f"0/{site}"].view(np.uint32)), site
# Block 1's output moved only through block 1's computation: direction.1 was outside --steer-layers.
delta = s["0/blocks.1.hook_resid_post"] - s["0/blocks.1.hook_resid_mid"] - s["0/blocks.1.hook_mlp_out"]
assert np.abs(delta).max() < 1e-5, np.abs(delta).max()
EOF

# 2. The manifest records the file, its SHA-256, the scale and the layers.
$PY - "$WORK" <<'EOF' && pass "manifest.json records the steering" || fail "manifest interventions"
import hashlib, json, os, sys
work = sys.argv[1]
[entry] = json.load(open(f"{work}/steered/manifest.json"))["interventions"]
path = os.path.realpath(f"{work}/v.safetensors")
assert entry == {"kind": "steer", "file": path, "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
                 "scale": 1.5, "layer_range": [0, 0], "layers": [0]}, entry
assert "interventions" not in json.load(open(f"{work}/plain/manifest.json"))
EOF

# 2b. The same directions in a GGUF file (written here as llama.cpp's control-vector loader reads it: arch
# controlvector, F32 1-D direction.N) steer to the same bytes.
$PY - "$WORK" <<'EOF' || fail "writing the GGUF vector"
import struct, sys
import numpy as np
work = sys.argv[1]
v = np.load(f"{work}/v.npy")
def string(text):
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw
kvs = [("general.architecture", 8, string("controlvector")), ("controlvector.model_hint", 8, string("gpt2")),
       ("controlvector.layer_count", 4, struct.pack("<I", 2))]
out = b"GGUF" + struct.pack("<IQQ", 3, 2, len(kvs))
for key, kind, value in kvs:
    out += string(key) + struct.pack("<I", kind) + value
for n in range(2):  # name, n_dims, ne[0], type F32, offset
    out += string(f"direction.{n}") + struct.pack("<IQIQ", 1, 32, 0, n * 128)
out += b"\0" * (-len(out) % 32)
out += v[0].tobytes() + v[1].tobytes()
open(f"{work}/v.gguf", "wb").write(out)
EOF
"${C[@]}" --prompt "Hello world" --max-new-tokens 4 --sites all --steer "$WORK/v.gguf:1.5" --steer-layers 0-0 \
  --out "$WORK/steered_gguf" || fail "capture steered by the GGUF file"
cmp -s "$WORK/steered/shard-00000.safetensors" "$WORK/steered_gguf/shard-00000.safetensors" \
  && pass "a GGUF control vector steers exactly as the same safetensors one" || fail "GGUF and safetensors steering differ"

# 3. --resume compares the interventions with the store's.
R=("${C[@]}" --prompt "Hello world" --max-new-tokens 4 --sites all --out "$WORK/steered" --resume)
expect_error "resume with another scale" "cannot resume" "$WORK/none" "${R[@]}" --steer "$WORK/v.safetensors:2" --steer-layers 0-0
expect_error "resume without the steering" "interventions" "$WORK/none" "${R[@]}"
"${R[@]}" --steer "$WORK/v.safetensors:1.5" --steer-layers 0-0 && pass "resume with the same steering" \
  || fail "resume with the same steering was refused"

# 4. Mean ablation against numpy's mean over every row of the donor store.
printf 'The cat sat on the mat\nA dog\nOnce upon a time there was\n' >"$WORK/donor.txt"
"${C[@]}" --prompts-file "$WORK/donor.txt" --sites blocks.1.hook_mlp_out --out "$WORK/donor" || fail "donor capture"
"${C[@]}" --prompt "Hello world" --sites 'blocks.1.*' --ablate "blocks.1.hook_mlp_out=mean:$WORK/donor" \
  --ablate "blocks.1.attn.hook_z=zero" --out "$WORK/ablated" || fail "ablated capture"
$PY - "$WORK" <<'EOF' && pass "ablation: mean = numpy's over the donor store, zero = zeros" || fail "ablation values"
import json, sys
import numpy as np
import readers
work = sys.argv[1]
donor, a = readers.read_store_tensors(f"{work}/donor"), readers.read_store_tensors(f"{work}/ablated")
rows = np.concatenate([donor[f"{r}/blocks.1.hook_mlp_out"] for r in range(3)]).astype(np.float64)
mean = rows.mean(axis=0).astype(np.float32)
got = a["0/blocks.1.hook_mlp_out"]
assert got.shape == (2, 32) and np.allclose(got, mean[None, :], rtol=1e-6, atol=1e-8), np.abs(got - mean).max()
assert not np.any(a["0/blocks.1.attn.hook_z"])
entries = json.load(open(f"{work}/ablated/manifest.json"))["interventions"]
assert [(e["site"], e["mode"]) for e in entries] == [("blocks.1.hook_mlp_out", "mean"), ("blocks.1.attn.hook_z", "zero")]
assert entries[0]["rows"] == len(rows)
EOF

# 5. Patching a store from itself gives the same store (every shard's bytes).
"${C[@]}" --prompt "Hello world" --sites all --patch 'hidden_states.1,blocks.1.hook_attn_out' --from "$WORK/ablated" \
  --out "$WORK/patched" 2>"$WORK/patch.err"
grep -q "has no site hidden_states.1" "$WORK/patch.err" && pass "patching needs the site in the source store" \
  || fail "patch from a store without the site: $(cat "$WORK/patch.err")"
"${C[@]}" --prompt "Hello world" --sites all --patch 'hidden_states.1,blocks.1.hook_attn_out' --from "$WORK/plain" \
  --out "$WORK/patched" 2>"$WORK/patch.err"
grep -q "has a prompt of 6 tokens" "$WORK/patch.err" && pass "patching checks the token count" \
  || fail "patch from a longer prompt: $(cat "$WORK/patch.err")"
"${C[@]}" --input-ids "$IDS" --sites all --patch 'hidden_states.1,blocks.1.hook_attn_out' --from "$WORK/plain" \
  --out "$WORK/patched" || fail "patched capture"
cmp -s "$WORK/plain/shard-00000.safetensors" "$WORK/patched/shard-00000.safetensors" \
  && pass "patching from a capture of the same tokens reproduces it byte for byte" || fail "patched store differs"

# 6. Bad inputs: one line naming the file or site, no store left behind.
O="$WORK/refused"
expect_error "missing vector file" "nothing.gguf: no such control vector file" "$O" "${C[@]}" --prompt Hi --steer "$WORK/nothing.gguf" --out "$O"
expect_error "wrong width" "direction.1 has 31 values, but the hidden size (n_embd)" "$O" "${C[@]}" --prompt Hi --steer "$WORK/narrow.safetensors" --out "$O"
expect_error "layer out of range" "--steer-layers \"1-2\": block 2 is out of range" "$O" "${C[@]}" --prompt Hi --steer "$WORK/v.safetensors" --steer-layers 1-2 --out "$O"
expect_error "unknown site" "--ablate: \"blocks.9.hook_mlp_out\" matches no site" "$O" "${C[@]}" --prompt Hi --ablate blocks.9.hook_mlp_out=zero --out "$O"
expect_error "pattern not editable" "attention patterns cannot be edited" "$O" "${C[@]}" --prompt Hi --ablate 'blocks.0.attn.hook_pattern=zero' --out "$O"
expect_error "patch without --from" "--patch SITE needs --from STORE" "$O" "${C[@]}" --prompt Hi --patch hidden_states.1 --out "$O"

finish "steering, ablation and patching: every check passed"
