#!/usr/bin/python3
"""Reading a capture store from Python (actcap.open) vs np.load of the same data exported with `export npy`.

    PYTHONPATH=build/python bench/python_read.py [--actcap build/actcap] [--model M] [--gib 1] [--work DIR]

Captures about --gib GiB (logits + hidden_states.* of the bundled tiny GPT-2: logits are 201 KB a token) into a
store with 256 MiB shards, exports it with `actcap export npy` (one .npy per site, all records), then measures
in fresh processes, each run three times (best shown; the files are in the page cache, as right after a capture):
  - time to first array: import + open + the first record's logits, summed (so every byte is read);
  - GB/s reading everything site by site (each record's array summed), and the peak memory while doing it:
    VmHWM (peak resident set, which counts mapped file pages) and the largest RssAnon seen (memory the process
    itself holds; mapped shard pages are page cache the kernel can drop).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PROMPT_WORDS = ("the model reads every token and writes its activations to disk while memory stays flat as the "
                "dataset grows").split()

# Each measurement runs in its own interpreter, so that imports and peak memory are its own.
MEASURE = r"""
import json, os, sys, time
start = time.perf_counter()
mode, path = sys.argv[1], sys.argv[2]
import numpy as np

def memory():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {key: int(fields[key].split()[0]) * 1024 for key in ("VmHWM", "RssAnon", "RssFile")}

peak_anon, total_bytes, first = 0, 0, None
if mode.startswith("store"):
    import actcap
    store = actcap.open(path, verify=mode == "store-verify")
    for site in store.sites:
        for record in range(len(store)):
            array = store[record, site]
            array.sum()
            total_bytes += array.nbytes
            if first is None:
                first = time.perf_counter() - start
        peak_anon = max(peak_anon, memory()["RssAnon"])
else:
    names = sorted(n for n in os.listdir(path) if n.endswith(".npy") and n != "row_index.npy")
    names.sort(key=lambda n: n != "logits.npy")  # the same first array as the store: logits
    for name in names:
        array = np.load(os.path.join(path, name), mmap_mode="r" if mode == "npy-mmap" else None)
        if first is None:
            rows = len(json.loads(open(sys.argv[3]).readline())["positions"])
            array[:rows].sum()
            first = time.perf_counter() - start
        array.sum()
        total_bytes += array.nbytes
        peak_anon = max(peak_anon, memory()["RssAnon"])
        del array
seconds = time.perf_counter() - start
print(json.dumps({"first_s": first, "total_s": seconds, "bytes": total_bytes, "peak_anon": peak_anon,
                  "vm_hwm": memory()["VmHWM"]}))
"""


def run(*command):
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def measure(mode, path, records_file):
    results = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", MEASURE, mode, path, records_file], check=True,
                             capture_output=True, text=True, env=os.environ).stdout
        results.append(json.loads(out))
    return min(results, key=lambda r: r["total_s"]) | {"first_s": min(r["first_s"] for r in results)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actcap", default="build/actcap")
    parser.add_argument("--model", default="tests/data/reference/tiny-gpt2")
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="actcap_pybench_")
    os.makedirs(work, exist_ok=True)
    prompts, store, npy = (os.path.join(work, name) for name in ("prompts.txt", "store", "npy"))

    tokens_per_prompt = 24  # about: 20 words of one GPT-2 token each, plus punctuation
    n_prompts = max(1, int(args.gib * 2**30 / (50257 * 4 * tokens_per_prompt)))
    with open(prompts, "w") as file:
        for i in range(n_prompts):
            words = [PROMPT_WORDS[(i * 7 + k) % len(PROMPT_WORDS)] for k in range(20)]
            file.write(f"{i}: {' '.join(words)}.\n")
    started = time.perf_counter()
    run(args.actcap, "capture", "--model", args.model, "--prompts-file", prompts, "--sites",
        "hidden_states.*,logits", "--shard-size", "256MiB", "--quiet", "--overwrite", "--out", store)
    capture_s = time.perf_counter() - started
    run(args.actcap, "export", "npy", store, "--out", npy)
    store_bytes = sum(os.path.getsize(os.path.join(store, n)) for n in os.listdir(store) if n.endswith(".safetensors"))
    records_file = os.path.join(store, "records.jsonl")
    print(f"store: {n_prompts} records, {store_bytes / 2**30:.2f} GiB in "
          f"{sum(n.endswith('.safetensors') for n in os.listdir(store))} shards (capture {capture_s:.1f} s)")
    print(f"{'reader':<34} {'first array':>12} {'read all':>10} {'GB/s':>6} {'peak RSS':>10} {'peak anon':>10}")
    for mode, label in [("store", "actcap.open(verify=False)"), ("store-verify", "actcap.open(verify=True)"),
                        ("npy", "np.load"), ("npy-mmap", "np.load(mmap_mode='r')")]:
        r = measure(mode, store if mode.startswith("store") else npy, records_file)
        rate = r["bytes"] / r["total_s"] / 1e9
        print(f"{label:<34} {r['first_s'] * 1e3:>9.1f} ms {r['total_s']:>8.2f} s {rate:>6.2f} "
              f"{r['vm_hwm'] / 2**20:>6.0f} MiB {r['peak_anon'] / 2**20:>6.0f} MiB")


if __name__ == "__main__":
    main()
