#!/usr/bin/env bash
# The formats people already load, read with the real readers: `actcap export pt` with
# torch.load(weights_only=True), `actcap export npy` with numpy.load(allow_pickle=False), `actcap stats --json`
# with json.
# Every value is compared with the store (read by the tests' own safetensors reader, tests/scripts/readers.py, no
# actcap code) and the hidden states with what Hugging Face transformers computed (tests/data/reference/tiny-gpt2).
set -uo pipefail
ACTCAP=$(realpath "${1:?usage: test_formats_readers.sh ACTCAP_BINARY}")
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python numpy torch
MODEL=$DATA/reference/tiny-gpt2
run() {  # runs a command, failing the test (with its output) if it fails
  local name=$1; shift
  if ! "$@" >"$WORK/out.txt" 2>&1; then fail "$name: $* exited non-zero"; cat "$WORK/out.txt"; return 1; fi
}
check() {
  local name=$1; shift
  if $PY "$WORK/check.py" "$@" >"$WORK/check.txt" 2>&1; then pass "$name ($(tail -1 "$WORK/check.txt"))"
  else fail "$name"; cat "$WORK/check.txt"; fi
}

cat >"$WORK/check.py" <<'EOF'
import io, json, os, struct, sys, zipfile
import numpy as np
import torch
from readers import bf16_to_float32, read_safetensors, read_safetensors_typed, store_shards

def read_store(d):
    """{"<record>/<site>": (dtype, rows)} whatever the layout."""
    manifest = json.load(open(os.path.join(d, "manifest.json")))
    tensors = {}
    for shard in store_shards(d):
        t = read_safetensors_typed(shard)
        if manifest["layout"] == "token_stream":
            index = t.pop("row_index")[1]
            for site, (dtype, rows) in t.items():
                for r in sorted(set(index[:, 0].tolist())):
                    tensors[f"{r}/{site}"] = (dtype, rows[index[:, 0] == r])
        else:
            tensors.update(t)
    records = [json.loads(l) for l in open(os.path.join(d, "records.jsonl"))]
    return tensors, records, manifest

def as_f32(dtype, a):
    return bf16_to_float32(a) if dtype == "BF16" else a.astype(np.float32)

def layer_sites(manifest):
    """hidden_states.0, .1, ... as far as the store holds them without a gap."""
    sites = []
    while f"hidden_states.{len(sites)}" in manifest["sites"]:
        sites.append(f"hidden_states.{len(sites)}")
    return sites

def layer_name(site):
    if site.startswith("hidden_states."):
        k = int(site.split(".")[1])
        return "embedding" if k == 0 else f"layer_{k - 1}"
    return site

