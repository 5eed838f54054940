#!/bin/bash
# actcap run init / capture --run / metrics --run / report: the dataset ledger is deterministic and checked
# against sha256sum and hashlib; a run is created whole or not at all and never overwritten; the report renders
# from a real metrics file and a rotation ledger written here by the ledger's schema, with valid PNG figures whose
# links resolve, and numbers that are those of the ledger lines.
set -u
A=${1:?usage: test_runs_cli.sh path/to/actcap}
source "$(dirname "$0")/common.sh"
require_python numpy
M=$ACTCAP_TEST_DATA/reference/tiny-gpt2
cd "$WORK"

mkdir -p prompts/styles samples
printf 'You are a tour guide.\n' >prompts/system.md
printf 'Be brief.\n' >prompts/styles/brief.md
for i in 1 2 3; do printf 'The Sydney Opera House, sample %s.\n' $i >samples/blurb_$i.txt; done

$A run init --runs-root runs --prompts-dir prompts --samples-dir samples --run-id first --teacher-commit abc123 >/dev/null
$A run init --runs-root runs --prompts-dir prompts --samples-dir samples --run-id second >/dev/null
cmp -s runs/first/dataset_snapshot.json runs/second/dataset_snapshot.json &&
  pass "run init twice: identical dataset_snapshot.json" || fail "run init twice: the snapshots differ"
[[ -f runs/first/rotations.jsonl && ! -s runs/first/rotations.jsonl && -d runs/first/checkpoints && -d runs/first/activations && -d runs/first/logs ]] &&
  pass "run folder layout" || fail "run folder layout: $(ls -R runs/first)"

# The ledger's hashes, recomputed by sha256sum and hashlib following its documented definition.
(cd prompts && find . -type f | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum) >"$WORK/prompts.sum"
(cd samples && find . -type f | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum) >"$WORK/samples.sum"
$PY - runs/first "$WORK/prompts.sum" "$WORK/samples.sum" <<'PY' && pass "ledger hashes = sha256sum" || fail "ledger hashes"
import hashlib, json, sys
run, prompts_sum, samples_sum = sys.argv[1:4]
snap = json.load(open(run + "/dataset_snapshot.json"))
man = json.load(open(run + "/manifest.json"))
p, s = open(prompts_sum).read(), open(samples_sum).read()
assert [f["path"] for f in snap["prompts"]["files"]] == ["styles/brief.md", "system.md"], snap["prompts"]
assert "".join(f'{f["sha256"]}  {f["path"]}\n' for f in snap["prompts"]["files"]) == p
assert "".join(f'{f["sha256"]}  {f["path"]}\n' for f in snap["samples"]["files"]) == s
assert snap["prompts"]["sha256"] == hashlib.sha256(p.encode()).hexdigest()
prefixed = lambda text, group: "".join(l.replace("  ", "  " + group + "/", 1) + "\n" for l in text.splitlines())
assert snap["dataset_sha256"] == hashlib.sha256((prefixed(p, "prompts") + prefixed(s, "samples")).encode()).hexdigest()
assert man["dataset_snapshot"]["sha256"] == hashlib.sha256(open(run + "/dataset_snapshot.json", "rb").read()).hexdigest()
assert man["teacher"]["commit"] == "abc123" and man["student"]["commit"] is None and man["run_id"] == "first"
PY

# The default id: run_<UTC date>_<dataset hash>; a second init on the same data the same day is refused.
day_before=$(date -u +%Y%m%d)
id=$($A run init --runs-root runs --prompts-dir prompts --samples-dir samples)
day_after=$(date -u +%Y%m%d)  # the init may straddle midnight
hash=$($PY -c "import json; print(json.load(open('runs/first/dataset_snapshot.json'))['dataset_sha256'][:8])")
[[ $id == runs/run_${day_before}_$hash || $id == runs/run_${day_after}_$hash ]] && pass "default run id $id" ||
  fail "default run id $id (hash $hash)"
echo changed >>samples/blurb_1.txt
$A run init --runs-root runs --prompts-dir prompts --samples-dir samples --run-id changed >/dev/null
! cmp -s runs/first/dataset_snapshot.json runs/changed/dataset_snapshot.json && pass "changed data: another ledger" || fail "changed data: same ledger"

expect_error "existing run" "runs/first: already exists" "runs/.first" \
  $A run init --runs-root runs --prompts-dir prompts --samples-dir samples --run-id first
expect_error "bad run id" "--run-id must be" "runs/.." \
  $A run init --runs-root runs --prompts-dir prompts --samples-dir samples --run-id ../escape
expect_error "missing prompts folder" "nowhere: --prompts-dir is not a folder" "runs/missing" \
  $A run init --runs-root runs --prompts-dir nowhere --samples-dir samples --run-id missing
