#!/usr/bin/env bash
# Capture store at scale: 10k, 100k and 1M short prompts on the demo model, one stored row per prompt, into
# 1 GiB shards; then the 1M run again with 64 MiB shards. Reports wall time per record and peak resident memory
# (GNU time) for each, and whether 1M stays within 1.3x of 10k per record, in wall time and in CPU time (user +
# system: less sensitive to other work on the machine). Not a timed test (it takes minutes).
#
#   bench/store_scale_bench.sh [ACTCAP_BINARY] [MODEL_DIR]      (defaults: build/actcap, the bundled tiny GPT-2)
#
# Environment: COUNTS (default "10000 100000 1000000"), THREADS (default 0 = all), WORK (scratch, default mktemp).
set -euo pipefail
cd "$(dirname "$0")/.."
ACTCAP=${1:-build/actcap}
MODEL=${2:-tests/data/reference/tiny-gpt2}
COUNTS=${COUNTS:-10000 100000 1000000}
THREADS=${THREADS:-0}
WORK=${WORK:-$(mktemp -d)}
PY=/usr/bin/python3
mkdir -p "$WORK"

# Prompts of 8 words drawn with a fixed seed (generated here: nothing big is committed).
make_prompts() {
  $PY - "$1" "$2" <<'EOF2'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
words = "the store grows by one record per prompt while time per record and memory stay flat".split()
rng = random.Random(1234)
with open(path, "w") as f:
    for _ in range(n):
        f.write(" ".join(rng.choice(words) for _ in range(8)) + "\n")
EOF2
}

run() {  # run PROMPT_COUNT SHARD_SIZE: prints "count shard wall_s us/record cpu_us/record peak_rss_mib shards"
  local count=$1 shard=$2 out="$WORK/store-$1-$2"
  [[ -f "$WORK/prompts-$count.txt" ]] || make_prompts "$count" "$WORK/prompts-$count.txt"
  rm -rf "$out"
  /usr/bin/time -v "$ACTCAP" capture --model "$MODEL" --prompts-file "$WORK/prompts-$count.txt" --sites 'hidden_states.*' \
    --positions last --threads "$THREADS" --shard-size "$shard" --quiet --out "$out" >/dev/null 2>"$WORK/time-$count-$shard"
  $PY - "$count" "$shard" "$WORK/time-$count-$shard" "$out" <<'EOF2'
import json, re, sys
count, shard, timing, out = int(sys.argv[1]), sys.argv[2], open(sys.argv[3]).read(), sys.argv[4]
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", timing)
seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", timing).group(1)) for kind in ("User", "System"))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1)) / 1024
shards = len(json.load(open(out + "/manifest.json"))["shards"])
print(f"{count} {shard} {seconds:.1f} {seconds / count * 1e6:.1f} {cpu / count * 1e6:.1f} {rss:.1f} {shards}")
EOF2
  rm -rf "$out"
}

echo "actcap $("$ACTCAP" --version 2>/dev/null || echo '?'), model $MODEL, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "prompts  shard   wall_s  us/record  cpu_us/record  peak_RSS_MiB  shards"
results=()
for count in $COUNTS; do
  line=$(run "$count" 1GiB); results+=("$line"); printf '%7s  %5s  %7s  %9s  %13s  %12s  %6s\n' $line
done
largest=${COUNTS##* }
line=$(run "$largest" 64MiB); printf '%7s  %5s  %7s  %9s  %13s  %12s  %6s\n' $line
$PY - "${results[0]}" "${results[-1]}" <<'EOF2'
import sys
first, last = sys.argv[1].split(), sys.argv[2].split()
for what, column in (("wall", 3), ("CPU", 4)):
    r = float(last[column]) / float(first[column])
    print(f"{what} time per record, {last[0]} vs {first[0]} prompts: {r:.2f}x ({'within' if r <= 1.3 else 'NOT within'} 1.3x)")
EOF2