def check_pt(store, pt, record, reference=None, case=None):
    tensors, records, manifest = read_store(store)
    r = records[record]
    # The zip layout torch.save writes: one folder, data.pkl, data/<key> 64-byte aligned, version, byteorder.
    z = zipfile.ZipFile(pt)
    assert z.testzip() is None
    names = z.namelist()
    folder = os.path.splitext(os.path.basename(pt))[0]
    assert all(n.startswith(folder + "/") for n in names), names
    for need in ["data.pkl", "version", "byteorder"]:
        assert f"{folder}/{need}" in names, names
    assert z.read(f"{folder}/version") == b"3\n" and z.read(f"{folder}/byteorder") == b"little"
    raw = open(pt, "rb").read()
    for info in z.infolist():
        if "/data/" in info.filename:
            start = info.header_offset + 30 + struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])[0] \
                + struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])[1]
            assert start % 64 == 0, (info.filename, start)

    d = torch.load(pt, weights_only=True)
    sites = layer_sites(manifest)
    # The original tool's hidden_states tuple: only with hidden_states.0.. captured at every position.
    with_tuple = bool(sites) and r["positions"] == list(range(len(r["token_ids"])))
    assert list(d.keys()) == ["model_name", "prompt", "generated_text", "token_sequence"] + \
        (["hidden_states"] if with_tuple else []) + ["record", "positions", "activations"], list(d)
    assert d["record"] == record and d["positions"].tolist() == r["positions"], (d["record"], d["positions"])
    # Every site under "activations", batch-of-one, bit-identical to the store; hidden states share storage.
    assert list(d["activations"]) == manifest["sites"], list(d["activations"])
    for site, t in d["activations"].items():
        dtype, stored = tensors[f"{record}/{site}"]
        got = t[0].view(torch.int16).numpy().view(np.uint16) if dtype == "BF16" else t[0].numpy()
        assert t.shape == (1,) + stored.shape and np.array_equal(got.view(np.uint8), stored.view(np.uint8)), site
    assert d["model_name"] == manifest["model"]["path"], d["model_name"]
    assert d["prompt"] == r.get("text") and d["generated_text"] == r.get("generated_text"), (d["prompt"], d["generated_text"])
    ts = d["token_sequence"]
    assert ts.dtype == torch.int64 and ts.shape == (1, len(r["token_ids"])) and ts[0].tolist() == r["token_ids"]
    hs = d.get("hidden_states", ())
    assert isinstance(hs, tuple) and len(hs) == len(sites), (type(hs), len(hs))
    for k, site in enumerate(sites):
        dtype, stored = tensors[f"{record}/{site}"]
        want_dtype = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}[dtype]
        h = hs[k]
        assert h.dtype == want_dtype and h.shape == (1,) + stored.shape and h.is_contiguous(), (site, h.dtype, h.shape)
        assert h.data_ptr() == d["activations"][site].data_ptr(), f"{site}: stored twice"
        got = h[0].view(torch.int16).numpy().view(np.uint16) if dtype == "BF16" else h[0].numpy()
        assert np.array_equal(got.view(np.uint8), stored.view(np.uint8)), f"{site}: values differ from the store"
    worst = 0.0
    if reference:
        ref = read_safetensors(reference)
        if case == "gen":  # prompt + greedy continuation: the tokens HF generated
            assert ts[0].tolist() == ref["gen/output_ids"].tolist(), ts
            # gen/text decodes prompt + continuation; generated_text is the continuation, as the original tool's
            assert d["prompt"] + d["generated_text"] == ref["gen/text"].tobytes().decode("utf-8"), d["generated_text"]
            case, n = "hello", len(ref["hello/input_ids"])  # the prompt's positions: HF's forward over it
        else:
            n = len(r["token_ids"])
        for k, site in enumerate(sites):
            want = ref[f"{case}/{site}"]
            got = hs[k][0, :n].float().numpy()
            worst = max(worst, float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1e-30))
        assert worst <= (1e-2 if manifest["dtype"] == "BF16" else 1e-4), f"relative error {worst} against HF"
    print(f"{len(hs)} hidden states, {len(d['activations'])} sites; worst relative error vs HF {worst:.1e}")

def check_npy(store, out, by, record):
    tensors, records, manifest = read_store(store)
    sites = manifest["sites"]
    names = [layer_name(s) for s in sites] if by == "layer" else sites
    for name, site in zip(names, sites):
        path = os.path.join(out, name + ".npy")
        a = np.load(path, allow_pickle=False)
        if record >= 0:
            dtype, stored = tensors[f"{record}/{site}"]
            want = as_f32(dtype, stored)[None]
        elif site.endswith("attn.hook_pattern") and manifest["layout"] == "per_record":
            # [H, T, n] per record -> query rows first [T, H, K], keys zero-padded to the longest record
            parts = [as_f32(*tensors[f"{r['record']}/{site}"]).transpose(1, 0, 2) for r in records]
            keys = max(p.shape[2] for p in parts)
            want = np.concatenate([np.pad(p, ((0, 0), (0, 0), (0, keys - p.shape[2]))) for p in parts])
        else:
            want = np.concatenate([as_f32(*tensors[f"{r['record']}/{site}"]) for r in records])
        assert a.dtype == (np.float16 if manifest["dtype"] == "F16" else np.float32), a.dtype
        assert a.shape == want.shape and np.array_equal(a, want), f"{path}: {a.shape} vs {want.shape}"
        # The header is exactly np.save's (numpy's own alignment and padding).
        buf = io.BytesIO(); np.save(buf, a)
        assert open(path, "rb").read() == buf.getvalue(), f"{path}: bytes differ from np.save's"
    described = json.load(open(os.path.join(out, "actcap_export.json")))
    assert described["complete"] and [a["site"] for a in described["arrays"]] == sites, described
    if record < 0:
        index = np.load(os.path.join(out, "row_index.npy"), allow_pickle=False)
        want = [[r["record"], p] for r in records for p in r["positions"]]
        assert index.dtype == np.int64 and index.tolist() == want, index
    print(f"{len(names)} arrays by {by}, {a.shape} {a.dtype}")

