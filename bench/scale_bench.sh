#!/usr/bin/env bash
# Scale-out on one machine: the same capture by 1 process and by 2 (mpirun -np 2, and --shard 0/2 + 1/2 run at
# once then merge), wall time and tokens/s of each, and the merged stores checked equal to the single one.
#
#   bench/scale_bench.sh [ACTCAP_BINARY] [MODEL_DIR]      (defaults: build/actcap, the bundled tiny GPT-2)
#
# Environment: PROMPTS (default 600 prompts of about 60 tokens), NEW_TOKENS (default 8), SITES, WORK.
# Each process gets 1 thread in the 2-process runs; the 1-process runs are shown with 1 thread and with 2.
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
now() { date +%s.%N; }
TOKENS=
report() {  # NAME START END STORE
  local tokens
  tokens=$($PY -c "import json,sys; print(sum(len(json.loads(l)['token_ids']) for l in open(sys.argv[1])))" "$4/records.jsonl")
  TOKENS=$tokens
  $PY -c "
import sys
name, t0, t1, tokens = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(f'{name:<40} {t1 - t0:7.1f} s  {tokens / (t1 - t0):8.0f} tok/s')" "$1" "$2" "$3" "$tokens"
}

echo "model $MODEL, $PROMPTS prompts + $NEW_TOKENS new tokens, sites $SITES, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for threads in 1 2; do
  rm -rf "$WORK/one$threads"; t0=$(now)
  "$ACTCAP" "${ARGS[@]}" --threads $threads --out "$WORK/one$threads"; t1=$(now)
  report "1 process, --threads $threads" "$t0" "$t1" "$WORK/one$threads"
done
if command -v mpirun >/dev/null; then
  rm -rf "$WORK/mpi"; t0=$(now)
  mpirun --oversubscribe --bind-to none -np 2 "$ACTCAP" "${ARGS[@]}" --threads 1 --out "$WORK/mpi"; t1=$(now)
  report "mpirun -np 2, --threads 1 each" "$t0" "$t1" "$WORK/mpi"
  PYTHONPATH=tests/scripts $PY tests/scale/compare_stores.py "$WORK/one1" "$WORK/mpi" >/dev/null || echo "  (the mpirun store differs!)"
fi
rm -rf "$WORK"/part* "$WORK/merged"; t0=$(now)
"$ACTCAP" "${ARGS[@]}" --threads 1 --shard 0/2 --out "$WORK/part0" &
"$ACTCAP" "${ARGS[@]}" --threads 1 --shard 1/2 --out "$WORK/part1"
wait
"$ACTCAP" merge "$WORK/part0" "$WORK/part1" --out "$WORK/merged" >/dev/null; t1=$(now)
report "--shard 0/2 + 1/2 at once, merge" "$t0" "$t1" "$WORK/merged"
PYTHONPATH=tests/scripts $PY tests/scale/compare_stores.py "$WORK/one1" "$WORK/merged" >/dev/null || echo "  (the merged store differs!)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
