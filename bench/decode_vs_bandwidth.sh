#!/usr/bin/env bash
# Decode speed against the memory-bandwidth bound, measured in alternation: on a shared VM the read bandwidth
# changes from one minute (sometimes one second) to the next, so each decode run is held to the bandwidth
# measured just before and just after it (the higher of the two). ROUNDS times: bandwidth, actcap fp32 decode,
# actcap bf16 decode, bandwidth. Prints one line per run and the median ratio per dtype.
#
#   bench/decode_vs_bandwidth.sh [BUILD_DIR] [MODEL_DIR] [THREADS] [TOKENS] [NEW_TOKENS] [ROUNDS]
#   (defaults: build /tmp/actcap-bench/qwen3-0.6b 2 128 32 6; the model folder comes from bench/cpu_vs_peers.sh
#   or bench/make_checkpoint)
set -euo pipefail
build=${1:-build} model=${2:-/tmp/actcap-bench/qwen3-0.6b}
threads=${3:-2} tokens=${4:-128} new_tokens=${5:-32} rounds=${6:-6}
for tool in capture_speed roofline_bench; do
  [[ -x $build/bench/$tool ]] || { echo "decode_vs_bandwidth.sh: $build/bench/$tool not built" >&2; exit 1; }
done
[[ -f $model/config.json ]] || { echo "decode_vs_bandwidth.sh: $model/config.json: no model there" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
bytes=$(python3 "$here/roofline_model.py" --decode-bytes "$model/config.json" "$tokens" "$new_tokens")
bandwidth() {  # the best of roofline_bench's read bandwidths on $threads threads, read as roofline_model.py reads them
  "$build/bench/roofline_bench" 1024 bandwidth | python3 -c "import sys
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from roofline_model import measured
print(measured(sys.stdin.read().splitlines())[('read_bandwidth', int(sys.argv[2]))])" "$here" "$threads"
}
decode() { "$build/bench/capture_speed" "$model" "$threads" "$tokens" "$new_tokens" "$1" 1 | sed -n 's/.*"decode_tok_s": \([0-9.]*\).*/\1/p'; }
echo "# $(date -u '+%F %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads," \
     "$(basename "$model"), 1 x $tokens prefill + $new_tokens tokens, $bytes bytes of weights per decode step"
lines=""
for ((round = 1; round <= rounds; ++round)); do
  before=$(bandwidth) fp32=$(decode fp32) bf16=$(decode bf16) after=$(bandwidth)
  line=$(python3 -c "import sys
b = max(float(sys.argv[1]), float(sys.argv[2])); bound = b * 1e9 / float(sys.argv[5])
print(f'round {sys.argv[6]}: bandwidth {sys.argv[1]} / {sys.argv[2]} GB/s, bound {bound:.1f} tok/s; '
      f'fp32 {sys.argv[3]} tok/s = {100 * float(sys.argv[3]) / bound:.0f}%, bf16 {sys.argv[4]} tok/s = {100 * float(sys.argv[4]) / bound:.0f}%')" \
    "$before" "$after" "$fp32" "$bf16" "$bytes" "$round")
  echo "$line"
  lines+="$line"$'\n'
done
printf '%s' "$lines" | python3 -c "import re, statistics, sys
lines = sys.stdin.read().splitlines()
for dtype in ('fp32', 'bf16'):
    ratios = [int(m.group(1)) for l in lines for m in [re.search(dtype + r' [\d.]+ tok/s = (\d+)%', l)] if m]
    print(f'{dtype}: median {statistics.median(ratios):.0f}% of the bound (min {min(ratios)}%, max {max(ratios)}%)')"
