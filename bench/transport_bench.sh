#!/usr/bin/env bash
# Transport at a real width: a synthetic Llama-family model (hidden 1024, GQA 16/8 heads, 2 layers, random
# weights written here), PROMPTS prompts of TOKENS random token ids captured; then `actcap fold` of a shared
# random rotation, the folded model's capture, and `actcap rotation` between the two stores at full width and
# at k = 256. Reports wall time and peak resident memory (GNU time) of fold and rotation, and what rotation
# recovered. CPU time (user + system) is the number to compare on a shared machine. Not a timed test.
#
#   bench/transport_bench.sh [ACTCAP_BINARY]      Environment: PROMPTS (default 64), TOKENS (default 128), WORK
set -euo pipefail
cd "$(dirname "$0")/.."
ACTCAP=${1:-build/actcap}
PROMPTS=${PROMPTS:-64}
TOKENS=${TOKENS:-128}
WORK=${WORK:-$(mktemp -d)}
PY=/usr/bin/python3
mkdir -p "$WORK"

$PY - "$WORK" <<'EOF2'
import json, struct, sys
import numpy as np
work = sys.argv[1]
d, heads, kv, hd, inter, vocab, layers = 1024, 16, 8, 64, 2816, 8192, 2
config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d, "num_attention_heads": heads,
          "num_key_value_heads": kv, "head_dim": hd, "intermediate_size": inter, "vocab_size": vocab,
          "num_hidden_layers": layers, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
          "hidden_act": "silu", "tie_word_embeddings": True, "torch_dtype": "float32"}
rng = np.random.default_rng(0)
shapes = {"model.embed_tokens.weight": (vocab, d), "model.norm.weight": (d,)}
for i in range(layers):
    p = f"model.layers.{i}."
    shapes.update({p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                   p + "self_attn.q_proj.weight": (heads * hd, d), p + "self_attn.k_proj.weight": (kv * hd, d),
                   p + "self_attn.v_proj.weight": (kv * hd, d), p + "self_attn.o_proj.weight": (d, heads * hd),
                   p + "mlp.gate_proj.weight": (inter, d), p + "mlp.up_proj.weight": (inter, d),
                   p + "mlp.down_proj.weight": (d, inter)})
header, blobs, offset = {}, [], 0
for name, shape in shapes.items():
    a = (1 + 0.1 * rng.standard_normal(shape) if len(shape) == 1 else 0.03 * rng.standard_normal(shape)).astype(np.float32)
    header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + a.nbytes]}
    blobs.append(a.tobytes()); offset += a.nbytes
h = json.dumps(header).encode()
import os
os.makedirs(f"{work}/model", exist_ok=True)
with open(f"{work}/model/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for b in blobs: f.write(b)
json.dump(config, open(f"{work}/model/config.json", "w"))
q, r = np.linalg.qr(rng.standard_normal((d, d)))
np.save(f"{work}/rotation.npy", q * np.sign(np.diag(r)))
json.dump({"layers": [{"name": f"model.layers.{i}", "rotation_path": f"{work}/rotation.npy"} for i in range(layers)]},
          open(f"{work}/spec.json", "w"))
EOF2
INPUTS=()
for r in $(seq "$PROMPTS"); do
  INPUTS+=(--input-ids "$($PY -c "import random; g = random.Random($r); print([g.randrange(8192) for _ in range($TOKENS)])")")
done
measure() {  # LABEL COMMAND...: wall seconds and peak RSS
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.txt" "${@:2}" >"$WORK/out.txt"
  read -r wall user sys rss <"$WORK/time.txt"
  printf '%-38s wall %6.2f s  cpu %6.2f s  peak %5d MiB\n' "$1" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))"
}
rm -rf "$WORK/folded" "$WORK/original" "$WORK/rotated" "$WORK/rotations.jsonl"
"$ACTCAP" capture --model "$WORK/model" "${INPUTS[@]}" --sites hidden_states.1 --out "$WORK/original" --quiet
measure "fold (1024 wide, 2 layers, 22M w.)" "$ACTCAP" fold --model "$WORK/model" --spec "$WORK/spec.json" --out "$WORK/folded"
"$ACTCAP" capture --model "$WORK/folded" "${INPUTS[@]}" --sites hidden_states.1 --out "$WORK/rotated" --quiet
for k in 1024 256; do
  measure "rotation d=1024 k=$k, $((PROMPTS * TOKENS)) tokens" "$ACTCAP" rotation --student "$WORK/original" \
    --teacher "$WORK/rotated" --layer hidden_states.1 --components "$k" --ledger "$WORK/rotations.jsonl"
done
$PY - "$WORK" <<'EOF2'
import json, sys
sys.path.insert(0, "tests/scripts")
import numpy as np, readers
work = sys.argv[1]
line = json.loads(open(f"{work}/rotations.jsonl").readline())
lm = readers.read_safetensors(line["transport"]["safetensors"])["linear_map"]
print(f"k=1024: cosine before {line['cosine_before']:.4f} after {line['cosine_after']:.8f}, "
      f"max |linear_map - R| {np.max(np.abs(lm - np.load(f'{work}/rotation.npy'))):.2e}")
EOF2
