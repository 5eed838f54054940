#!/usr/bin/env bash
# A new user's first hour with the exports: the README's commands as written, on stores of every site and
# layout a capture makes (--sites all with attention patterns, --positions last, token-stream, bf16, block sites
# only), read back with numpy and torch; every numeric option validated with a one-line error; exports killed
# (SIGXFSZ from `ulimit -f`) or failing (EFBIG, as on a full disk) leave nothing that looks complete, and a rerun
# removes what they left; a shard tensor whose shape overflows ([2^62, 4, 1]) is refused.
set -uo pipefail
ACTCAP=$(realpath "${1:?usage: test_exports_first_hour.sh ACTCAP_BINARY}")
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python numpy torch
M=$DATA/reference/tiny-gpt2
A=$ACTCAP
cd "$WORK" || exit 1
run() {  # runs a command, failing the test (with its output) if it fails
  local name=$1; shift
  if "$@" >"$WORK/out.txt" 2>&1; then pass "$name"; else fail "$name: $* exited non-zero"; cat "$WORK/out.txt"; return 1; fi
}
py() {  # runs a Python check, failing the test with its output if it fails
  local name=$1; shift
  if $PY -c "$@" >"$WORK/py.txt" 2>&1; then pass "$name ($(tail -1 "$WORK/py.txt"))"; else fail "$name"; cat "$WORK/py.txt"; fi
}

# The README's sequence, as written.
run "capture --sites all" $A capture --model $M --prompt "Hello world" --max-new-tokens 8 --sites all --out out/readme
run "export npy" $A export npy out/readme --out npy/
run "export pt" $A export pt out/readme --out pt/
run "export integers" $A export integers out/readme --out ints/
run "export hypercube" $A export hypercube ints/ --out cube/
run "hypercube locate" $A hypercube locate cube/ --flat 7 &&
  grep -q "^axes: row 0, hidden 7$" out.txt && grep -q "^row: 0 = record 0, position 0$" out.txt ||
  fail "hypercube locate does not name the axes: $(cat out.txt)"
run "export zkllm" $A export zkllm out/readme --out zk/ --pad-to-pow2
run "stats" $A stats out/readme && grep -q "^blocks.0.attn.hook_pattern .*\[1, 2, 10, 10\]" out.txt ||
  fail "stats prints no table row for the attention pattern: $(cat out.txt)"
[[ -e tiny-gpt2_stats.json ]] && fail "stats wrote ./tiny-gpt2_stats.json without --out"
py "every README export holds every site" '
import json, numpy as np, torch
m = json.load(open("out/readme/manifest.json")); sites = m["sites"]
assert len(sites) == 29 and "blocks.1.attn.hook_pattern" in sites
for s in sites:
    a = np.load(f"npy/{s}.npy", allow_pickle=False)
    assert a.shape[0] == 10 or s.endswith("hook_pattern"), (s, a.shape)
p = np.load("npy/blocks.0.attn.hook_pattern.npy")
assert p.shape == (10, 2, 10) and np.allclose(p.sum(-1), 1, atol=1e-5) and not np.triu(p[:, 0], 1).any()
d = torch.load("pt/tiny-gpt2_activations.pt", weights_only=True)
assert list(d["activations"]) == sites and len(d["hidden_states"]) == 3
assert d["activations"]["blocks.0.attn.hook_pattern"].shape == (1, 2, 10, 10)
assert np.array_equal(d["activations"]["blocks.0.attn.hook_pattern"][0].numpy().transpose(1, 0, 2), p)
c = json.load(open("ints/conversion_metadata.json"))
assert [l["site"] for l in c["layers"]] == sites and c["records"] == [0]
z = json.load(open("zk/zkllm_metadata.json"))
assert z["padded_seq_len"] == 16 and len(z["activations"]) == 12
print(len(sites), "sites")'

# Stores of every other kind a capture makes: every export works on each.
printf 'Hello world\nA second prompt\nA third, longer prompt with more tokens in it.\n' >prompts.txt
run "capture block sites only" $A capture --model $M --prompts-file prompts.txt --sites 'blocks.*.hook_resid_post' \
  --max-new-tokens 2 --out out/blocks
