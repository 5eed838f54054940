#!/usr/bin/env bash
# Decode speed against the memory-bandwidth bound, measured in alternation: on a shared VM the read bandwidth
# changes from one minute (sometimes one second) to the next, so each decode run is held to the bandwidth
# measured just before and just after it (the higher of the two). ROUNDS times: bandwidth, actcap fp32 decode,
# actcap bf16 decode, bandwidth. Prints one line per round, then the median ratios per dtype.
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
# Bytes per decode step: the bf16 weights, and the key/value cache in the compute dtype.
bytes_fp32=$(python3 "$here/roofline_model.py" --decode-bytes "$model/config.json" "$tokens" "$new_tokens" 2 4)
bytes_bf16=$(python3 "$here/roofline_model.py" --decode-bytes "$model/config.json" "$tokens" "$new_tokens" 2 2)
bandwidth() {  # the best of roofline_bench's read bandwidths on $threads threads, read as roofline_model.py reads them
  "$build/bench/roofline_bench" 1024 bandwidth | python3 -c "import sys
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
from roofline_model import measured
print(measured(sys.stdin.read().splitlines())[('read_bandwidth', int(sys.argv[2]))])" "$here" "$threads"
}
decode() { "$build/bench/capture_speed" "$model" "$threads" "$tokens" "$new_tokens" "$1" 1 | sed -n 's/.*"decode_tok_s": \([0-9.]*\).*/\1/p'; }
echo "# $(date -u '+%F %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads," \
     "$(basename "$model"), 1 x $tokens prefill + $new_tokens tokens; bytes per decode step, weights and key/value" \
     "cache: fp32 $bytes_fp32, bf16 $bytes_bf16"
lines=""
for ((round = 1; round <= rounds; ++round)); do
  before=$(bandwidth) fp32=$(decode fp32) bf16=$(decode bf16) after=$(bandwidth)
  line=$(python3 -c "import sys
before, after, fp32, bf16, bytes_fp32, bytes_bf16 = map(float, sys.argv[1:7])
b = max(before, after) * 1e9
print(f'round {sys.argv[7]}: bandwidth {before} / {after} GB/s; '
      f'fp32 {fp32} tok/s = {100 * fp32 * bytes_fp32 / b:.0f}% of {b / bytes_fp32:.1f}, '
      f'bf16 {bf16} tok/s = {100 * bf16 * bytes_bf16 / b:.0f}% of {b / bytes_bf16:.1f}')" \
    "$before" "$after" "$fp32" "$bf16" "$bytes_fp32" "$bytes_bf16" "$round")
  echo "$line"
  lines+="$line"$'\n'
done
# Medians over all rounds, then over the steady ones (bandwidth before and after within 10%: the memory did not
# change state mid-round), split into the fast state (within 20% of the fastest steady round) and the slow one
# where the steady rounds saw both.
printf '%s' "$lines" | python3 -c "import re, statistics, sys
rounds = []
for line in sys.stdin.read().splitlines():
    before, after = map(float, re.search(r'bandwidth ([\d.]+) / ([\d.]+)', line).groups())
    ratios = {d: int(re.search(d + r' [\d.]+ tok/s = (\d+)%', line).group(1)) for d in ('fp32', 'bf16')}
    rounds.append((before, after, ratios))
steady = [r for r in rounds if abs(r[0] - r[1]) <= 0.1 * max(r[0], r[1])]
fastest = max((max(r[0], r[1]) for r in steady), default=0)
fast = [r for r in steady if max(r[0], r[1]) >= 0.8 * fastest]
slow = [r for r in steady if max(r[0], r[1]) < 0.8 * fastest]
groups = [('all rounds', rounds)] + ([('steady', steady)] if not slow else
                                     [('steady, fast state', fast), ('steady, slow state', slow)])
for name, group in groups:
    if group:
        summary = ', '.join(f'{d} median {statistics.median(r[2][d] for r in group):.0f}% '
                            f'(min {min(r[2][d] for r in group)}%, max {max(r[2][d] for r in group)}%)'
                            for d in ('fp32', 'bf16'))
        print(f'{name} ({len(group)}): {summary}')"
