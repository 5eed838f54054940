#!/usr/bin/env bash
# Capture at scale: captures >= 100,000 tokens of text prompts on a small model, then 10x as many prompts, and
# reports tokens/s, bytes/s written and peak resident memory (GNU time) for both. Bounded memory means the two
# peaks agree within 10%.
#
#   bench/capture_bench.sh [ACTCAP_BINARY] [MODEL_DIR]      (defaults: build/actcap, the bundled tiny GPT-2)
#
# Environment: PROMPTS (default 900 prompts of about 113 tokens), SITES, THREADS, BATCH_TOKENS, SHARD_SIZE, WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTCAP=${1:-build/actcap}
MODEL=${2:-tests/data/reference/tiny-gpt2}
PROMPTS=${PROMPTS:-900}
SITES=${SITES:-hidden_states.*,blocks.*.hook_resid_mid}
THREADS=${THREADS:-0}
BATCH_TOKENS=${BATCH_TOKENS:-4096}
SHARD_SIZE=${SHARD_SIZE:-16MiB}
WORK=${WORK:-$(mktemp -d)}
PY=/usr/bin/python3
mkdir -p "$WORK"

# Prompts of about 113 GPT-2 tokens: words drawn with a fixed seed, so every run captures the same text.
make_prompts() {
  $PY - "$1" "$2" <<'EOF'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
words = ("the model reads every token and writes its activations to disk while memory stays flat as the "
         "dataset grows from one thousand prompts to ten thousand prompts of text about science history music "
         "cities rivers numbers 12 345 6789 and code like x = f(y) + 1;").split()
rng = random.Random(1234)
with open(path, "w") as f:
    for _ in range(n):
        f.write(" ".join(rng.choice(words) for _ in range(100)) + "\n")
EOF
}

run() {  # run NAME PROMPT_COUNT
  local name=$1 count=$2
  make_prompts "$count" "$WORK/$name.txt"
  rm -rf "$WORK/$name.out"
  /usr/bin/time -v "$ACTCAP" capture --model "$MODEL" --prompts-file "$WORK/$name.txt" --sites "$SITES" \
    --threads "$THREADS" --batch-tokens "$BATCH_TOKENS" --shard-size "$SHARD_SIZE" --quiet --json --out "$WORK/$name.out" \
    >"$WORK/$name.json" 2>"$WORK/$name.time"
  $PY - "$name" "$WORK/$name.json" "$WORK/$name.time" <<'EOF'
import json, re, sys
name, summary, timing = sys.argv[1:4]
m = json.load(open(summary))["models"][0]
text = open(timing).read()
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
wall = m["wall_seconds"]
print(f"{name:>6}: {m['records']:>6} prompts {m['tokens']:>9} tokens  {m['tokens_per_second']:>10.0f} tok/s  "
      f"{m['bytes_written'] / wall / 1e6:>8.1f} MB/s written ({m['bytes_written'] / 1e6:.1f} MB)  "
      f"peak RSS {rss_kb / 1024:.1f} MiB  wall {wall:.1f} s")
open(sys.argv[2] + ".rss", "w").write(str(rss_kb))
EOF
}

echo "model $MODEL, sites $SITES, threads ${THREADS} (0 = all of $(nproc)), batch $BATCH_TOKENS tokens, shards $SHARD_SIZE"
run base "$PROMPTS"
run ten_x $((PROMPTS * 10))
base=$(cat "$WORK/base.json.rss")
ten=$(cat "$WORK/ten_x.json.rss")
$PY -c "
b, t = $base, $ten
growth = (t - b) / b * 100
print(f'peak memory with 10x the prompts: {growth:+.1f}% ({\"within\" if abs(growth) <= 10 else \"NOT within\"} 10%)')
"
