#!/usr/bin/env bash
# Models by name: `actcap download` and `--model org/name` against a loopback stand-in for the Hugging Face hub
# (tests/scripts/hub_server.py) serving the tiny-gpt2 reference checkpoint. Checks the cache layout
# huggingface_hub writes, resume after kill -9 (Range, identical bytes), corrupt bytes, 401/404/500, offline
# mode, and a capture from an empty cache whose manifest names the repo, revision and commit.
set -uo pipefail
ACTCAP=${1:?usage: test_hub_download.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
source "$ACTCAP_SOURCE_DIR/tests/scripts/hub_common.sh"

# 1. Download into an empty cache: huggingface_hub's layout, hashes checked, no .bin or README.
start_server
fresh_cache
if out=$("$ACTCAP" download tiny/gpt2 2>"$WORK/err.txt"); then
  repo=$(CACHE_REPO)
  snapshot="$repo/snapshots/$COMMIT"
  [ "$out" = "$snapshot" ] && pass "download prints the snapshot" || fail "download printed '$out', not $snapshot"
  [ "$(cat "$repo/refs/main")" = "$COMMIT" ] && [ "$(wc -c <"$repo/refs/main")" = 40 ] &&
    pass "refs/main holds the commit without a newline" || fail "refs/main: '$(cat "$repo/refs/main")'"
  sha=$(sha256sum "$SOURCE/model.safetensors" | cut -c1-64)
  [ "$(readlink "$snapshot/model.safetensors")" = "../../blobs/$sha" ] &&
    pass "LFS file: relative link to blobs/<sha256>" || fail "model.safetensors -> $(readlink "$snapshot/model.safetensors")"
  gitsha=$($PY -c 'import hashlib,sys; d=open(sys.argv[1],"rb").read(); print(hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())' "$SOURCE/config.json")
  [ "$(readlink "$snapshot/config.json")" = "../../blobs/$gitsha" ] &&
    pass "regular file: relative link to blobs/<git sha1>" || fail "config.json -> $(readlink "$snapshot/config.json")"
  for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do
    cmp -s "$snapshot/$f" "$SOURCE/$f" || fail "$f differs from the served file"
  done
  ls "$snapshot" | grep -qE 'pytorch_model.bin|README' && fail "downloaded files a capture does not need: $(ls "$snapshot")"
  ls "$repo/blobs" | grep -q incomplete && fail "left an .incomplete blob"
  pass "download: $(ls "$snapshot" | tr '\n' ' ')"
else
  fail "download: $(cat "$WORK/err.txt")"
fi

# 2. A second download, sites, tokenize, and --model org/name use the cache: only the revision is asked again
#    by download; the others ask nothing.
"$ACTCAP" download tiny/gpt2 >/dev/null 2>&1
grep -q '"GET", "path": "/cdn' <(tail -n +$(($(requests) - 5)) "$WORK/log.jsonl") && fail "second download fetched the weights again"
before=$(requests)
"$ACTCAP" tokenize --model tiny/gpt2 "Hello world" >"$WORK/ids.txt" 2>&1 || fail "tokenize tiny/gpt2: $(cat "$WORK/ids.txt")"
"$ACTCAP" sites --model tiny/gpt2@main >/dev/null 2>&1 || fail "sites tiny/gpt2@main"
"$ACTCAP" sites --model "tiny/gpt2@$COMMIT" >/dev/null 2>&1 || fail "sites tiny/gpt2@<commit>"
"$ACTCAP" sites --model "$(CACHE_REPO)" >/dev/null 2>&1 || fail "sites with the cache repo folder"
[ "$(requests)" = "$before" ] && pass "cached model used without a request ($(cat "$WORK/ids.txt"))" ||
  fail "$(($(requests) - before)) requests for a cached model"
[ "$(cat "$WORK/ids.txt")" = "$("$ACTCAP" tokenize --model "$SOURCE" "Hello world")" ] ||
  fail "tokenize by name differs from the folder"
"$ACTCAP" detokenize --model tiny/gpt2 "[15496,995]" >/dev/null 2>&1 || fail "detokenize tiny/gpt2"
echo '[{"role": "user", "content": "hi"}]' >"$WORK/messages.json"
# tiny-gpt2 has no chat template: the error shows the config was found in the snapshot.
expect_error "chat-template --tokenizer-config org/name" "snapshots/$COMMIT/tokenizer_config.json: has no chat_template" \
  "$WORK/none" "$ACTCAP" chat-template --tokenizer-config tiny/gpt2 --messages-file "$WORK/messages.json"
MODULE=$(dirname "$ACTCAP")/python
if [ -d "$MODULE/actcap" ] && $PY -c 'import numpy' 2>/dev/null; then
  PYTHONPATH=$MODULE $PY -c 'import actcap, sys; m = actcap.Model("tiny/gpt2"); assert m.path.endswith(sys.argv[1]), m.path' \
    "snapshots/$COMMIT" 2>"$WORK/err.txt" && pass "actcap.Model(\"tiny/gpt2\")" || fail "actcap.Model: $(tail -1 "$WORK/err.txt")"
fi

# A progress line with bytes and rate on a TTY (script gives the command one).
fresh_cache
script -qec "$ACTCAP download tiny/gpt2" /dev/null >"$WORK/tty.txt" 2>&1 || fail "download on a TTY"
grep -qE 'tiny/gpt2: .*MiB / .*MiB, .*/s' "$WORK/tty.txt" && pass "progress line on a TTY" ||
  fail "no progress line on a TTY: $(tr '\r' '\n' <"$WORK/tty.txt" | tail -2)"

# 3. --include: only the matching files.
fresh_cache
"$ACTCAP" download tiny/gpt2 --include '*.json' >/dev/null 2>&1 || fail "download --include"
[ "$(ls "$(CACHE_REPO)/snapshots/$COMMIT" | tr '\n' ' ')" = "config.json generation_config.json tokenizer.json tokenizer_config.json " ] &&
  pass "--include '*.json'" || fail "--include '*.json' gave $(ls "$(CACHE_REPO)/snapshots/$COMMIT")"

# 4. Offline: the cache only, never the network.
before=$(requests)
HF_HUB_OFFLINE=1 expect_error "offline, incomplete in the cache" "HF_HUB_OFFLINE" "$WORK/none" \
  "$ACTCAP" sites --model tiny/gpt2
HF_HUB_OFFLINE=1 expect_error "offline download" "HF_HUB_OFFLINE" "$WORK/none" "$ACTCAP" download tiny/gpt2
"$ACTCAP" download tiny/gpt2 >/dev/null 2>&1
before=$(requests)
HF_HUB_OFFLINE=1 "$ACTCAP" sites --model tiny/gpt2 >/dev/null 2>&1 || fail "offline sites from a full cache"
[ "$(requests)" = "$before" ] && pass "offline: no request" || fail "offline mode made $(($(requests) - before)) requests"
HF_HUB_OFFLINE=1 HF_ENDPOINT=http://127.0.0.1:9 expect_error "offline, unknown model" "not in the hub cache" "$WORK/none" \
  "$ACTCAP" sites --model other/model

# 5. Errors: 404 (model, revision), 401 (gated, with and without the token), 500 (retried, then failed).
expect_error "404 model" "no/such@main: not found" "$WORK/none" "$ACTCAP" download no/such
expect_error "404 revision" "no such revision" "$WORK/none" "$ACTCAP" download tiny/gpt2@nope
start_server --gated tiny/gpt2 --token hf_secret
fresh_cache
expect_error "401 gated" "HF_TOKEN" "$(CACHE_REPO)/snapshots/$COMMIT/config" "$ACTCAP" download tiny/gpt2
HF_TOKEN=hf_secret "$ACTCAP" download tiny/gpt2 >/dev/null 2>&1 && pass "gated: HF_TOKEN accepted" || fail "gated with HF_TOKEN"
fresh_cache
printf 'hf_secret\n' >"$WORK/token" && mkdir -p "$HF_HOME" && mv "$WORK/token" "$HF_HOME/token"
"$ACTCAP" download tiny/gpt2 >/dev/null 2>&1 && pass "gated: \$HF_HOME/token accepted" || fail "gated with the token file"
start_server --status tiny/gpt2=500
fresh_cache
expect_error "500" "HTTP 500 after retries" "$WORK/none" "$ACTCAP" download tiny/gpt2
[ "$(requests)" -ge 3 ] && pass "500 retried ($(requests) requests)" || fail "500 asked only $(requests) times"
expect_error "network failure" "cannot reach" "$WORK/none" env HF_ENDPOINT=http://127.0.0.1:9 "$ACTCAP" download tiny/gpt2

# A listing naming a file outside the snapshot is refused before anything is written.
start_server --hostile-sibling ../../evil.json
fresh_cache
expect_error "unsafe file name" 'unsafe file name "../../evil.json"' "$HF_HOME/hub/evil" \
  "$ACTCAP" download tiny/gpt2 --include '*'

# 6. Corrupt bytes: rejected, nothing linked, no blob left.
start_server --corrupt model.safetensors
fresh_cache
expect_error "corrupt bytes" "corrupt (SHA-256" "$(CACHE_REPO)/snapshots/$COMMIT/model" "$ACTCAP" download tiny/gpt2
ls "$(CACHE_REPO)/blobs/" | grep -q "^$(sha256sum "$SOURCE/model.safetensors" | cut -c1-64)" &&
  fail "a corrupt blob was kept: $(ls "$(CACHE_REPO)/blobs/")"

# A connection cut mid-file is retried in the same run from where it stopped.
start_server --drop-after 2000000
fresh_cache
"$ACTCAP" download tiny/gpt2 --include model.safetensors >/dev/null 2>"$WORK/err.txt" || fail "cut connection: $(cat "$WORK/err.txt")"
cmp -s "$(CACHE_REPO)/snapshots/$COMMIT/model.safetensors" "$SOURCE/model.safetensors" || fail "file differs after a cut"
cut=$(grep -m1 '/cdn/' "$WORK/log.jsonl" | $PY -c 'import json,sys; print(json.load(sys.stdin)["sent"])')
grep '/cdn/' "$WORK/log.jsonl" | tail -1 | grep -q "\"range\": \"bytes=$cut-\", \"status\": 206" &&
  pass "cut after $cut bytes, retried with Range: bytes=$cut-" || fail "after a cut: $(grep '/cdn/' "$WORK/log.jsonl")"

# 7. kill -9 mid-file, then resume with Range: identical bytes, the rest only.
start_server --throttle 1000000
fresh_cache
"$ACTCAP" download tiny/gpt2 --include model.safetensors >/dev/null 2>&1 &
pid=$!
sha=$(sha256sum "$SOURCE/model.safetensors" | cut -c1-64)
partial="$(CACHE_REPO)/blobs/$sha.incomplete"
for _ in $(seq 200); do [ -f "$partial" ] && [ "$(stat -c %s "$partial")" -gt 1000000 ] && break; sleep 0.05; done
kill -9 $pid; wait $pid 2>/dev/null
size=$(stat -c %s "$partial" 2>/dev/null || echo 0)
total=$(stat -c %s "$SOURCE/model.safetensors")
if [ "$size" -gt 0 ] && [ "$size" -lt "$total" ]; then
  pass "killed mid-file with $size of $total bytes in $(basename "$partial")"
  "$ACTCAP" download tiny/gpt2 --include model.safetensors >/dev/null 2>&1 || fail "resume after kill -9"
  cmp -s "$(CACHE_REPO)/snapshots/$COMMIT/model.safetensors" "$SOURCE/model.safetensors" &&
    pass "resumed file identical" || fail "resumed file differs"
  last=$(grep '/cdn/' "$WORK/log.jsonl" | tail -1)
  [[ $last == *"\"range\": \"bytes=$size-\""* ]] && pass "resumed with Range: bytes=$size-" ||
    fail "the resumed request was $last"
  served=$($PY -c 'import json,sys; print(sum(json.loads(l)["sent"] for l in open(sys.argv[1]) if "/cdn/" in l))' "$WORK/log.jsonl")
  [ "$served" -lt $((total + total / 2)) ] && pass "served $served bytes for a $total-byte file" ||
    fail "served $served bytes: restarted from zero"
else
  fail "kill -9 did not land mid-file ($size of $total bytes)"
fi

# 8. capture --model org/name from an empty cache; the manifest names repo, revision and commit.
start_server
fresh_cache
if "$ACTCAP" capture --model tiny/gpt2@v1.0 --prompt "Hello world" --sites 'blocks.0.hook_resid_post' \
  --out "$WORK/store" >"$WORK/capture.txt" 2>&1; then
  $PY - "$WORK/store/manifest.json" "$COMMIT" <<'EOF' && pass "capture from an empty cache; manifest.model.hub" || fail "manifest hub"
import json, sys
hub = json.load(open(sys.argv[1]))["model"]["hub"]
assert hub == {"repo_id": "tiny/gpt2", "revision": "v1.0", "commit": sys.argv[2]}, hub
EOF
  "$ACTCAP" verify "$WORK/store" >/dev/null 2>&1 || fail "verify the captured store"
else
  fail "capture --model tiny/gpt2@v1.0: $(tail -3 "$WORK/capture.txt")"
fi
[ -f "$HF_HOME/hub/models--tiny--gpt2/refs/v1.0" ] || fail "refs/v1.0 not written"

# 9. Sharded weights: the index first, then only the shards it names (not a consolidated copy beside them).
mkdir -p "$WORK/sharded"
cp "$WORK/repo/"{config.json,tokenizer.json,tokenizer_config.json} "$WORK/sharded/"
$PY - "$SOURCE/model.safetensors" "$WORK/sharded" <<'EOF'
import json, os, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
names = [k for k in header if k != "__metadata__"]
weight_map = {}
for i, part in enumerate((names[::2], names[1::2])):
    shard, offset, out, blobs = f"model-{i + 1:05d}-of-00002.safetensors", 0, {}, []
    for name in part:
        begin, end = header[name]["data_offsets"]
        out[name] = dict(header[name], data_offsets=[offset, offset + end - begin])
        blobs.append(data[8 + n + begin:8 + n + end])
        offset += end - begin
        weight_map[name] = shard
    text = json.dumps(out).encode()
    with open(os.path.join(sys.argv[2], shard), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
json.dump({"metadata": {}, "weight_map": weight_map}, open(os.path.join(sys.argv[2], "model.safetensors.index.json"), "w"))
EOF
cp "$SOURCE/model.safetensors" "$WORK/sharded/consolidated.safetensors"
start_server --repo "sharded/gpt2=$WORK/sharded"
fresh_cache
if out=$("$ACTCAP" download sharded/gpt2 2>"$WORK/err.txt"); then
  [ "$(ls "$out" | tr '\n' ' ')" = "config.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json tokenizer.json tokenizer_config.json " ] &&
    pass "sharded: the index and its shards only" || fail "sharded download: $(ls "$out")"
  "$ACTCAP" capture --model sharded/gpt2 --prompt "Hello world" --sites 'blocks.0.hook_resid_post' --out "$WORK/s1" >/dev/null 2>&1 &&
    "$ACTCAP" capture --model "$SOURCE" --prompt "Hello world" --sites 'blocks.0.hook_resid_post' --out "$WORK/s2" >/dev/null 2>&1 &&
    cmp -s "$(ls "$WORK"/s1/*.safetensors | head -1)" "$(ls "$WORK"/s2/*.safetensors | head -1)" &&
    pass "capture from the sharded hub model equals the folder's" || fail "capture from the sharded hub model"
else
  fail "sharded download: $(cat "$WORK/err.txt")"
fi

finish "hub downloads: all checks passed"
