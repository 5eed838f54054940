# Helpers of tests/scripts/test_fold.sh, on Debian's Python (numpy, torch 1.13), reading actcap's files with the
# shared reader (tests/scripts/readers.py).
#   make MODEL OUT KIND SEED [kv]      transforms for MODEL's config under OUT: rotation.<KIND> (npy|pt|safetensors,
#                                      a random orthogonal float64 matrix), heads.pt / neurons.npy (random
#                                      permutations that keep each key/value group's query heads together; the
#                                      query heads are listed, or with `kv` the key/value heads),
#                                      spec_rotation.json (every layer), spec_permutation.json
#   rotation ORIGINAL FOLDED ROTATION  compares two stores: logits within 1e-5 relative, hidden_states.k = k·R
#                                      for k < L, hidden_states.L = (k / final norm weight)·R
#   same ORIGINAL FOLDED [TOLERANCE]   logits within TOLERANCE (1e-5) relative (permutations; a rotation kept in a
#                                      16-bit dtype, which rounds each rotated weight once more)
#   folder SOURCE FOLDED               the folded folder: same tensor names (+ lm_head when untied), dtypes, norm
#                                      weights 1, config and other files
import json, os, sys
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import readers


def config(model):
    return json.load(open(os.path.join(model, "config.json")))


def store_site(store, site):
    records = [json.loads(line) for line in open(os.path.join(store, "records.jsonl"))]
    tensors = readers.read_store_tensors(store)
    return np.concatenate([tensors[f"{r['record']}/{site}"] for r in records]).astype(np.float64)


def relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def make(model, out, kind, seed, heads="query"):
    c = config(model)
    rng = np.random.default_rng(int(seed))
    d, heads, kv, inter = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["intermediate_size"]
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    rotation = q * np.sign(np.diag(r))
    path = os.path.join(out, f"rotation.{kind}")
    if kind == "npy":
        np.save(path, rotation)
    elif kind == "pt":
        import torch
        torch.save(torch.from_numpy(rotation.astype(np.float32)), path)
    else:
        import struct
        header = json.dumps({"R": {"dtype": "F64", "shape": [d, d], "data_offsets": [0, d * d * 8]}}).encode()
        open(path, "wb").write(struct.pack("<Q", len(header)) + header + rotation.tobytes())
    group = heads // kv
    groups = rng.permutation(kv)
    query = np.concatenate([g * group + rng.permutation(group) for g in groups])
    import torch
    heads_list = groups if heads == "kv" else query
    torch.save(torch.from_numpy(heads_list.astype(np.int64)), os.path.join(out, "heads.pt"))
    np.save(os.path.join(out, "neurons.npy"), rng.permutation(inter))
    layers = range(c["num_hidden_layers"])
    json.dump({"layers": [{"name": f"model.layers.{i}", "rotation_path": path} for i in layers]},
              open(os.path.join(out, "spec_rotation.json"), "w"))
    json.dump({"layers": [{"name": f"model.layers.{i}", "head_permutation_path": os.path.join(out, "heads.pt"),
                           "neuron_permutation_path": os.path.join(out, "neurons.npy"),
                           "head_dim": c.get("head_dim", d // heads)} for i in layers]},
              open(os.path.join(out, "spec_permutation.json"), "w"))


def rotation_of(path):
    if path.endswith(".npy"):
        return np.load(path)
    if path.endswith(".pt"):
        import torch
        return torch.load(path).double().numpy()
    tensors = readers.read_safetensors(path)
    return tensors.get("linear_map", next(iter(tensors.values()))).astype(np.float64)


def check_rotation(original, folded, rotation_path, model):
    r = rotation_of(rotation_path)
    failures = []
    logits = relative(store_site(folded, "logits"), store_site(original, "logits"))
    if logits > 1e-5:
        failures.append(f"logits differ by {logits:.3g} relative")
    layers = config(model)["num_hidden_layers"]
    worst = 0.0
    for k in range(layers):
        worst = max(worst, relative(store_site(folded, f"hidden_states.{k}"), store_site(original, f"hidden_states.{k}") @ r))
    final = readers.read_safetensors(os.path.join(model, "model.safetensors"))["model.norm.weight"].astype(np.float64)
    last = relative(store_site(folded, f"hidden_states.{layers}"), (store_site(original, f"hidden_states.{layers}") / final) @ r)
    if worst > 1e-5 or last > 1e-5:
        failures.append(f"hidden_states.k vs k·R: {worst:.3g}, final {last:.3g} relative")
    print(f"logits {logits:.2e}, hidden_states.k·R {worst:.2e}, final norm output {last:.2e} (max relative)")
    return failures


def check_same(original, folded, tolerance="1e-5"):
    logits = relative(store_site(folded, "logits"), store_site(original, "logits"))
    print(f"logits {logits:.2e} (max relative)")
    return [f"logits differ by {logits:.3g} relative (> {tolerance})"] if logits > float(tolerance) else []


def check_folder(source, folded):
    failures = []
    before = readers.read_safetensors_typed(os.path.join(source, "model.safetensors"))
    after = readers.read_safetensors_typed(os.path.join(folded, "model.safetensors"))
    c_before, c_after = config(source), config(folded)
    tied = c_before.get("tie_word_embeddings", False)
    expected = set(before) | ({"lm_head.weight"} if tied else set())
    if set(after) != expected:
        failures.append(f"tensors {sorted(set(after) ^ expected)} differ")
    for name, (dtype, value) in after.items():
        if name in before and (before[name][0] != dtype or before[name][1].shape != value.shape):
            failures.append(f"{name}: {dtype} {value.shape} vs {before[name][0]} {before[name][1].shape}")
        if name.endswith("norm.weight") and "q_norm" not in name and "k_norm" not in name:
            if not np.all(readers.read_safetensors(os.path.join(folded, "model.safetensors"))[name] == 1):
                failures.append(f"{name} is not all ones")
    if c_after.get("tie_word_embeddings", False):
        failures.append("tie_word_embeddings still true")
    if {k: v for k, v in c_after.items() if k != "tie_word_embeddings"} != \
            {k: v for k, v in c_before.items() if k != "tie_word_embeddings"}:
        failures.append("config.json changed beyond tie_word_embeddings")
    for name in ("generation_config.json", "actcap_fold.json"):
        if not os.path.exists(os.path.join(folded, name)):
            failures.append(f"no {name}")
    if os.path.exists(os.path.join(folded, "reference.safetensors")):
        failures.append("reference.safetensors (not weights of this model) was copied")
    return failures


mode = sys.argv[1]
if mode == "make":
    make(*sys.argv[2:7])
    problems = []
elif mode == "rotation":
    problems = check_rotation(*sys.argv[2:6])
elif mode == "same":
    problems = check_same(*sys.argv[2:5])
else:
    problems = check_folder(*sys.argv[2:4])
for p in problems:
    print("FAIL:", p)
sys.exit(1 if problems else 0)
