# Reads what the export commands wrote (exports_cli_test.cpp / test_exports_python.sh) with numpy only and checks
# it against the capture store's floats: integers against Python's decimal module, the hypercube element by
# element through its layer map, `actcap hypercube locate`, zkLLM activation and weight files.
# Usage: check_exports.py ACTCAP WORK_DIR MODEL_DIR   (WORK_DIR holds store, ints, ints_fixed, ints_i64,
#        store_bf16 + ints_bf16, cube, cube_fixed, zk, zk6; missing ones are skipped)
import json, os, re, subprocess, sys
from decimal import Decimal, Context, ROUND_HALF_EVEN
from fractions import Fraction
import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from readers import read_safetensors, read_store_tensors

ACTCAP, WORK, MODEL = sys.argv[1:4]
ctx = Context(prec=4000, rounding=ROUND_HALF_EVEN, Emax=10**6, Emin=-10**6)

def ints_of(path, encoding):
    if encoding == "object":
        a = np.load(path, allow_pickle=True)
        assert a.dtype == object
        return a
    a = np.load(path)
    if encoding == "int64":
        assert a.dtype == np.int64
        return a.astype(object)
    assert a.dtype == np.uint8
    flat = a.reshape(-1, a.shape[-1])
    return np.array([int.from_bytes(r.tobytes(), "little", signed=True) for r in flat], dtype=object).reshape(a.shape[:-1])

def check_integers(store_dir, ints_dir, record, encoding, scale, dtype):
    store = read_store_tensors(store_dir)
    meta = json.load(open(os.path.join(ints_dir, "conversion_metadata.json")))
    conv = meta["conversion"]
    assert conv["effective_scale"] == scale and conv["format"] == encoding, conv
    assert meta["record"] == record and "prompt" in meta and "generated_text" in meta
    names = [l["layer"] for l in meta["layers"]]
    assert names == ["embedding"] + [f"layer_{i}" for i in range(len(names) - 1)], names
    for k, layer in enumerate(meta["layers"]):
        x = store[f"{record}/hidden_states.{k}"][None]
        assert layer["original_shape"] == list(x.shape) and layer["num_elements"] == x.size, layer
        assert layer["original_dtype"] == {"F32": "torch.float32", "BF16": "torch.bfloat16"}[dtype]
        got = ints_of(os.path.join(ints_dir, layer["npy_file"]), encoding)
        assert got.shape == x.shape, (got.shape, x.shape)
        for g, v in zip(got.reshape(-1).tolist(), x.reshape(-1).tolist()):
            want = int(ctx.to_integral_value(ctx.scaleb(Decimal(v), scale)))
            assert type(g) is int and g == want, (layer["layer"], v, g, want)
            assert abs(Fraction(g, 10**scale) - Fraction(v)) <= Fraction(1, 2 * 10**scale)
        assert int(layer["sample_converted"]) == got.reshape(-1)[0] and layer["sample_original"] == float(x.reshape(-1)[0])
    print(f"ok: integers {ints_dir} ({encoding}, scale {scale}) match decimal")

def check_integers_rows(store_dir, ints_dir, cube_dir):
    """Every record's rows stacked per site (the default export), row_index, and locate naming each row."""
    store = read_store_tensors(store_dir)
    records = [json.loads(l) for l in open(os.path.join(store_dir, "records.jsonl"))]
    meta = json.load(open(os.path.join(ints_dir, "conversion_metadata.json")))
    scale = meta["conversion"]["effective_scale"]
    assert meta["records"] == [r["record"] for r in records] and "record" not in meta, meta["records"]
    index = np.load(os.path.join(ints_dir, meta["row_index_file"]), allow_pickle=False)
    assert index.dtype == np.int64 and index.tolist() == [[r["record"], p] for r in records for p in r["positions"]]
    manifest = json.load(open(os.path.join(store_dir, "manifest.json")))
    assert [l["site"] for l in meta["layers"]] == manifest["sites"]
    for layer in meta["layers"]:
        x = np.concatenate([store[f"{r['record']}/{layer['site']}"] for r in records])
        assert layer["original_shape"] == list(x.shape) and layer["axes"][0] == "row", layer
        got = ints_of(os.path.join(ints_dir, layer["npy_file"]), "object")
        assert got.shape == x.shape, (got.shape, x.shape)
        for g, v in zip(got.reshape(-1).tolist()[::7], x.reshape(-1).tolist()[::7]):
            assert g == int(ctx.to_integral_value(ctx.scaleb(Decimal(v), scale))), (layer["layer"], v, g)
    cube = json.load(open(os.path.join(cube_dir, "hypercube_metadata.json")))
    e = cube["layer_map"][1]
    hidden = e["original_shape"][1]
    for row in [0, 7, e["original_shape"][0] - 1]:
        flat = e["flat_offset"] + row * hidden + 3
        out = subprocess.run([ACTCAP, "hypercube", "locate", cube_dir, "--flat", str(flat)], capture_output=True,
                             text=True, check=True).stdout
        fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
        assert fields["site"] == e["site"] and fields["axes"] == f"row {row}, hidden 3", out
        assert fields["row"] == f"{row} = record {index[row][0]}, position {index[row][1]}", out
    print(f"ok: integers of every record ({len(index)} rows, {len(meta['layers'])} sites) and their hypercube rows")

