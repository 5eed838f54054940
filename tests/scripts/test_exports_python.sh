#!/usr/bin/env bash
# The export commands on a real capture: `actcap capture` of the tiny reference Llama (two prompts, fp32 and
# bf16 stores), then `actcap export integers | hypercube | zkllm` and `actcap hypercube locate`, everything read
# back with numpy and checked by tests/exports/check_exports.py (decimal oracle, every hypercube element through
# its layer map, zkLLM files equal to round(x * 2^16), weights transposed).
set -uo pipefail
ACTCAP=${1:?usage: test_exports_python.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
SRC=${ACTCAP_SOURCE_DIR:?}
source "$SRC/tests/scripts/common.sh"
require_python numpy
if ! "$ACTCAP" capture --help >/dev/null 2>&1; then echo "SKIP: this actcap has no capture command"; exit 77; fi
MODEL="$DATA/reference/llama"

ids_of() {
  $PY -c 'import readers, sys
ids = readers.read_safetensors(sys.argv[1])[sys.argv[2] + "/input_ids"]
print(",".join(map(str, ids.reshape(-1).tolist())))' "$MODEL/reference.safetensors" "$1"
}
SITES='hidden_states.*,blocks.*.hook_resid_pre,blocks.*.ln1.hook_normalized,blocks.*.hook_resid_mid,blocks.*.ln2.hook_normalized,blocks.*.hook_resid_post'
step() {
  if ! "$@" >"$WORK/log" 2>&1; then
    echo "FAIL: $*"
    cat "$WORK/log"
    exit 1
  fi
}
step "$ACTCAP" capture --model "$MODEL" --input-ids "$(ids_of s0)" --input-ids "$(ids_of s1)" --sites "$SITES" \
  --quiet --out "$WORK/store"
step "$ACTCAP" capture --model "$MODEL" --input-ids "$(ids_of s0)" --sites "$SITES" --store-dtype bf16 --quiet \
  --out "$WORK/store_bf16"
H='hidden_states.*'
step "$ACTCAP" export integers "$WORK/store" --out "$WORK/ints" --record 1 --sites "$H"
step "$ACTCAP" export integers "$WORK/store" --out "$WORK/ints_fixed" --record 1 --format fixed --sites "$H"
step "$ACTCAP" export integers "$WORK/store" --out "$WORK/ints_i64" --record 1 --format int64 --quantize 50 --sites "$H"
step "$ACTCAP" export integers "$WORK/store_bf16" --out "$WORK/ints_bf16" --record 0 --sites "$H"
step "$ACTCAP" export integers "$WORK/store" --out "$WORK/ints_rows"
step "$ACTCAP" export hypercube "$WORK/ints_rows" --out "$WORK/cube_rows"
step "$ACTCAP" export hypercube "$WORK/ints" --out "$WORK/cube"
step "$ACTCAP" export hypercube "$WORK/ints_fixed" --out "$WORK/cube_fixed" --num-dims 5 --pad-seed 9
step "$ACTCAP" export zkllm "$WORK/store" --out "$WORK/zk" --record 1 --pad-to-pow2 --weights --model "$MODEL"
step "$ACTCAP" export zkllm "$WORK/store" --out "$WORK/zk6" --record 0
grep -q "not a power of two" "$WORK/log" || { echo "FAIL: no power-of-two warning for seq_len 6"; exit 1; }
step "$ACTCAP" export zkllm "$WORK/store" --out "$WORK/zk12" --record 0 --scale-bits 12
step "$ACTCAP" export zkllm "$WORK/store" --out "$WORK/zk_all"
$PY "$SRC/tests/exports/check_exports.py" "$ACTCAP" "$WORK" "$MODEL" || exit 1
echo "ok: exports"
