#!/usr/bin/env bash
# actcap compare through the binary, every number recomputed with numpy (tests/analysis/check_compare.py):
# a store against itself (cosine exactly 1, differences exactly 0), against a rerun with other batching, against
# its bf16 twin, against a stepwise capture, against a --resume'd twin; two records of one store; two models with the same token ids (one of
# the same width, one narrower: reported, not compared); and the refusals (different tokens, record mismatch).
set -uo pipefail
ACTCAP=${1:?usage: test_compare.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python json numpy
CHECK="${ACTCAP_SOURCE_DIR}/tests/analysis/check_compare.py"

M="$DATA/reference/tiny-gpt2"
printf '%s\n' "Hello world" "The quick brown fox jumps over the lazy dog" "Activations, exactly as HF computes them" \
  >"$WORK/prompts.txt"
capture() { "$ACTCAP" capture --quiet "$@" >/dev/null 2>"$WORK/capture.err" || fail "capture $*: $(cat "$WORK/capture.err")"; }
capture --model "$M" --prompts-file "$WORK/prompts.txt" --max-new-tokens 3 --sites all --out "$WORK/a"
capture --model "$M" --prompts-file "$WORK/prompts.txt" --max-new-tokens 3 --sites all --batch-tokens 8 --out "$WORK/batched"
capture --model "$M" --prompts-file "$WORK/prompts.txt" --max-new-tokens 3 --sites all --store-dtype bf16 --out "$WORK/bf16"

# compare_ok NAME A B [OPTIONS...]: runs compare with --json and checks every number against numpy.
compare_ok() {
  local name=$1 a=$2 b=$3 pairs=$4
  shift 4
  if ! "$ACTCAP" compare "$a" "$b" "$@" --json "$WORK/$name.json" >"$WORK/$name.txt" 2>&1; then
    fail "$name: $(cat "$WORK/$name.txt")"
  elif $PY "$CHECK" "$a" "$b" "$WORK/$name.json" $pairs >"$WORK/check.txt" 2>&1; then
    pass "$name: $(cat "$WORK/check.txt")"
  else
    fail "$name: $(cat "$WORK/check.txt")"
  fi
}

# 1. A store against itself: exactly 1 and 0 everywhere, every site compared.
compare_ok self "$WORK/a" "$WORK/a" ""
$PY - "$WORK/self.json" "$WORK/a" <<'PY' && pass "self: cosine exactly 1, differences exactly 0" || fail "self: not exact"
import json, sys
r = json.load(open(sys.argv[1]))
sites = json.load(open(sys.argv[2] + "/manifest.json"))["sites"]
assert [s["site"] for s in r["sites"]] == sites and not r["not_compared"], "every site, in forward order"
for s in r["sites"]:
    assert s["cosine_mean"] == s["cosine_min"] == s["cosine_flat"] == 1.0, s
    assert s["relative_l2"] == 0.0 and s["max_abs_diff"] == 0.0, s
    assert s["rows"] == sum(len(json.loads(l)["positions"]) for l in open(sys.argv[2] + "/records.jsonl")), s
PY
grep -q "^blocks.0.hook_resid_pre  *\[32\]  *[0-9]*  *1  *1  *1  *0  *0$" "$WORK/self.txt" \
  && pass "self: the table says so" || fail "self table: $(cat "$WORK/self.txt")"

# 2. Real pairs: another batching, the bf16 store, stepwise against rerun, a subset of sites and records.
compare_ok batched "$WORK/a" "$WORK/batched" ""
$PY -c "
import json
r = json.load(open('$WORK/batched.json'))
assert all(s['cosine_min'] == 1 and s['max_abs_diff'] == 0 for s in r['sites']), r['sites']" \
  && pass "batched: bit for bit the same on CPU (docs/PERFORMANCE.md: batching never changes a sequence's bits)" \
  || fail "batched: $(cat "$WORK/batched.txt")"
compare_ok bf16 "$WORK/a" "$WORK/bf16" ""
$PY -c "
import json, sys
r = json.load(open('$WORK/bf16.json'))
s = {x['site']: x for x in r['sites']}['hidden_states.1']
assert 0 < s['relative_l2'] < 2 ** -8 and 0.9999 < s['cosine_min'] < 1, s" \
  && pass "bf16: relative L2 below bf16's rounding, cosine just under 1" || fail "bf16: $(cat "$WORK/bf16.txt")"
# On AVX-512 CPUs every GEMM output is computed on its own, so a stepwise capture repeats the rerun bit for bit;
# the portable kernels (OpenBLAS, whose kernels depend on the row count) give the rounding differences shown here.
ACTCAP_CPU_KERNELS=portable capture --model "$M" --prompts-file "$WORK/prompts.txt" --max-new-tokens 3 --sites all --capture-mode stepwise --out "$WORK/stepwise"
compare_ok stepwise "$WORK/a" "$WORK/stepwise" ""
$PY -c "
import json
r = json.load(open('$WORK/stepwise.json'))
assert all(s['cosine_min'] > 0.99999 and s['relative_l2'] < 1e-5 for s in r['sites']), r['sites']" \
  && pass "stepwise: the same values as rerun up to rounding" || fail "stepwise: $(cat "$WORK/stepwise.txt")"
grep -q "^logits  *\[50257\]  *[0-9]*  *1-[0-9.]*e-[0-9]*  " "$WORK/stepwise.txt" \
  && pass "stepwise: the table shows how far below 1 the cosine is" || fail "stepwise table: $(cat "$WORK/stepwise.txt")"
capture --model "$M" --prompts-file "$WORK/prompts.txt" --max-new-tokens 3 --sites 'hidden_states.*' --positions last --out "$WORK/last"
compare_ok last "$WORK/a" "$WORK/last" "" --sites "hidden_states.*"
$PY -c "
import json
r = json.load(open('$WORK/last.json'))
assert [s['rows'] for s in r['sites']] == [3, 3, 3] and r['not_compared'] == [], r
assert all(s['max_abs_diff'] == 0 for s in r['sites']), r['sites']" \
  && pass "last: all positions against --positions last compares the last token of each record" \
  || fail "last: $(cat "$WORK/last.txt")"
compare_ok subset "$WORK/bf16" "$WORK/a" "0:0,2:2" --sites 'hidden_states.*' 'blocks.1.*' --records 0,2
$PY -c "
import json
r = json.load(open('$WORK/subset.json'))
assert r['a']['records'] == '0,2' and r['pairs'] == 2, r
assert [s['site'] for s in r['sites']] == ['hidden_states.0', 'hidden_states.1'] + [s for s in json.load(open('$WORK/a/manifest.json'))['sites'] if s.startswith('blocks.1.')] + ['hidden_states.2'], r['sites']" \
  && pass "subset: the sites (forward order) and records asked for" || fail "subset: $(cat "$WORK/subset.txt")"

# 3. Two records of one store, with different tokens: rows in order over the shorter record.
compare_ok records "$WORK/a" "$WORK/a" "0:1" --record 0 --against 1 --allow-different-tokens
grep -q "different tokens in 1 of 1 pairs" "$WORK/records.txt" && pass "records: the table says how rows were paired" \
  || fail "records table: $(cat "$WORK/records.txt")"
"$ACTCAP" compare "$WORK/a" --record 2 --against 1 --allow-different-tokens --json - >"$WORK/one_store.json" 2>&1 \
  && $PY "$CHECK" "$WORK/a" "$WORK/a" "$WORK/one_store.json" "2:1" >"$WORK/check.txt" 2>&1 \
  && pass "one store, B omitted, JSON on stdout: $(cat "$WORK/check.txt")" || fail "one store: $(cat "$WORK/one_store.json" "$WORK/check.txt")"

# 4. A store against its --resume'd twin (killed mid-capture): identical.
$PY -c "
import random
rng = random.Random(3)
words = 'the resumed store holds what an uninterrupted capture would have written'.split()
print('\n'.join(' '.join(rng.choice(words) for _ in range(5)) for _ in range(20000)))" >"$WORK/many.txt"
twin=(capture --model "$M" --prompts-file "$WORK/many.txt" --sites 'hidden_states.*' --positions last --shard-size 64KiB --quiet)
"$ACTCAP" "${twin[@]}" --out "$WORK/whole" >/dev/null 2>&1 || fail "the uninterrupted capture failed"
"$ACTCAP" "${twin[@]}" --out "$WORK/resumed" >/dev/null 2>&1 &
victim=$!
for _ in $(seq 200); do [[ -e "$WORK/resumed/shard-00001.safetensors" ]] && break; sleep 0.05; done
kill -9 "$victim" 2>/dev/null; wait "$victim" 2>/dev/null
grep -q '"complete": false' "$WORK/resumed/manifest.json" && pass "twin: the capture was interrupted" \
  || echo "note: the capture finished before it was killed"
"$ACTCAP" "${twin[@]}" --resume --out "$WORK/resumed" >/dev/null 2>&1 || fail "--resume failed"
if "$ACTCAP" compare "$WORK/whole" "$WORK/resumed" --json "$WORK/twin.json" >"$WORK/twin.txt" 2>&1 && $PY -c "
import json
r = json.load(open('$WORK/twin.json'))
assert r['pairs'] == 20000 and len(r['sites']) == 3, r
assert all(s['cosine_min'] == 1 and s['max_abs_diff'] == 0 and s['rows'] == 20000 for s in r['sites']), r['sites']"; then
  pass "twin: the resumed store equals the uninterrupted one (20000 records)"
else
  fail "twin: $(cat "$WORK/twin.txt")"
fi

# 5. Two models fed the same token ids: gpt2 and llama (width 64) share some sites; tiny-gpt2 is narrower.
IDS="[5, 17, 300, 42, 7, 99, 12]"
capture --model "$DATA/reference/gpt2" --input-ids "$IDS" --sites all --out "$WORK/gpt2"
capture --model "$DATA/reference/llama" --input-ids "$IDS" --sites all --out "$WORK/llama"
capture --model "$M" --input-ids "$IDS" --sites all --out "$WORK/tiny"
compare_ok models "$WORK/gpt2" "$WORK/llama" ""
$PY -c "
import json
r = json.load(open('$WORK/models.json'))
skipped = {s['site']: s['reason'] for s in r['not_compared']}
assert skipped['blocks.0.attn.hook_q'] == 'only in B' and skipped['hook_pos_embed'] == 'only in A', skipped
assert skipped['blocks.0.mlp.hook_pre'].startswith('rows are [256] in A'), skipped
assert any(s['site'] == 'blocks.1.hook_resid_post' for s in r['sites']), r['sites']" \
  && pass "models: sites of one model only, and of other widths, reported" || fail "models: $(cat "$WORK/models.txt")"
compare_ok widths "$WORK/gpt2" "$WORK/tiny" ""
grep -q "hidden_states.1: rows are \[64\] in A (record 0) but \[32\] in B (record 0)" "$WORK/widths.txt" \
  && pass "widths: listed as not compared" || fail "widths: $(cat "$WORK/widths.txt")"

# 6. Refusals: one line each, no JSON left behind.
expect_error "different tokens" "record 0 and $WORK/a record 1 hold different tokens (token 15496 at position 0 against" \
  "$WORK/refused.json" "$ACTCAP" compare "$WORK/a" --record 0 --against 1 --json "$WORK/refused.json"
expect_error "different record sets" "compare the same records" "$WORK/refused.json" \
  "$ACTCAP" compare "$WORK/a" "$WORK/gpt2" --json "$WORK/refused.json"
expect_error "bad plot name" "--plot $WORK/x.jpg: expected a .png or .svg file" "$WORK/x" \
  "$ACTCAP" compare "$WORK/a" "$WORK/a" --plot "$WORK/x.jpg"
expect_error "--json into a missing folder" "--json $WORK/missing/c.json: the folder $WORK/missing does not exist" \
  "$WORK/missing" "$ACTCAP" compare "$WORK/a" "$WORK/a" --json "$WORK/missing/c.json"
expect_error "a site glob that matches nothing" "nope" "$WORK/refused.json" \
  "$ACTCAP" compare "$WORK/a" "$WORK/a" --sites nope --json "$WORK/refused.json"
expect_error "--against alone" "--against J needs --record I" "$WORK/refused.json" "$ACTCAP" compare "$WORK/a" --against 1
expect_error "a record B lacks" "no record 5" "$WORK/refused.json" "$ACTCAP" compare "$WORK/a" "$WORK/gpt2" --record 0 --against 5

finish "compare: all passed"