mkdir empty
expect_error "empty samples folder" "empty: --samples-dir holds no file" "runs/nothing" \
  $A run init --runs-root runs --prompts-dir prompts --samples-dir empty --run-id nothing

# Captures and metrics pointed at the run.
$A capture --model "$M" --prompt "Hello world" --run runs/first --quiet &&
  [[ -f runs/first/activations/tiny-gpt2/manifest.json ]] && pass "capture --run: activations/tiny-gpt2" || fail "capture --run"
$A capture --model "$M" --prompt "Hello world" --run runs/first --out teacher --quiet &&
  [[ -f runs/first/activations/teacher/summary.json ]] && pass "capture --run --out teacher" || fail "capture --run --out"
expect_error "capture --run --out with folders" "a plain name" "runs/first/activations/a" \
  $A capture --model "$M" --prompt "Hi" --run runs/first --out a/b
expect_error "capture --run not a run" "not a run folder" "prompts/activations" \
  $A capture --model "$M" --prompt "Hi" --run prompts

cp -r "$M" perturbed
$PY - perturbed/model.safetensors <<'PY'
import json, struct, sys
import numpy as np
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
for name, e in json.loads(raw[8:8 + n]).items():
    if name != "__metadata__":
        b, f = (8 + n + o for o in e["data_offsets"])
        x = np.frombuffer(bytes(raw[b:f]), dtype=np.float32)
        raw[b:f] = (x * 1.03 + 0.001).astype(np.float32).tobytes()
open(sys.argv[1], "wb").write(bytes(raw))
PY
printf 'Hello world\nThe quick brown fox\n' >p.txt
$A metrics --model "$M" --model perturbed --prompts-file p.txt --run runs/first --quiet
$A metrics --model "$M" --model "$M" --prompts-file p.txt --run runs/first --out self.jsonl --quiet
[[ $(wc -l <runs/first/metrics.jsonl) == 16 && $(wc -l <self.jsonl) == 8 ]] &&
  pass "metrics --run appends (2 evaluations x 2 prompts x 4 lines)" || fail "metrics --run: $(wc -l <runs/first/metrics.jsonl) lines"

# A metrics run refused for its second prompt (longer than the model's 256 positions) appends nothing.
{ echo "Hello world"; for i in $(seq 300); do printf 'word '; done; echo; } >long.txt
cp runs/first/metrics.jsonl before.jsonl
expect_error "prompt too long" "long.txt:2: 301 tokens exceed the 256 positions" "runs/first/metrics.jsonl.tmp" \
  $A metrics --model "$M" --model perturbed --prompts-file long.txt --run runs/first --quiet
cmp -s before.jsonl runs/first/metrics.jsonl && pass "failed metrics appended nothing" || fail "failed metrics appended lines"

# Two evaluations appending to one run at once: every line whole, none lost.
mkdir -p runs/concurrent && cp -r runs/second/. runs/concurrent/
$A metrics --model "$M" --model perturbed --prompts-file p.txt --run runs/concurrent --quiet &
$A metrics --model "$M" --model "$M" --prompts-file p.txt --run runs/concurrent --quiet
wait
$PY -c "
import json
lines = [json.loads(l) for l in open('runs/concurrent/metrics.jsonl')]
assert len(lines) == 16 and len({l['model_b']['path'] for l in lines}) == 2
" && pass "concurrent appends: 16 whole lines" || fail "concurrent appends"

# Two `actcap rotation` runs' ledger lines, written by the ledger's schema: the first names stores and transports
# that are not there (or not the same), the second the run's real stores and a transport file with its hash.
printf 'transport bytes' >runs/first/checkpoints/t.safetensors
$PY - runs/first <<'PY'
import hashlib, json, sys
run = sys.argv[1]
def manifest_sha(store):
    return json.load(open(f"{run}/activations/{store}/manifest.json"))["manifest_sha256"]
transport = f"{run}/checkpoints/t.safetensors"
real = {"student": (f"{run}/activations/tiny-gpt2", manifest_sha("tiny-gpt2")),
        "teacher": (f"{run}/activations/teacher", manifest_sha("teacher")),
        "transport": (transport, hashlib.sha256(open(transport, "rb").read()).hexdigest())}
fake = {"student": (f"{run}/activations/student", "aa" * 32), "teacher": (f"{run}/activations/teacher", "bb" * 32),
        "transport": (f"{run}/checkpoints/missing.safetensors", "cd" * 32)}
