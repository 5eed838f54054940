#!/usr/bin/env bash
# A new user's first hour with `actcap capture` and `actcap sites`: the README's commands as written, what the
# terminal shows, the errors of common mistakes (each one line, exit status, nothing left behind) and reruns.
set -uo pipefail
ACTCAP=${1:?usage: test_capture_first_hour.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python json
demo="$DATA/reference/tiny-gpt2"
field() { $PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(json.dumps(eval(sys.argv[2])))' "$@"; }
records() { $PY -c 'import json,sys; [print(json.dumps(json.loads(l).get(sys.argv[2]))) for l in open(sys.argv[1] + "/records.jsonl")]' "$@"; }

# 1. The README's commands on the demo model ($M), run as written from a scratch folder.
readme="${ACTCAP_SOURCE_DIR}/README.md"
mapfile -t commands < <(grep -E '^\$A (capture|sites) --model \$M ' "$readme")
((${#commands[@]} >= 3)) || fail "README: expected at least 3 capture/sites commands on \$M, found ${#commands[@]}"
for command in "${commands[@]}"; do
  if (cd "$WORK" && A=$ACTCAP M=$demo && eval "$command") >"$WORK/readme.out" 2>"$WORK/readme.err"; then
    pass "README: $command"
  else
    fail "README: $command: $(cat "$WORK/readme.err")"
  fi
done

# 2. What a capture prints: on stderr a summary (no JSON, no carriage returns in a log); stdout only with --json;
# summary.json in the store, which verify accepts.
"$ACTCAP" capture --model "$demo" --prompt "Hello world" --prompt "The capital of France is" --max-new-tokens 3 \
  --out "$WORK/two" >"$WORK/two.out" 2>"$WORK/two.err" || fail "two-prompt capture: $(cat "$WORK/two.err")"
[[ ! -s "$WORK/two.out" ]] && pass "nothing on stdout without --json" || fail "stdout: $(cat "$WORK/two.out")"
grep -q '^actcap: captured 2 records, 13 tokens' "$WORK/two.err" && grep -q "store: $WORK/two (1 shard" "$WORK/two.err" \
  && pass "human summary on stderr" || fail "summary: $(cat "$WORK/two.err")"
grep -q $'\r' "$WORK/two.err" && fail "carriage returns in a log: $(cat -A "$WORK/two.err")"
grep -q 'Paris\|France is' "$WORK/two.err" && fail "two prompts without --verbose echoed generations: $(cat "$WORK/two.err")"
(($(wc -l <"$WORK/two.err") <= 8)) && pass "a few plain lines ($(wc -l <"$WORK/two.err"))" \
  || fail "too many lines: $(cat "$WORK/two.err")"
[[ $(field "$WORK/two/summary.json" 'j["records"]') == 2 ]] && pass "summary.json in the store" \
  || fail "summary.json: $(cat "$WORK/two/summary.json" 2>&1)"
"$ACTCAP" verify "$WORK/two" >/dev/null 2>&1 && pass "verify accepts a store with summary.json" \
  || fail "verify: $("$ACTCAP" verify "$WORK/two" 2>&1)"
"$ACTCAP" capture --model "$demo" --prompt "Hello world" --prompt "Hi" --max-new-tokens 2 --verbose --json \
  --out "$WORK/verbose" >"$WORK/verbose.out" 2>"$WORK/verbose.err"
[[ $(grep -c '^\[' "$WORK/verbose.err") == 2 ]] && pass "--verbose prints each generation" \
  || fail "--verbose: $(cat "$WORK/verbose.err")"
[[ $($PY -c 'import json,sys; print(json.load(sys.stdin)["models"][0]["records"])' <"$WORK/verbose.out") == 2 ]] \
  && pass "--json summary on stdout" || fail "--json: $(cat "$WORK/verbose.out")"
# A log of a longer run: the start, at most three progress lines, the summary.
seq 1 40 | sed 's/^/prompt number /' >"$WORK/forty.txt"
"$ACTCAP" capture --model "$demo" --prompts-file "$WORK/forty.txt" --max-new-tokens 2 --batch-tokens 16 \
  --out "$WORK/forty" 2>"$WORK/forty.err" >/dev/null
[[ $(grep -c '%' "$WORK/forty.err") -ge 1 && $(grep -c '%' "$WORK/forty.err") -le 3 ]] \
  && grep -q '^actcap: capturing 40 records into' "$WORK/forty.err" && pass "log progress: $(grep -c . "$WORK/forty.err") lines" \
  || fail "log progress: $(cat "$WORK/forty.err")"

# On a terminal (a pseudo-terminal from `script`): the bar is drawn in place (carriage return, erase line) and
# erased for good before the summary, which starts its own line.
if command -v script >/dev/null; then
  script -qec "'$ACTCAP' capture --model '$demo' --prompts-file '$WORK/forty.txt' --max-new-tokens 2 --batch-tokens 16 \
    --out '$WORK/tty'" /dev/null >"$WORK/tty.txt" 2>&1
  if grep -qa $'\r\e\[K\[#*  *\] [0-9]*/40 records' "$WORK/tty.txt" && grep -qa $'\r\e\[Kactcap: captured 40 records' "$WORK/tty.txt" \
      && ! grep -qa $'records[^\n]*actcap: captured' "$WORK/tty.txt"; then
    pass "terminal: bar in place, summary on its own line"
  else
    fail "terminal output: $(cat -A "$WORK/tty.txt" | head -c 600)"
  fi
fi

# 3. Mistakes: one line, the exit status, nothing written.
expect_status() {  # NAME STATUS FRAGMENT COMMAND...: like expect_error, and the exit status must be STATUS
  local name=$1 status=$2 fragment=$3
  shift 3
  "$@" >/dev/null 2>&1
  local got=$?
  [[ $got == "$status" ]] || fail "$name: exit status $got, expected $status"
  expect_error "$name" "$fragment" "$WORK/nothing" "$@"
}
expect_status "unknown option" 2 "actcap: error: capture: unknown option --max-tokens (did you mean --max-new-tokens?)" \
  "$ACTCAP" capture --model "$demo" --prompt hi --max-tokens 5 --out "$WORK/nothing"
expect_status "misspelled command" 2 "unknown command caputre (did you mean capture?)" "$ACTCAP" caputre --model "$demo"
expect_status "misspelled subcommand" 2 "unknown command export nppy (did you mean export npy?)" "$ACTCAP" export nppy x
expect_status "misspelled site" 1 'did you mean "blocks.*.hook_resid_post"' \
  "$ACTCAP" capture --model "$demo" --prompt hi --sites 'blocks.*.hook_resid_pots' --out "$WORK/nothing"
expect_status "layer out of range" 1 "0 to 1, or -2 to -1" \
  "$ACTCAP" capture --model "$demo" --prompt hi --layers -3 --out "$WORK/nothing"
expect_status "generated positions without generation" 1 "--positions generated needs --max-new-tokens" \
  "$ACTCAP" capture --model "$demo" --prompt hi --positions generated --out "$WORK/nothing"
expect_status "temperature without sampling" 1 "--temperature only applies to sampling" \
  "$ACTCAP" capture --model "$demo" --prompt hi --max-new-tokens 2 --temperature 0.7 --out "$WORK/nothing"
expect_status "attention patterns as token rows" 1 "attention patterns are not (blocks.0.attn.hook_pattern and 1 more)" \
  "$ACTCAP" capture --model "$demo" --prompt hi --sites all --layout token-stream --out "$WORK/nothing"
expect_status "resume and overwrite" 1 "give one" \
  "$ACTCAP" capture --model "$demo" --prompt hi --resume --overwrite --out "$WORK/nothing"
if "$ACTCAP" >"$WORK/bare.out" 2>&1 && grep -q 'capture' "$WORK/bare.out" && grep -q 'sites' "$WORK/bare.out"; then
  pass "bare actcap lists the commands"
else
  fail "bare actcap: $(cat "$WORK/bare.out")"
fi

# 4. What `tokenize` prints is accepted by --input-ids, and a refused token-stream capture can be rerun at once.
ids=$("$ACTCAP" tokenize --model "$demo" "Hello world" | tail -1)
"$ACTCAP" capture --model "$demo" --input-ids "$ids" --quiet --out "$WORK/ids" 2>"$WORK/ids.err" \
  && [[ $(records "$WORK/ids" token_ids) == "[15496, 995]" ]] && pass "--input-ids $ids" \
  || fail "--input-ids $ids: $(cat "$WORK/ids.err")"
"$ACTCAP" capture --model "$demo" --prompt hi --sites 'hidden_states.*' --layout token-stream --quiet \
  --out "$WORK/nothing" 2>"$WORK/retry.err" && pass "the corrected token-stream capture runs in the same folder" \
  || fail "retry: $(cat "$WORK/retry.err")"

# 5. --positions last-prompt keeps the prompt's last token; --layers -1 the last block.
"$ACTCAP" capture --model "$demo" --prompt "Hello world" --max-new-tokens 3 --positions last-prompt \
  --sites 'blocks.*.hook_resid_post' --layers -1 --quiet --json --out "$WORK/lastprompt" >"$WORK/lp.json" 2>&1
[[ $(records "$WORK/lastprompt" positions) == "[1]" ]] && pass "--positions last-prompt" \
  || fail "last-prompt positions: $(records "$WORK/lastprompt" positions)"
[[ $(field "$WORK/lastprompt/summary.json" 'list(j["sites"])') == '["blocks.1.hook_resid_post"]' ]] \
  && pass "--layers -1" || fail "--layers -1: $(cat "$WORK/lp.json")"

# 6. actcap sites: every site with its shape, --layers applied.
"$ACTCAP" sites --model "$demo" --tokens 5 >"$WORK/sites.txt" 2>&1 || fail "sites: $(cat "$WORK/sites.txt")"
grep -qE '^blocks\.0\.attn\.hook_pattern +\[2, 5, 5\]' "$WORK/sites.txt" && grep -qE '^logits +\[5, 50257\]' "$WORK/sites.txt" \
  && grep -qE '^hidden_states\.2 +\[5, 32\] +final norm output' "$WORK/sites.txt" && pass "sites lists shapes" \
  || fail "sites: $(cat "$WORK/sites.txt")"
"$ACTCAP" sites --model "$demo" --sites 'hidden_states.*' --layers 1 >"$WORK/sites1.txt" 2>&1
[[ $(grep -oE '^hidden_states\.[0-9]+' "$WORK/sites1.txt" | tr '\n' ' ') == "hidden_states.1 hidden_states.2 " ]] \
  && pass "sites --layers 1: hidden_states.1 (input of block 1) and hidden_states.2 (final norm)" \
  || fail "sites --layers 1: $(cat "$WORK/sites1.txt")"

# 7. --resume accepts the same model and prompts file named another way (relative path, DIR/).
cp "$WORK/forty.txt" "$WORK/p.txt"
"$ACTCAP" capture --model "$demo" --prompts-file "$WORK/p.txt" --quiet --out "$WORK/resume" 2>"$WORK/r1.err" \
  || fail "first run: $(cat "$WORK/r1.err")"
rm "$WORK/resume/summary.json"  # as an interrupted run leaves it
if (cd "$WORK" && "$ACTCAP" capture --model "$demo/" --prompts-file ./p.txt --quiet --resume --out resume) 2>"$WORK/r2.err"; then
  pass "--resume with the inputs named another way"
else
  fail "--resume with another spelling: $(cat "$WORK/r2.err")"
fi
# A --resume of a complete store replaces the summary.json there with its own.
"$ACTCAP" capture --model "$demo" --prompts-file "$WORK/p.txt" --quiet --resume --out "$WORK/resume" 2>"$WORK/r3.err" \
  && [[ $(field "$WORK/resume/summary.json" '[j["records"], j["records_this_run"]]') == "[40, 0]" ]] \
  && pass "--resume of a complete store: a new summary.json" || fail "resume of a complete store: $(cat "$WORK/r3.err")"

# 8. --overwrite replaces a store (the store writer implements it: this passes once the store branch is merged).
"$ACTCAP" capture --model "$demo" --prompt "another prompt" --quiet --overwrite --out "$WORK/two" 2>"$WORK/ow.err" \
  && [[ $(field "$WORK/two/summary.json" 'j["records"]') == 1 ]] && pass "--overwrite" || fail "--overwrite: $(cat "$WORK/ow.err")"

finish "all first-hour checks passed"
