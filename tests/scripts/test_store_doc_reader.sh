#!/usr/bin/env bash
# docs/STORE.md's numpy reader, taken from the page itself (so the page cannot drift from the format), reads
# real stores of both layouts and every stored dtype exactly as `actcap export npy` does; and the page's recipe
# for manifest_sha256 reproduces the manifest's hash.
set -uo pipefail
ACTCAP=${1:?usage: test_store_doc_reader.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python numpy

# The first python block after the heading "## A complete reader".
$PY - "$ACTCAP_SOURCE_DIR/docs/STORE.md" "$WORK/store_doc_reader.py" <<'EOF2'
import re, sys
page = open(sys.argv[1]).read()
section = page[page.index("## A complete reader"):]
code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
open(sys.argv[2], "w").write(code)
print(f"reader: {len(code.splitlines())} lines")
EOF2

cat >"$WORK/compare.py" <<'EOF2'
import hashlib, json, os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(sys.argv[0]))
from store_doc_reader import read_store

store, npy = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(store, "manifest.json")))
rows = {s: [] for s in manifest["sites"]}
row_index = []
records = 0
for record, tensors in read_store(store):
    records += 1
    assert set(tensors) == set(manifest["sites"])
    for site, a in tensors.items():
        assert a.shape[0] == len(record["positions"]), (site, a.shape, record["positions"])
        rows[site].append(a.astype(np.float32))
    row_index += [(record["record"], p) for p in record["positions"]]
for site, parts in rows.items():
    expected = np.load(os.path.join(npy, site + ".npy"))
    got = np.concatenate(parts)
    assert got.shape == expected.shape and np.array_equal(got, expected), f"{store} {site} differs from export npy"
if os.path.exists(os.path.join(npy, "row_index.npy")):
    assert np.array_equal(np.array(row_index, np.int64), np.load(os.path.join(npy, "row_index.npy")))
# The page's recipe for manifest_sha256.
stated = manifest.pop("manifest_sha256")
canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == stated, "manifest_sha256 recipe"
print(f"{records} records, {len(manifest['shards'])} shards, {manifest['layout']} {manifest['dtype']}")
EOF2

MODEL="$DATA/reference/tiny-gpt2"
for layout in per-record token-stream; do
  for dtype in fp32 bf16 fp16; do
    name="$layout-$dtype"
    out="$WORK/$name"
    extra=()
    [[ $layout == token-stream ]] && extra=(--drop-bos)
    if ! "$ACTCAP" capture --model "$MODEL" --prompt "Hello world" --prompt "The store is read by numpy" \
        --prompt "ünïcödé text, too" --max-new-tokens 3 --sites 'hidden_states.*,blocks.0.hook_resid_mid' \
        --layout "$layout" --store-dtype "$dtype" --shard-size 2KiB "${extra[@]}" --quiet --out "$out" \
        >/dev/null 2>"$WORK/err"; then
      fail "$name: capture failed: $(cat "$WORK/err")"
      continue
    fi
    if ! "$ACTCAP" export npy "$out" --out "$WORK/$name.npy" >/dev/null 2>"$WORK/err"; then
      fail "$name: export npy failed: $(cat "$WORK/err")"
      continue
    fi
    if result=$($PY "$WORK/compare.py" "$out" "$WORK/$name.npy" 2>&1); then
      pass "$name: the doc's reader agrees with export npy ($result)"
    else
      fail "$name: $result"
    fi
  done
done
finish "docs/STORE.md reader: all passed"
