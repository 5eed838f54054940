#!/usr/bin/env bash
# The tools of bench/cpu_vs_peers.sh. make_checkpoint: the same bytes for the same seed (others for another), a
# folder actcap loads, sharded with an index (same greedy ids), a tokenizer past the vocabulary refused. to_gguf:
# the reference llama and qwen3 checkpoints and a llama3-rope checkpoint become GGUF files on which llama.cpp
# (node-llama-cpp under bench/peers, where installed) generates exactly HF's greedy ids (the references) or
# actcap's, in F32 and BF16; the PyTorch eager peer and capture_speed generate the same ids. Bad input: one line.
set -uo pipefail
ACTCAP=${1:?usage: test_bench_peers.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python torch
BENCH=$(dirname "$ACTCAP")/bench
for tool in make_checkpoint to_gguf capture_speed; do
  [[ -x $BENCH/$tool ]] || { echo "SKIP: $BENCH/$tool not built (the benchmarks are off in this build)"; exit 77; }
done
PEERS=$ACTCAP_SOURCE_DIR/bench/peers
IDS="1,20,300,511,7,7"  # the references' gen/input_ids

# A llama of tiny width with Llama 3's rope scaling; theta and the original context small enough that the
# scaling changes the rotation angles of the first positions a lot, and weights large enough (--std 0.3) for
# attention to depend on them (with the default 0.02 it is nearly uniform and greedy ids ignore the rotary).
cat >"$WORK/shape.json" <<'JSON'
{"model_type": "llama", "vocab_size": 256, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 100.0,
 "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 64},
 "max_position_embeddings": 512, "tie_word_embeddings": false, "bos_token_id": 0, "eos_token_id": 255}
JSON
"$BENCH/make_checkpoint" "$WORK/shape.json" "$WORK/a" --std 0.3 >/dev/null 2>&1
"$BENCH/make_checkpoint" "$WORK/shape.json" "$WORK/b" --std 0.3 >/dev/null 2>&1
"$BENCH/make_checkpoint" "$WORK/shape.json" "$WORK/c" --std 0.3 --seed 1 >/dev/null 2>&1
"$BENCH/make_checkpoint" "$WORK/shape.json" "$WORK/sharded" --std 0.3 --shard-mib 0 >/dev/null 2>&1
if cmp -s "$WORK/a/model.safetensors" "$WORK/b/model.safetensors" && ! cmp -s "$WORK/a/model.safetensors" "$WORK/c/model.safetensors"
then pass "make_checkpoint: same seed, same bytes; another seed, other bytes"
else fail "make_checkpoint is not a function of the seed"; fi
dtypes=$($PY -c "
import json, struct, sys
f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]
print(sorted({v['dtype'] for k, v in json.loads(f.read(n)).items() if k != '__metadata__'}))" "$WORK/a/model.safetensors")
[[ $dtypes == "['BF16']" ]] && pass "make_checkpoint: bf16 weights" || fail "make_checkpoint dtypes: $dtypes"

ids() { grep -o '"ids": *\[[0-9, ]*\]' | tr -d ' "ids:[]' | tail -1; }
actcap_ids=$("$BENCH/capture_speed" "$WORK/a" 1 24 10 fp32 1 | ids)
sharded_ids=$("$BENCH/capture_speed" "$WORK/sharded" 1 24 10 fp32 1 | ids)
shards=$(ls "$WORK/sharded"/model-*.safetensors | wc -l)
if [[ -n $actcap_ids && $actcap_ids == "$sharded_ids" && -f $WORK/sharded/model.safetensors.index.json && $shards -gt 20 ]]
then pass "actcap loads the checkpoint, whole and in $shards shards: greedy ids $actcap_ids"
else fail "sharded checkpoint: '$sharded_ids' vs '$actcap_ids' ($shards shards)"; fi
torch_ids=$($PY "$ACTCAP_SOURCE_DIR/bench/torch_eager_peer.py" "$WORK/a" 1 24 10 1 | ids)
[[ $torch_ids == "$actcap_ids" ]] && pass "PyTorch eager peer: same greedy ids" || fail "PyTorch eager peer: '$torch_ids' vs '$actcap_ids'"

reference_ids() {
  $PY -c "
import sys; sys.path.insert(0, sys.argv[2])
from torch_reference import read_safetensors
r = read_safetensors(sys.argv[1]); ids = r['gen/output_ids'].tolist()
print(','.join(map(str, ids[len(r['gen/input_ids']):])))" "$1/reference.safetensors" "$ACTCAP_SOURCE_DIR/tests/reference_gen"
}
if ! command -v node >/dev/null || [[ ! -d $PEERS/node_modules/node-llama-cpp ]]; then
  echo "skipped: llama.cpp runs (install with: npm install --prefix bench/peers)"
else
  llama_ids() { (cd "$PEERS" && node llama_cpp_bench.mjs "$@") | ids; }
  for m in qwen3 llama; do
    expected=$(reference_ids "$DATA/reference/$m")
    for dtype in f32 bf16; do
      "$BENCH/to_gguf" "$DATA/reference/$m" "$WORK/$m.$dtype.gguf" "$dtype" >/dev/null
      got=$(llama_ids "$WORK/$m.$dtype.gguf" 1 "$IDS" 10)
      [[ $got == "$expected" ]] && pass "llama.cpp on reference/$m as $dtype GGUF: HF's greedy ids" \
                                || fail "llama.cpp on reference/$m $dtype: '$got', HF '$expected'"
    done
  done
  prompt=$($PY -c "print(','.join(str((i * 7919 + 13) % 256) for i in range(24)))")
  for dtype in f32 bf16; do
    "$BENCH/to_gguf" "$WORK/a" "$WORK/llama3.$dtype.gguf" "$dtype" >/dev/null
    got=$(llama_ids "$WORK/llama3.$dtype.gguf" 1 "$prompt" 10)
    [[ $got == "$actcap_ids" ]] && pass "llama.cpp on the llama3-rope checkpoint as $dtype GGUF: actcap's ids" \
                                || fail "llama.cpp on the llama3-rope checkpoint $dtype: '$got', actcap '$actcap_ids'"
  done
fi

echo '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 300}, "merges": []}}' >"$WORK/tokenizer.json"
expect_error "make_checkpoint: tokenizer past the vocabulary" "token id 300 is past the shape's vocab_size 256" \
  "$WORK/t/model" "$BENCH/make_checkpoint" "$WORK/shape.json" "$WORK/t" --tokenizer "$WORK"
expect_error "make_checkpoint: not a llama-family shape" 'model_type "gpt2" is not of the llama family' \
  "$WORK/g/model" "$BENCH/make_checkpoint" "$DATA/reference/gpt2/config.json" "$WORK/g"
expect_error "to_gguf: gpt2" "config.json: model_type \"gpt2\" (llama or qwen3 only)" "$WORK/g.gguf" \
  "$BENCH/to_gguf" "$DATA/reference/gpt2" "$WORK/g.gguf" f32
finish "bench tools: checkpoints, GGUF conversion and peers agree"
