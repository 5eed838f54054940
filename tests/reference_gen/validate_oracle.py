"""Proves torch_reference.py reproduces Hugging Face transformers: every site of every shared reference
(tests/data/reference/{gpt2,llama,mistral,qwen2,qwen3,opt}, cases s0 and s1, computed by real HF 5.17) within
1e-5 x max|reference| per site, the same set of sites, and identical greedy ids. Then checks that every folder in
tests/data/extra still holds exactly what the oracle computes from its weights (the data was not edited by hand).

  /usr/bin/python3 tests/reference_gen/validate_oracle.py [REPO_ROOT]
Exit 0 when all hold; prints the worst relative error per model.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import torch_reference as tr  # noqa: E402

TOL = 1e-5
EXTRA_TOL = 1e-6  # the extra data was written by this oracle: only other CPUs' last-bit rounding may differ
SHARED = ["gpt2", "llama", "mistral", "qwen2", "qwen3", "opt"]


def compare(folder, case_prefixes, tol):
    """Worst relative error over the folder's stored cases; a list of failures."""
    model = tr.Model(folder)
    ref = tr.read_safetensors(os.path.join(folder, "reference.safetensors"))
    failures, worst, worst_at = [], 0.0, ""
    for case in case_prefixes:
        ids = ref[f"{case}/input_ids"].tolist()
        got = model.forward(ids)
        want = {k[len(case) + 1:]: v for k, v in ref.items() if k.startswith(case + "/") and k != f"{case}/input_ids"}
        if set(got) != set(want):
            failures.append(f"{folder} {case}: site sets differ: oracle-only {sorted(set(got) - set(want))}, "
                            f"reference-only {sorted(set(want) - set(got))}")
            continue
        for site, w in want.items():
            g = got[site]
            if tuple(g.shape) != tuple(w.shape):
                failures.append(f"{folder} {case}/{site}: shape {tuple(g.shape)} != {tuple(w.shape)}")
                continue
            err = float((g - w.float()).abs().max()) / max(float(w.float().abs().max()), 1e-30)
            if err > worst:
                worst, worst_at = err, f"{case}/{site}"
            if not err <= tol:
                failures.append(f"{folder} {case}/{site}: relative error {err:.3g} > {tol}")
    gen_in = ref["gen/input_ids"].tolist()
    want_ids = ref["gen/output_ids"].tolist()
    got_ids, gap = model.greedy(gen_in, len(want_ids) - len(gen_in))
    if got_ids != want_ids:
        failures.append(f"{folder}: greedy ids {got_ids} != reference {want_ids}")
    return worst, worst_at, gap, failures


# Config changes that must leave a shared reference unchanged (the feature is present but neutral) or must change
# exactly the named sites. They prove the config paths of features the shared data does not exercise are wired
# (parsed, reaching the right layers); that the formulas are HF's rests on reading HF's code.
NEUTRAL = [
    ("llama", {"rope_scaling": {"type": "linear", "factor": 1.0}}),
    ("llama", {"rope_scaling": {"rope_type": "llama3", "factor": 1.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}),
    ("mistral", {"sliding_window": 19}),  # W keys = all 19 of s1
    # the shared qwen2 config.json lists layer_types; without it they follow from max_window_layers
    ("qwen2", {"layer_types": None, "use_sliding_window": True, "sliding_window": 19, "max_window_layers": 0}),
    ("qwen2", {"layer_types": None, "use_sliding_window": True, "sliding_window": 4, "max_window_layers": 2}),
    ("qwen2", {"layer_types": None, "use_sliding_window": False, "sliding_window": 4, "max_window_layers": 0}),
    ("qwen2", {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 0}),  # listed types win
]
ACTIVE = [  # (model, changes, first site of s1 that must differ, a site that must still match)
    ("mistral", {"sliding_window": 18}, "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_q"),
    ("qwen2", {"layer_types": None, "use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1},
     "blocks.1.attn.hook_pattern", "blocks.0.hook_resid_post"),
    ("llama", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 32}},
     "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_q"),
    ("gpt2", {"scale_attn_by_inverse_layer_idx": True}, "blocks.1.attn.hook_pattern", "blocks.0.hook_resid_post"),
]


def rel(a, b):
    return float((a - b).abs().max()) / max(float(b.abs().max()), 1e-30)


def config_path_checks(root):
    failures = []
    for name, changes in NEUTRAL:
        folder = os.path.join(root, "tests", "data", "reference", name)
        ref = tr.read_safetensors(os.path.join(folder, "reference.safetensors"))
        got = tr.Model(folder, changes).forward(ref["s1/input_ids"].tolist())
        worst = max(rel(v, ref[f"s1/{k}"]) for k, v in got.items())
        if not worst <= TOL:
            failures.append(f"{name} with {changes} should equal the reference: relative error {worst:.3g}")
    for name, changes, differs, same in ACTIVE:
        folder = os.path.join(root, "tests", "data", "reference", name)
        ref = tr.read_safetensors(os.path.join(folder, "reference.safetensors"))
        got = tr.Model(folder, changes).forward(ref["s1/input_ids"].tolist())
        if not rel(got[differs], ref[f"s1/{differs}"]) > 1e-3 or not rel(got[same], ref[f"s1/{same}"]) <= TOL:
            failures.append(f"{name} with {changes} should change {differs} and keep {same}")
    print(f"config-path checks: {len(NEUTRAL)} neutral, {len(ACTIVE)} active: "
          f"{'all hold' if not failures else 'see failures'}")
    return failures


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(HERE))
    failures = []
    print(f"oracle vs real HF 5.17 output (tests/data/reference), tolerance {TOL} x max|ref| per site")
    for name in SHARED:
        folder = os.path.join(root, "tests", "data", "reference", name)
        worst, at, gap, f = compare(folder, ["s0", "s1"], TOL)
        failures += f
        print(f"  {name:8s} worst {worst:.2e} at {at}; greedy ids {'identical' if not f else 'see failures'}"
              f" (smallest top-2 logit gap {gap:.2g})")
    failures += config_path_checks(root)
    extra_root = os.path.join(root, "tests", "data", "extra")
    if os.path.isdir(extra_root):
        print(f"oracle vs the stored tests/data/extra references (tolerance {EXTRA_TOL})")
        for name in sorted(os.listdir(extra_root)):
            folder = os.path.join(extra_root, name)
            if not os.path.exists(os.path.join(folder, "reference.safetensors")):
                continue
            ref = tr.read_safetensors(os.path.join(folder, "reference.safetensors"))
            cases = sorted({k.split("/")[0] for k in ref if k.endswith("/input_ids") and not k.startswith("gen/")})
            worst, at, gap, f = compare(folder, cases, EXTRA_TOL)
            failures += f
            print(f"  {name:18s} cases {','.join(cases)}: worst {worst:.2e}")
    for f in failures:
        print("FAIL", f)
    print("OK" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