with open(f"{run}/rotations.jsonl", "a") as f:
    for number, (created, names) in enumerate([("2026-11-30T10:00:00Z", fake), ("2026-11-30T11:00:00Z", real)]):
        for layer in (1, 2):
            f.write(json.dumps({"ledger_version": 1, "created": created, "site": f"hidden_states.{layer}", "components": 4,
                "student": {"store": names["student"][0], "manifest_sha256": names["student"][1], "width": 32},
                "teacher": {"store": names["teacher"][0], "manifest_sha256": names["teacher"][1], "width": 32},
                "tokens": 10, "cosine_before": 0.25 + 0.1 * layer + number * 0.01, "cosine_after": 0.9 + 0.01 * layer + number * 0.03,
                "singular_values": [8.5 - layer, 4.25, 2.125, 0.75 + number], "explained_variance_student": 0.875,
                "explained_variance_teacher": 0.8125, "residual_error": 0.123456789,
                "transport": {"safetensors": names["transport"][0], "pt": names["transport"][0][:-12] + ".pt",
                              "sha256": names["transport"][1]}}) + "\n")
PY

check_png() {  # FILE: PNG signature, then an IHDR chunk with a non-zero width and height
  $PY - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
length, kind = struct.unpack(">I4s", data[8:16])
width, height = struct.unpack(">II", data[16:24])
assert kind == b"IHDR" and length == 13 and width > 0 and height > 0, (kind, width, height)
assert data[-8:-4] == b"IEND"
PY
}

$A report --run runs/first >report.out
R=runs/first/report/report.md
for figure in metric_trends rotation_cosine singular_values; do
  check_png "runs/first/report/$figure.png" && grep -qF "($figure.png)" "$R" &&
    pass "figure $figure.png: valid PNG, linked" || fail "figure $figure.png"
done
$PY - runs/first "$R" <<'PY' && pass "report numbers are the ledger's and the metrics'" || fail "report numbers"
import json, sys
run, report = sys.argv[1], open(sys.argv[2]).read()
g = lambda x: "%.6g" % x
ledger = [json.loads(l) for l in open(run + "/rotations.jsonl")]
for number, line in enumerate(ledger, 1):
    row = next(r for r in report.splitlines() if r.startswith(f"| {number} | "))
    for value in (line["cosine_before"], line["cosine_after"], line["residual_error"], line["singular_values"][0]):
        assert f"| {g(value)} |" in row, (row, value)
metrics = [json.loads(l) for l in open(run + "/metrics.jsonl")]
first = [m for m in metrics if m["created"] == metrics[0]["created"]]
kl = [k for m in first if m["kind"] == "logits" for k in m["kl"]]
assert f"| {g(sum(kl) / len(kl))} |" in report, g(sum(kl) / len(kl))
assert "| 1–8 |" in report and "| 9–16 |" in report
layer2 = [m for m in first if m["kind"] == "hidden_state" and m["layer"] == 2]
cos = sum(m["cosine_mean"] * m["tokens"] for m in layer2) / sum(m["tokens"] for m in layer2)
assert f"| hidden_states.2 | {g(cos)} |" in report, g(cos)
assert "abc123" in report and "still hold exactly this data" not in report  # blurb_1 changed after init
assert "activations/teacher" in report
rows = [r for r in report.splitlines() if r.startswith("| 1 | ") or r.startswith("| 3 | ")]
assert rows[0].endswith("| no: student store not found, teacher store changed, transport not found |"), rows[0]
assert rows[1].endswith("| yes |"), rows[1]
PY
printf 'tampered' >runs/first/checkpoints/t.safetensors
$A report --run runs/first >/dev/null && grep -q "^| 3 | .*| no: transport changed |$" "$R" &&
  pass "a changed transport file shows in the report" || fail "changed transport: $(grep '^| 3 |' "$R")"

# --out elsewhere: the figures stay in the run, linked relative to the report.
mkdir -p elsewhere/deep
$A report --run runs/first --out elsewhere/deep/r.md >/dev/null
link=$(grep -o '(\.\./[^)]*metric_trends.png)' elsewhere/deep/r.md | tr -d '()')
[[ -n $link && -f elsewhere/deep/$link ]] && pass "relative link from --out: $link" || fail "relative link: '$link'"

# A run without metrics or rotations reports that, and draws no figure.
$A report --run runs/second >/dev/null && grep -q "No metrics yet" runs/second/report/report.md &&
  ! ls runs/second/report/*.png >/dev/null 2>&1 && pass "empty run: report without figures" || fail "empty run report"

printf '{"ledger_version": 1, "created": "x"' >>runs/second/rotations.jsonl
expect_error "torn ledger line" "rotations.jsonl:1: not a JSON object" "runs/second/report/report.md.tmp" \
  $A report --run runs/second
printf '{"ledger_version": 1}\n' >runs/changed/rotations.jsonl
expect_error "ledger line without a key" "rotations.jsonl:1: no \"created\"" "runs/changed/report/report.md" \
  $A report --run runs/changed
expect_error "report of a non-run" "not a run folder" "prompts/report" $A report --run prompts
finish "runs CLI: all checks passed"