def check_hypercube(ints_dir, cube_dir, encoding):
    meta = json.load(open(os.path.join(cube_dir, "hypercube_metadata.json")))
    dims = tuple(meta["hypercube"]["dimensions"])
    n = meta["hypercube"]["total_real_elements"]
    cube = ints_of(os.path.join(cube_dir, "hypercube.npy"), encoding)
    assert cube.shape == dims, (cube.shape, dims)
    layers = {e["layer"]: ints_of(os.path.join(ints_dir, e["npy_file"]), encoding) for e in meta["layer_map"]}
    real = set()
    flat_cube = cube.reshape(-1)
    for e in meta["layer_map"]:
        a = layers[e["layer"]]
        assert list(a.shape) == e["original_shape"] and e["flat_end"] - e["flat_offset"] == a.size
        for pos in range(a.size):
            flat = e["flat_offset"] + pos
            coords = np.unravel_index(flat, dims)
            assert np.ravel_multi_index(coords, dims) == flat
            value = a[np.unravel_index(pos, a.shape)]
            assert cube[coords] == value, (e["layer"], pos)
            real.add(value)
    assert n == sum(a.size for a in layers.values()) and np.prod(dims) >= n
    for flat in range(n, flat_cube.size):
        assert flat_cube[flat] in real, flat
    # The command-line locator agrees with numpy on a spread of coordinates, padding included.
    for flat in sorted(set([0, n - 1, flat_cube.size - 1] + list(range(0, flat_cube.size, max(1, flat_cube.size // 7))))):
        coords = np.unravel_index(flat, dims)
        out = subprocess.run([ACTCAP, "hypercube", "locate", cube_dir, "--coord", ",".join(map(str, coords))],
                             capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
        assert int(fields["flat"]) == flat, out
        e = next(e for e in meta["layer_map"] if e["layer"] == fields["layer"])
        pos = int(re.search(r"\(flat (\d+) within", fields["position"]).group(1))
        assert cube[coords] == layers[e["layer"]].reshape(-1)[pos], out
        assert ("padding" in fields) == (flat >= n), out
    print(f"ok: hypercube {dims}: all {n} elements and {flat_cube.size - n} padding values map back")

def check_zkllm(store_dir, zk_dir, record):
    store = read_store_tensors(store_dir)
    meta = json.load(open(os.path.join(zk_dir, "zkllm_metadata.json")))
    seq, padded, hidden = meta["seq_len"], meta["padded_seq_len"], meta["hidden"]
    scale = 2.0 ** meta["log_scaling_factor"]
    sites = {"input-rmsnorm-activation": "hook_resid_pre", "self-attn-activation": "ln1.hook_normalized",
             "post_attention-rmsnorm-activation": "hook_resid_mid", "ffn-activation": "ln2.hook_normalized",
             "block-input": "hook_resid_pre", "block-output": "hook_resid_post"}
    count = 0
    for i in range(meta["num_layers"]):
        for suffix, site in sites.items():
            data = np.fromfile(os.path.join(zk_dir, f"layer-{i}-{suffix}.bin"), dtype="<i4")
            assert data.size == padded * hidden, (suffix, data.size)
            data = data.reshape(padded, hidden)
            x = store[f"{record}/blocks.{i}.{site}"]
            assert x.shape == (seq, hidden)
            assert np.array_equal(data[:seq], np.round(x.astype(np.float64) * scale).astype(np.int32)), (i, suffix)
            assert not data[seq:].any()
            assert np.abs(data[:seq] / scale - x).max() <= 0.5 / scale
            count += 1
    if "weights" in meta:
        w = read_safetensors(os.path.join(MODEL, "model.safetensors"))
        files = meta["weights"]["files"]
        assert {f["file"] for f in files} >= {f"layer-0-{p}-int.bin" for p in [
            "input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
            "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
            "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"]}
        for f in files:
            src = w[f["tensor"]].astype(np.float64)
            want = np.round((src.T if src.ndim == 2 else src) * 65536).astype(np.int32)
            got = np.fromfile(os.path.join(zk_dir, f["file"]), dtype="<i4").reshape(want.shape)
            assert list(want.shape) == f["written_shape"] and np.array_equal(got, want), f["file"]
        print(f"ok: {len(files)} zkLLM weight files are round(W^T * 2^16)")
    print(f"ok: {count} zkLLM activation files (seq_len {seq}, padded {padded}) equal round(x * {scale:g})")

j = lambda *p: os.path.join(WORK, *p)
if os.path.isdir(j("ints")): check_integers(j("store"), j("ints"), 1, "object", 32, "F32")
if os.path.isdir(j("ints_fixed")): check_integers(j("store"), j("ints_fixed"), 1, "fixed", 32, "F32")
if os.path.isdir(j("ints_i64")): check_integers(j("store"), j("ints_i64"), 1, "int64", 16, "F32")
if os.path.isdir(j("ints_bf16")): check_integers(j("store_bf16"), j("ints_bf16"), 0, "object", 16, "BF16")
if os.path.isdir(j("ints_rows")): check_integers_rows(j("store"), j("ints_rows"), j("cube_rows"))
if os.path.isdir(j("cube")): check_hypercube(j("ints"), j("cube"), "object")
if os.path.isdir(j("cube_fixed")): check_hypercube(j("ints_fixed"), j("cube_fixed"), "fixed")
if os.path.isdir(j("zk")): check_zkllm(j("store"), j("zk"), 1)
if os.path.isdir(j("zk6")): check_zkllm(j("store"), j("zk6"), 0)
if os.path.isdir(j("zk12")): check_zkllm(j("store"), j("zk12"), 0)
if os.path.isdir(j("zk_all")):
    check_zkllm(j("store"), j("zk_all", "record-0"), 0)
    check_zkllm(j("store"), j("zk_all", "record-1"), 1)
