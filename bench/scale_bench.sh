#!/usr/bin/env bash
# Scale-out on one machine: the same capture by 1 process and by 2 (mpirun -np 2; --shard 0/2 + 1/2 run at once,
# then merge; --device cpu,cpu in one process), wall and CPU time and tokens/s of each, and every store checked
# equal to the single process's.
#
#   bench/scale_bench.sh [ACTCAP_BINARY] [MODEL_DIR]      (defaults: build/actcap, the bundled tiny GPT-2)
#
# Environment: PROMPTS (default 600 prompts of about 60 tokens), NEW_TOKENS (default 8), SITES, WORK.
# Each process gets 1 thread in the 2-process runs; the 1-process runs are shown with 1 thread and with 2.
# CPU seconds include child processes, so tok/CPU-s shows the cost of splitting even on a loaded machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTCAP=${1:-build/actcap}
MODEL=${2:-tests/data/reference/tiny-gpt2}
PROMPTS=${PROMPTS:-600}
NEW_TOKENS=${NEW_TOKENS:-8}
SITES=${SITES:-hidden_states.*,blocks.*.hook_resid_mid}
WORK=${WORK:-$(mktemp -d)}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo
mkdir -p "$WORK"

$PY - "$PROMPTS" "$WORK/p.txt" <<'PY'
import random, sys
words = ("every rank captures its own slice of the prompts and the parts merge into one store that a single "
         "process would have written bit for bit 12 345 and code like x = f(y) + 1;").split()
rng = random.Random(99)
with open(sys.argv[2], "w") as f:
    for _ in range(int(sys.argv[1])):
        f.write(" ".join(rng.choice(words) for _ in range(50)) + "\n")
PY
ARGS=(capture --model "$MODEL" --prompts-file "$WORK/p.txt" --sites "$SITES" --max-new-tokens "$NEW_TOKENS"
      --shard-size 16MiB --quiet)
TOKENS=
timed() {  # NAME STORE COMMAND...: wall and CPU seconds (children included) of COMMAND, tokens/s of each
  local name=$1 store=$2
  shift 2
  /usr/bin/time -f "%e %U %S" -o "$WORK/time.txt" "$@"
  $PY - "$name" "$store/records.jsonl" "$WORK/time.txt" <<'PY'
import json, sys
name, records, timing = sys.argv[1:4]
tokens = sum(len(json.loads(l)["token_ids"]) for l in open(records))
wall, user, system = map(float, open(timing).read().split()[-3:])
print(f"{name:<36} {wall:6.1f} s wall {user + system:6.1f} s CPU  {tokens / wall:7.0f} tok/s  "
      f"{tokens / (user + system):7.0f} tok/CPU-s")
PY
}
compare() { PYTHONPATH=tests/scripts $PY tests/scale/compare_stores.py "$1" "$2" >/dev/null || echo "  ($2 differs from $1!)"; }

echo "$(date -u '+%F %H:%M UTC'): model $MODEL, $PROMPTS prompts + $NEW_TOKENS new tokens, sites $SITES,"
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load $(cut -d' ' -f1-3 /proc/loadavg)"
for threads in 1 2; do
  rm -rf "$WORK/one$threads"
  timed "1 process, --threads $threads" "$WORK/one$threads" "$ACTCAP" "${ARGS[@]}" --threads $threads --out "$WORK/one$threads"
done
if command -v mpirun >/dev/null; then
  rm -rf "$WORK/mpi"
  timed "mpirun -np 2, --threads 1 each" "$WORK/mpi" \
    mpirun --oversubscribe --bind-to none -np 2 "$ACTCAP" "${ARGS[@]}" --threads 1 --out "$WORK/mpi"
  compare "$WORK/one1" "$WORK/mpi"
fi
rm -rf "$WORK"/part* "$WORK/merged"
export ACTCAP WORK
timed "--shard 0/2 + 1/2 at once, merge" "$WORK/merged" bash -c '
  "$ACTCAP" "$@" --threads 1 --shard 0/2 --out "$WORK/part0" & "$ACTCAP" "$@" --threads 1 --shard 1/2 --out "$WORK/part1"
  wait; "$ACTCAP" merge "$WORK/part0" "$WORK/part1" --out "$WORK/merged" >/dev/null' _ "${ARGS[@]}"
compare "$WORK/one1" "$WORK/merged"
rm -rf "$WORK/cpus"
timed "--device cpu,cpu (one process)" "$WORK/cpus" "$ACTCAP" "${ARGS[@]}" --threads 2 --device cpu,cpu --out "$WORK/cpus"
compare "$WORK/one1" "$WORK/cpus"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