run "capture --positions last" $A capture --model $M --prompts-file prompts.txt --sites all --positions last \
  --out out/last
run "capture token-stream bf16" $A capture --model $M --prompts-file prompts.txt --layout token-stream \
  --store-dtype bf16 --sites 'hidden_states.*,blocks.*.mlp.hook_post' --out out/stream
for store in blocks last stream; do
  for export in npy pt integers; do
    run "export $export of out/$store" $A export $export out/$store --out $export-$store --no-verify
  done
  run "export npy --by layer of out/$store" $A export npy out/$store --by layer --out npyl-$store
  run "stats --records 0,2 of out/$store" $A stats out/$store --records 0,2
done
py "exports of block sites, last positions and a token stream" '
import json, numpy as np, torch
for store in ["blocks", "last", "stream"]:
    m = json.load(open(f"out/{store}/manifest.json"))
    records = [json.loads(l) for l in open(f"out/{store}/records.jsonl")]
    rows = sum(len(r["positions"]) for r in records)
    index = np.load(f"npy-{store}/row_index.npy")
    assert index.tolist() == [[r["record"], p] for r in records for p in r["positions"]]
    for s in m["sites"]:
        a = np.load(f"npy-{store}/{s}.npy")
        assert a.shape[0] == rows and a.dtype == np.float32, (store, s, a.shape)
        ints = np.load(f"integers-{store}/" + json.load(open(f"integers-{store}/conversion_metadata.json"))["layers"][m["sites"].index(s)]["npy_file"], allow_pickle=True)
        assert ints.shape == a.shape
    for r in records:
        number = r["record"]
        d = torch.load(f"pt-{store}/record-{number}/tiny-gpt2_activations.pt", weights_only=True)
        assert d["positions"].tolist() == r["positions"] and list(d["activations"]) == m["sites"]
        assert ("hidden_states" in d) == (store == "stream" and r["positions"] == list(range(len(r["token_ids"]))))
        if store == "stream": assert d["activations"]["hidden_states.0"].dtype == torch.bfloat16
print("3 stores")'

# Numeric options: a one-line error, a non-zero exit and no output.
expect_error "--record past the end" "the store holds records 0-2" bad $A export npy out/blocks --record 9 --out bad
expect_error "--record -1" "--record -1: expected a record number" bad $A export pt out/blocks --record -1 --out bad
expect_error "--records outside" "no record 5" bad $A export integers out/blocks --records 0,5 --out bad
expect_error "--records syntax" "expected 'all' or record numbers" bad $A export npy out/blocks --records x --out bad
expect_error "--record with --records" "exclude each other" bad $A export npy out/blocks --record 0 --records 1 --out bad
expect_error "--scale-factor -5" "--scale-factor -5" bad $A export integers out/blocks --scale-factor -5 --out bad
expect_error "--quantize 101" "--quantize 101" bad $A export integers out/blocks --quantize 101 --out bad
expect_error "--scale-bits 31" "--scale-bits 31" bad $A export zkllm out/readme --scale-bits 31 --out bad
expect_error "zkllm of a site it has no file for" "has no zkLLM file" bad $A export zkllm out/readme --sites logits --out bad
expect_error "--sites matching nothing" "matches no site of the store" bad $A export npy out/blocks --sites 'x*' --out bad
expect_error "--num-dims 0" "--num-dims 0" bad $A export hypercube ints --num-dims 0 --out bad
expect_error "--min-dim 1" "--min-dim 1" bad $A export hypercube ints --min-dim 1 --out bad
expect_error "--flat -5" "--flat -5" bad $A hypercube locate cube --flat -5
expect_error "--pad-seed -1" "--pad-seed -1" bad $A export hypercube ints --pad-seed -1 --out bad
expect_error "--coord with --flat" "give one of" bad $A hypercube locate cube --flat 1 --coord 0,0,0
expect_error "--by rows" "--by rows" bad $A export npy out/blocks --by rows --out bad
expect_error "stats --record 3" "no record 3" bad $A stats out/blocks --record 3

