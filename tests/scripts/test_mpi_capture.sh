#!/usr/bin/env bash
# mpirun -np 3 actcap capture (loopback, oversubscribed on this machine): the merged store equals a single-process
# capture bit for bit (an independent reader) and verifies; a rank killed mid-run, then --resume, completes the
# same store; --resume of a complete store does nothing. Skips unless mpirun exists and actcap was built with MPI.
set -uo pipefail
ACTCAP=${1:?usage: test_mpi_capture.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python json numpy
COMPARE="$PY ${ACTCAP_SOURCE_DIR}/tests/scale/compare_stores.py"
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo
MPIRUN=(mpirun --oversubscribe --bind-to none)
# Two ranks: a single one (world size 1) is a plain run for every build. The output is kept first: under
# pipefail, mpirun's own failure would otherwise decide the condition.
probe=$("${MPIRUN[@]}" -np 2 "$ACTCAP" capture --model none --prompt x --out "$WORK/probe" 2>&1)
if grep -q "built without MPI" <<<"$probe"; then
  echo "SKIP: actcap was built without MPI (ACTCAP_MPI)"
  exit 77
fi

MODEL="$DATA/reference/tiny-gpt2"
$PY -c "
import random
rng = random.Random(11)
words = 'three ranks capture one store that a single process would write'.split()
with open('$WORK/p.txt', 'w') as f:
    for i in range(2000):
        f.write(' '.join(rng.choice(words) for _ in range(1 + rng.randrange(9))) + '\n')
"
ARGS=(capture --model "$MODEL" --prompts-file "$WORK/p.txt" --sites 'hidden_states.*,blocks.0.*' --positions last
      --max-new-tokens 2 --shard-size 64KB --threads 1 --quiet)
same() {
  local problem
  if ! problem=$($COMPARE "$2" "$3" 2>&1); then fail "$1: $problem"
  elif ! "$ACTCAP" verify "$3" >/dev/null 2>&1; then fail "$1: verify: $("$ACTCAP" verify "$3" 2>&1)"
  elif ! cmp -s "$2/records.jsonl" "$3/records.jsonl"; then fail "$1: records.jsonl differs"
  else pass "$1: $problem, verify OK"; fi
}

"$ACTCAP" "${ARGS[@]}" --out "$WORK/single" || fail "single-process capture"

# 1. Three ranks: one store, the single process's records and tensors; the parts are gone.
"${MPIRUN[@]}" -np 3 "$ACTCAP" "${ARGS[@]}" --out "$WORK/mpi" >"$WORK/mpi.txt" 2>&1 || fail "mpirun: $(cat "$WORK/mpi.txt")"
same "mpirun -np 3" "$WORK/single" "$WORK/mpi"
[[ -e "$WORK/mpi.parts" ]] && fail "the parts folder was left behind"
$PY -c "import json,sys; m=json.load(open(sys.argv[1])); assert m['merged']['parts'] == 3 and 'part' not in m, m" \
  "$WORK/mpi/manifest.json" && pass "the manifest says it was merged from 3 parts" || fail "merged manifest"
$PY - "$WORK/single/summary.json" "$WORK/mpi/summary.json" <<'PY' && pass "summary.json adds the ranks' counts up" \
  || fail "summary.json of the merged store"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert b["ranks"] == 3 and b["out"].endswith("/mpi"), b
for key in ("records", "records_this_run", "tokens", "tokens_this_run", "dtype", "layout"):
    assert a[key] == b[key], (key, a[key], b[key])
assert all(a["sites"][s]["rows"] == b["sites"][s]["rows"] and a["sites"][s]["bytes"] == b["sites"][s]["bytes"] for s in a["sites"])
PY

# 2. Rank 1 killed mid-run: mpirun stops the job; --resume runs only what is missing and completes the same store.
"${MPIRUN[@]}" -np 3 "$ACTCAP" "${ARGS[@]}" --out "$WORK/killed" >"$WORK/killed.txt" 2>&1 &
launcher=$!
lock="$WORK/killed.parts/rank-1/.lock"
for _ in $(seq 1500); do [[ -e "$WORK/killed.parts/rank-1/shard-00002.safetensors" ]] && break; sleep 0.02; done
rank1=$(grep -o 'pid [0-9]*' "$lock" 2>/dev/null | head -1 | cut -d' ' -f2)
if [[ -n $rank1 ]] && kill -9 "$rank1" 2>/dev/null; then pass "killed rank 1 (pid $rank1)"; else fail "rank 1 not found"; fi
wait "$launcher" && fail "mpirun succeeded although rank 1 was killed"
[[ -e "$WORK/killed/manifest.json" ]] && fail "a store was merged although rank 1 was killed"
done_before=$(cat "$WORK"/killed.parts/rank-*/records.jsonl 2>/dev/null | wc -l)
"${MPIRUN[@]}" -np 3 "$ACTCAP" "${ARGS[@]}" --resume --out "$WORK/killed" >"$WORK/resume.txt" 2>&1 \
  || fail "mpirun --resume: $(cat "$WORK/resume.txt")"
same "rank killed, then --resume ($done_before records kept)" "$WORK/single" "$WORK/killed"

# 3. --resume of the complete store: nothing to do, the store untouched.
before=$(sha256sum "$WORK/killed/manifest.json")
"${MPIRUN[@]}" -np 3 "$ACTCAP" "${ARGS[@]}" --resume --out "$WORK/killed" >"$WORK/again.txt" 2>&1 \
  && grep -q "already complete" "$WORK/again.txt" && [[ $(sha256sum "$WORK/killed/manifest.json") == "$before" ]] \
  && pass "--resume of a complete store does nothing" || fail "--resume of a complete store: $(cat "$WORK/again.txt")"

# 4. An existing store without --resume, and --shard under mpirun: refused on every rank, nothing written.
"${MPIRUN[@]}" -np 2 "$ACTCAP" "${ARGS[@]}" --out "$WORK/mpi" >"$WORK/exists.txt" 2>&1 && fail "capture over a store"
grep -q "already holds a capture store" "$WORK/exists.txt" && pass "an existing store is refused" \
  || fail "existing store: $(cat "$WORK/exists.txt")"
"${MPIRUN[@]}" -np 2 "$ACTCAP" "${ARGS[@]}" --shard 0/2 --out "$WORK/sharded" >"$WORK/shard.txt" 2>&1 && fail "--shard under mpirun"
grep -q "leave out --shard" "$WORK/shard.txt" && [[ ! -e "$WORK/sharded.parts" ]] && pass "--shard under mpirun is refused" \
  || fail "--shard under mpirun: $(cat "$WORK/shard.txt")"
"${MPIRUN[@]}" -np 2 "$ACTCAP" capture --model "$WORK/no-model" --prompt hi --out "$WORK/nomodel" >"$WORK/err_nomodel.txt" 2>&1 \
  && fail "a missing model under mpirun"
grep -q "rank 0: .*no-model" "$WORK/err_nomodel.txt" && ! ls -d "$WORK"/nomodel* >/dev/null 2>&1 \
  && pass "a failing rank stops every rank, nothing written" || fail "missing model: $(cat "$WORK/err_nomodel.txt"; ls -d "$WORK"/nomodel*)"

finish "mpirun: OK"
