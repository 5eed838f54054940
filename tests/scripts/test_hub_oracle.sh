#!/usr/bin/env bash
# The cache layout is the one HF's libraries use, checked with HF's own JS client (@huggingface/hub) against
# the loopback hub (hub_server.py): a cache it populates is used by actcap with no download, and a cache actcap
# populates is read back by it (scanCacheDir, downloadFileToCacheDir) with no download either.
# Usage: test_hub_oracle.sh ACTCAP_BINARY   (exit 77: node or @huggingface/hub missing)
set -uo pipefail
ACTCAP=${1:?usage: test_hub_oracle.sh ACTCAP_BINARY}
modules="${ACTCAP_SOURCE_DIR:?}/tests/oracle/node_modules"
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
[ -d "$modules/@huggingface/hub" ] || { echo "@huggingface/hub missing (scripts/install-deps.sh): skipped"; exit 77; }
source "$ACTCAP_SOURCE_DIR/tests/scripts/common.sh"
source "$ACTCAP_SOURCE_DIR/tests/scripts/hub_common.sh"
oracle() { NODE_PATH="$modules" node "$ACTCAP_SOURCE_DIR/tests/oracle/hub_oracle.js" "$@"; }
FILES=(config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json)
resolve_gets() { grep -cE '"GET", "path": "/(tiny/gpt2/resolve|cdn)/' "$WORK/log.jsonl" || true; }

# 1. @huggingface/hub fills the cache; actcap uses it offline and online without asking for any file.
start_server
fresh_cache
# (@huggingface/hub logs "Downloading ..." on stdout: the folder is the last line.)
if snapshot=$(oracle populate "$HF_ENDPOINT" "$HF_HOME/hub" tiny/gpt2 2>"$WORK/err.txt" | tail -1); then
  [ "$snapshot" = "$(CACHE_REPO)/snapshots/$COMMIT" ] || fail "@huggingface/hub wrote $snapshot"
  before=$(requests)
  HF_HUB_OFFLINE=1 "$ACTCAP" sites --model tiny/gpt2 >/dev/null 2>"$WORK/err.txt" || fail "offline: $(cat "$WORK/err.txt")"
  "$ACTCAP" tokenize --model tiny/gpt2 "Hello" >/dev/null 2>"$WORK/err.txt" || fail "tokenize: $(cat "$WORK/err.txt")"
  [ "$(requests)" = "$before" ] && pass "actcap used @huggingface/hub's cache with no request" ||
    fail "actcap made $(($(requests) - before)) requests on @huggingface/hub's cache"
  gets=$(resolve_gets)
  out=$("$ACTCAP" download tiny/gpt2 2>&1) || fail "download over @huggingface/hub's cache: $out"
  [ "$(resolve_gets)" = "$gets" ] && pass "actcap download found every blob @huggingface/hub wrote" ||
    fail "actcap download fetched $(($(resolve_gets) - gets)) files @huggingface/hub had written"
  # @huggingface/hub downloaded every file, the ones actcap never takes too; the weights' blob is shared.
  [ "$(ls "$(CACHE_REPO)/blobs" | wc -l)" = 7 ] && pass "one blob per file, shared" ||
    fail "blobs: $(ls "$(CACHE_REPO)/blobs")"
else
  fail "@huggingface/hub snapshotDownload: $(cat "$WORK/err.txt")"
fi

# 2. actcap fills the cache; @huggingface/hub reads it back and downloads nothing.
fresh_cache
"$ACTCAP" download tiny/gpt2 >/dev/null 2>"$WORK/err.txt" || fail "actcap download: $(cat "$WORK/err.txt")"
before=$(resolve_gets)
if oracle read "$HF_ENDPOINT" "$HF_HOME/hub" tiny/gpt2 "${FILES[@]}" 2>"$WORK/err.txt" | tail -1 >"$WORK/read.json"; then
  $PY - "$WORK/read.json" "$COMMIT" "$(CACHE_REPO)" "${FILES[@]}" <<'PYEOF' && pass "@huggingface/hub reads actcap's cache" || fail "@huggingface/hub's view: $(cat "$WORK/read.json")"
import json, sys
view, commit, repo, files = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4:]
assert not view["warnings"], view["warnings"]
assert view["revisions"] == [{"commit": commit, "refs": ["main"], "files": sorted(files)}], view["revisions"]
for f in files:
    assert view["paths"][f] == f"{repo}/snapshots/{commit}/{f}", view["paths"][f]
PYEOF
  [ "$(resolve_gets)" = "$before" ] && pass "@huggingface/hub downloaded nothing" ||
    fail "@huggingface/hub downloaded $(($(resolve_gets) - before)) files again"
else
  fail "@huggingface/hub on actcap's cache: $(cat "$WORK/err.txt")"
fi

finish "hub oracle: @huggingface/hub and actcap share the cache"