def check_stats(store, path, record):
    tensors, records, manifest = read_store(store)
    j = json.load(open(path))
    assert list(j)[:5] == ["model_name", "prompt", "generated_text", "size_summary", "layer_stats"], list(j)
    chosen = [records[record]] if record >= 0 else records
    if len(chosen) == 1:
        assert j["prompt"] == chosen[0].get("text") and j["generated_text"] == chosen[0].get("generated_text")
    sizes = []
    for entry, site in zip(j["layer_stats"], manifest["sites"]):
        values = [torch.from_numpy(as_f32(*tensors[f"{r['record']}/{site}"]).copy()) for r in chosen]
        t = torch.cat([v.flatten() for v in values]).double()
        k = int(site.split(".")[1]) if site.startswith("hidden_states.") else None
        assert entry["layer"] == ("embedding" if k == 0 else f"layer_{k - 1}" if k else site), entry["layer"]
        assert entry["num_elements"] == t.numel()
        if len(chosen) == 1:
            assert entry["shape"] == [1] + list(values[0].shape), entry["shape"]
        assert entry["min"] == t.min().item() and entry["max"] == t.max().item()
        assert abs(entry["mean"] - t.mean().item()) <= 1e-12 * max(1.0, abs(t.mean().item()))
        assert abs(entry["std"] - t.std().item()) <= 1e-10 * t.std().item(), (entry["std"], t.std().item())
        assert entry["dtype"] == {"F32": "torch.float32", "BF16": "torch.bfloat16", "F16": "torch.float16"}[manifest["dtype"]]
        assert entry["precision_bits"] == (32 if manifest["dtype"] == "F32" else 16)
        sizes.append(t.numel())
    assert len(j["layer_stats"]) == len(manifest["sites"])
    s = j["size_summary"]
    assert (s["min_size"], s["max_size"]) == (min(sizes), max(sizes)) and abs(s["avg_size"] - sum(sizes) / len(sizes)) < 1e-9
    print(f"{len(sizes)} layers over {len(chosen)} record(s)")

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "pt":
    check_pt(args[0], args[1], int(args[2]), *(args[3:5] if len(args) > 3 else []))
elif cmd == "npy":
    check_npy(args[0], args[1], args[2], int(args[3]))
elif cmd == "stats":
    check_stats(args[0], args[1], int(args[2]))
EOF

REF=$MODEL/reference.safetensors
PARA=$($PY -c "import json; print(json.load(open('$MODEL/reference_prompts.json'))['para']['text'])")
# Stores: the demo generation (fp32 and bf16), a prompt-only capture, and a store of several records.
run capture-gen "$ACTCAP" capture --model "$MODEL" --prompt "Hello world" --max-new-tokens 8 --quiet --out "$WORK/gen" &&
run capture-gen-bf16 "$ACTCAP" capture --model "$MODEL" --prompt "Hello world" --max-new-tokens 8 --store-dtype bf16 --quiet --out "$WORK/gen-bf16" &&
run capture-para "$ACTCAP" capture --model "$MODEL" --prompt "$PARA" --quiet --out "$WORK/para" &&
printf 'Hello world\n%s\nA third, longer prompt with more tokens in it.\n' "$PARA" >"$WORK/prompts.txt" &&
run capture-many "$ACTCAP" capture --model "$MODEL" --prompts-file "$WORK/prompts.txt" --max-new-tokens 3 \
  --sites 'hidden_states.*,blocks.0.hook_attn_out' --quiet --out "$WORK/many" || { echo "FAILED: $FAILURES"; exit 1; }

# export pt: torch.load(weights_only=True), values equal to the store's and to HF's.
run pt-gen "$ACTCAP" export pt "$WORK/gen" --out "$WORK/pt-gen" &&
  check "export pt (fp32, generation) vs store and HF" pt "$WORK/gen" "$WORK/pt-gen/tiny-gpt2_activations.pt" 0 "$REF" gen
run pt-bf16 "$ACTCAP" export pt "$WORK/gen-bf16" --out "$WORK/pt-bf16" &&
  check "export pt (bf16 stays bf16) vs store and HF" pt "$WORK/gen-bf16" "$WORK/pt-bf16/tiny-gpt2_activations.pt" 0 "$REF" gen
run pt-para "$ACTCAP" export pt "$WORK/para" --out "$WORK/pt-para" &&
  check "export pt (prompt only) vs store and HF" pt "$WORK/para" "$WORK/pt-para/tiny-gpt2_activations.pt" 0 "$REF" para
run pt-many "$ACTCAP" export pt "$WORK/many" --record 2 --out "$WORK/pt-many" &&
  check "export pt --record 2" pt "$WORK/many" "$WORK/pt-many/tiny-gpt2_activations.pt" 2

run pt-all "$ACTCAP" export pt "$WORK/many" --out "$WORK/pt-all" &&
  for r in 0 1 2; do
    check "export pt of every record: record-$r/" pt "$WORK/many" "$WORK/pt-all/record-$r/tiny-gpt2_activations.pt" $r
  done