# An earlier export is replaced; a folder that is not an export is never written into.
run "rerun into an earlier export" $A export npy out/blocks --sites 'blocks.0.*' --out npy-blocks &&
  [[ ! -e npy-blocks/blocks.1.hook_resid_post.npy ]] || fail "the rerun left the earlier export's files"
mkdir -p mine && echo keep >mine/notes.txt
expect_error "a folder that is not an export" "is not an actcap export" mine/blocks $A export npy out/blocks --out mine
[[ $(cat mine/notes.txt) == keep ]] || fail "the user's folder was changed"

# Killed mid-write (SIGXFSZ past `ulimit -f`): no npy-killed, only its temporary; the rerun cleans it up.
(ulimit -f 64; exec $A export npy out/readme --out npy-killed) >/dev/null 2>&1
status=$?
if ((status < 128)); then fail "the export under ulimit -f was not killed (status $status)"
elif [[ -e npy-killed ]]; then fail "a killed export left npy-killed"
elif ! ls -d npy-killed.tmp-* >/dev/null 2>&1; then fail "a killed export left no temporary (was it killed mid-write?)"
else pass "a killed export leaves only npy-killed.tmp-<pid>"; fi
run "rerun after the kill" $A export npy out/readme --out npy-killed
ls -d npy-killed.tmp-* >/dev/null 2>&1 && fail "the rerun did not remove the dead export's temporary"
grep -q '"complete": true' npy-killed/actcap_export.json || fail "the rerun's export is not marked complete"
# Failing to write (EFBIG with SIGXFSZ ignored, as ENOSPC on a full disk): a one-line error, nothing left.
expect_error "a write that fails" "write failed" ints-full \
  bash -c "trap '' XFSZ; ulimit -f 64; exec $A export integers out/readme --out ints-full"

# A shard tensor whose shape overflows: refused (by the exports' checked sizes, or earlier by the safetensors
# reader), never an unreadable .npy.
run "capture for the overflow" $A capture --model $M --prompt "Hello world" --sites hidden_states.0 --out out/overflow &&
$PY - <<'PY'
import glob, hashlib, json, struct
shard = glob.glob("out/overflow/shard-*.safetensors")[0]
raw = open(shard, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
header["0/hidden_states.0"].update(shape=[2**62, 4, 1], data_offsets=[0, 0])
text = json.dumps(header).encode()
text += b" " * (-(8 + len(text)) % 8)
data = struct.pack("<Q", len(text)) + text + raw[8 + n:]
open(shard, "wb").write(data)
# Re-sealed as docs/STORE.md says (shard, index and manifest hashes), so that only the shape is wrong.
sha = hashlib.sha256(data).hexdigest()
lines = [json.loads(line) for line in open("out/overflow/metadata.jsonl")]
for line in lines:
    line["shard_sha256"] = sha
index = "".join(json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n" for line in lines).encode()
open("out/overflow/metadata.jsonl", "wb").write(index)
m = json.load(open("out/overflow/manifest.json"))
m["shards"][0].update(sha256=sha, bytes=len(data))
m.update(metadata_sha256=hashlib.sha256(index).hexdigest(), metadata_bytes=len(index))
m.pop("manifest_sha256")
canonical = json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
m["manifest_sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
json.dump(m, open("out/overflow/manifest.json", "w"))
PY
expect_error "a shape that overflows" "4611686018427387904" npy-overflow \
  $A export npy out/overflow --out npy-overflow
expect_error "a shape that overflows (integers)" "4611686018427387904" ints-overflow \
  $A export integers out/overflow --record 0 --out ints-overflow

# Every export's --help says what it writes, with an example.
for command in "export npy" "export pt" "export integers" "export hypercube" "export zkllm" "hypercube locate" stats; do
  $A $command --help >help.txt 2>&1
  grep -q "Example: actcap $command" help.txt || fail "$command --help has no example"
done
grep -q -- "--no-verify" <($A export zkllm --help) || fail "export zkllm has no --no-verify"

finish "the first hour with the exports works"
