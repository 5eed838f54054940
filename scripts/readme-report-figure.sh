#!/bin/bash
# Regenerates docs/images/report_metric_trends.png, the report figure the README shows: a run whose "students" are
# the demo model (tests/data/reference/tiny-gpt2) with its weights perturbed by 2%, 5% and 10% noise, each
# compared with the original by `actcap metrics --run`, then `actcap report`. Needs build/actcap (or $ACTCAP)
# and Debian's python3 with numpy (only to write the perturbed copies).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${ACTCAP:-build/actcap}
TEACHER=tests/data/reference/tiny-gpt2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/prompts" "$WORK/samples"
printf 'You are a friendly tour guide for Sydney.\n' >"$WORK/prompts/system.md"
cat >"$WORK/samples/blurbs.txt" <<'TEXT'
The Sydney Opera House opened in 1973 and hosts more than 1,500 performances a year.
Bondi Beach is a short bus ride from the city centre and famous for its coastal walk.
The Royal Botanic Garden sits on the harbour, next to the Opera House.
The Harbour Bridge climb takes about three hours and ends with a view of the whole city.
TEXT
run=$($A run init --runs-root "$WORK/runs" --prompts-dir "$WORK/prompts" --samples-dir "$WORK/samples" --run-id readme)
for noise in 0.02 0.05 0.10; do
  student=$WORK/student-$noise
  cp -r "$TEACHER" "$student"
  /usr/bin/python3 - "$student/model.safetensors" "$noise" <<'PY'
import json, struct, sys
import numpy as np
path, noise = sys.argv[1], float(sys.argv[2])
raw = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
rng = np.random.default_rng(0)
for name, entry in json.loads(raw[8:8 + n]).items():
    if name != "__metadata__":
        begin, end = (8 + n + o for o in entry["data_offsets"])
        x = np.frombuffer(bytes(raw[begin:end]), dtype=np.float32)
        raw[begin:end] = (x * (1 + noise * rng.standard_normal(x.size))).astype(np.float32).tobytes()
open(path, "wb").write(bytes(raw))
PY
  $A metrics --model "$TEACHER" --model "$student" --prompts-file "$WORK/samples/blurbs.txt" --run "$run" --quiet
done
$A report --run "$run" >/dev/null
mkdir -p docs/images
cp "$run/report/metric_trends.png" docs/images/report_metric_trends.png
echo "docs/images/report_metric_trends.png"