# export npy: numpy.load without pickle, byte-identical to np.save.
run npy-layer "$ACTCAP" export npy "$WORK/gen" --out "$WORK/npy-layer" --by layer --record 0 &&
  check "export npy --by layer --record 0" npy "$WORK/gen" "$WORK/npy-layer" layer 0
run npy-bf16 "$ACTCAP" export npy "$WORK/gen-bf16" --out "$WORK/npy-bf16" --by layer &&
  check "export npy bf16 -> float32" npy "$WORK/gen-bf16" "$WORK/npy-bf16" layer -1
run npy-many "$ACTCAP" export npy "$WORK/many" --out "$WORK/npy-many" --all-records &&
  check "export npy --by site --all-records" npy "$WORK/many" "$WORK/npy-many" site -1

run capture-stream "$ACTCAP" capture --model "$MODEL" --prompts-file "$WORK/prompts.txt" --max-new-tokens 2 \
  --layout token-stream --quiet --out "$WORK/stream" &&
  run npy-stream "$ACTCAP" export npy "$WORK/stream" --out "$WORK/npy-stream" &&
  check "export npy of a token-stream store" npy "$WORK/stream" "$WORK/npy-stream" site -1

# stats: the original tool's fields, values equal to torch's (std unbiased) over the store's values.
(cd "$WORK" && run stats-json "$ACTCAP" stats "$WORK/gen" --json && cp "$WORK/out.txt" "$WORK/gen_stats.json") &&
  check "stats --json prints the document" stats "$WORK/gen" "$WORK/gen_stats.json" 0
(cd "$WORK" && run stats-dash "$ACTCAP" stats "$WORK/gen" --out - && cp "$WORK/out.txt" "$WORK/dash_stats.json") &&
  check "stats --out - prints it too" stats "$WORK/gen" "$WORK/dash_stats.json" 0
[[ -e "$WORK/-" ]] && fail "stats --out - created a file named '-'"
ls "$WORK"/*_stats.json.tmp-* >/dev/null 2>&1 && fail "stats left a temporary file"
run stats-bf16 "$ACTCAP" stats "$WORK/gen-bf16" --out "$WORK/bf16_stats.json" &&
  check "stats bf16" stats "$WORK/gen-bf16" "$WORK/bf16_stats.json" 0
run stats-many "$ACTCAP" stats "$WORK/many" --out "$WORK/many_stats.json" &&
  check "stats over every record" stats "$WORK/many" "$WORK/many_stats.json" -1
run stats-one "$ACTCAP" stats "$WORK/many" --record 1 --out "$WORK/one_stats.json" &&
  check "stats --record 1" stats "$WORK/many" "$WORK/one_stats.json" 1

# Errors: one line, non-zero exit, no output file.
expect_error "pt of a missing record" "record" "$WORK/bad/tiny-gpt2_activations.pt" \
  "$ACTCAP" export pt "$WORK/gen" --record 5 --out "$WORK/bad"
expect_error "npy with --record and --all-records" "exclude" "$WORK/bad2/hidden_states.0.npy" \
  "$ACTCAP" export npy "$WORK/many" --out "$WORK/bad2" --record 0 --all-records
# Attention patterns of records of different lengths: rows of every record, keys zero-padded.
run capture-pattern "$ACTCAP" capture --model "$MODEL" --prompts-file "$WORK/prompts.txt" --max-new-tokens 2 \
  --sites 'blocks.0.attn.hook_pattern,hidden_states.1' --quiet --out "$WORK/pattern" &&
  run npy-pattern "$ACTCAP" export npy "$WORK/pattern" --out "$WORK/npy-pattern" &&
  check "export npy of attention patterns, every record" npy "$WORK/pattern" "$WORK/npy-pattern" site -1
run npy-pattern-one "$ACTCAP" export npy "$WORK/pattern" --out "$WORK/npy-pattern1" --record 1 &&
  check "export npy of an attention pattern, --record 1" npy "$WORK/pattern" "$WORK/npy-pattern1" site 1
run pt-pattern "$ACTCAP" export pt "$WORK/pattern" --records 1 --out "$WORK/pt-pattern" &&
  check "export pt of an attention pattern" pt "$WORK/pattern" "$WORK/pt-pattern/tiny-gpt2_activations.pt" 1
expect_error "stats of a folder that is no store" "manifest" "$WORK/nostore_stats.json" \
  "$ACTCAP" stats "$WORK/pt-gen" --out "$WORK/nostore_stats.json"

finish "all format reader checks passed"
