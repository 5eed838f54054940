# Sourced by the hub tests after common.sh: a repo tiny/gpt2 as the hub holds it (the tiny-gpt2 reference
# checkpoint plus files a capture never needs) served by hub_server.py on a free loopback port, and a fresh cache.
SERVER="$ACTCAP_SOURCE_DIR/tests/scripts/hub_server.py"
SOURCE=${ACTCAP_TEST_DATA:?}/reference/tiny-gpt2
mkdir -p "$WORK/repo"
for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do
  cp "$SOURCE/$f" "$WORK/repo/$f"
done
echo "pickled weights that must never be downloaded" >"$WORK/repo/pytorch_model.bin"
echo "# tiny" >"$WORK/repo/README.md"
COMMIT=$($PY -c 'import hashlib; print(hashlib.sha1(b"tiny/gpt2").hexdigest())')  # hub_server.py's commit

SERVER_PID=""
# start_server ARGS...: (re)starts the server with a fresh log; sets HF_ENDPOINT.
start_server() {
  stop_server
  rm -f "$WORK/port" "$WORK/log.jsonl"
  $PY "$SERVER" --port-file "$WORK/port" --log "$WORK/log.jsonl" --repo "tiny/gpt2=$WORK/repo" "$@" &
  SERVER_PID=$!
  for _ in $(seq 100); do [ -f "$WORK/port" ] && break; sleep 0.05; done
  export HF_ENDPOINT="http://127.0.0.1:$(cat "$WORK/port")"
}
stop_server() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  SERVER_PID=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT  # replaces common.sh's trap: the server goes too
requests() { grep -c . "$WORK/log.jsonl" 2>/dev/null || echo 0; }
fresh_cache() { rm -rf "$WORK/hf"; export HF_HOME="$WORK/hf"; unset HF_HUB_CACHE HF_HUB_OFFLINE HF_TOKEN; }
CACHE_REPO() { echo "$HF_HOME/hub/models--tiny--gpt2"; }
