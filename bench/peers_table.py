"""The table of bench/cpu_vs_peers.sh from its results folder: each engine's best prefill and decode tokens/s
(over the timed runs), its ratio to llama.cpp of the same compute dtype, the prefill's GFLOP/s as a share of the
peak measured in the same run (the best sgemm shape for fp32, the bf16 dot-product loop for bf16), decode against
the read-bandwidth bound of the weight bytes it streams (the bandwidth measured next to that engine's runs, the
higher of before and after, else the run's first measurement), peak RSS, and whether its greedy ids equal actcap
fp32's.
Plain Python 3.

    python3 bench/peers_table.py RESULTS_DIR CONFIG.json TOKENS NEW_TOKENS
"""
import glob
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roofline_model import decode_bytes, measured, shape_work  # noqa: E402

# (engine, its compute dtype, bytes per weight it streams per decode step, bytes per key/value cache element).
# actcap keeps the checkpoint's bf16 weights in both modes and caches keys and values in its compute dtype;
# PyTorch and llama.cpp F32 hold fp32 copies of the weights; llama.cpp caches in f16.
ENGINES = [("actcap fp32", "fp32", 2, 4), ("actcap bf16", "bf16", 2, 2), ("PyTorch eager fp32", "fp32", 4, 4),
           ("llama.cpp F32", "fp32", 4, 2), ("llama.cpp BF16", "bf16", 2, 2)]


def best(folder, label):
    lines = []
    if os.path.exists(os.path.join(folder, label + ".out")):
        lines = [json.loads(l) for l in open(os.path.join(folder, label + ".out")) if l.startswith("{")]
    if not lines:
        err = os.path.join(folder, label + ".err")
        why = open(err).read().strip().splitlines()[-1:] if os.path.exists(err) else ["not run"]
        return None, (why or ["no output"])[0]
    result = {"prefill": max(l["prefill_tok_s"] for l in lines), "decode": max(l["decode_tok_s"] for l in lines),
              "ids": lines[-1]["ids"], "rss": max(l.get("peak_rss_mib", 0) for l in lines)}
    err = os.path.join(folder, label + ".err")
    m = re.search(r"peak_rss_kib=(\d+)", open(err).read()) if os.path.exists(err) else None
    if m:
        result["rss"] = int(m.group(1)) / 1024
    return result, None


def nearby_bandwidth(folder, label, threads):
    """The read bandwidth measured just before and after this engine ran (the higher), or 0."""
    path = os.path.join(folder, label + ".bandwidth")
    if not os.path.exists(path):
        return 0
    return measured(open(path).read().splitlines()).get(("read_bandwidth", threads), 0)


def main(argv):
    folder, config, tokens, new_tokens = argv[1], argv[2], int(argv[3]), int(argv[4])
    limits = measured(open(os.path.join(folder, "roofline")).read().splitlines())
    print(open(os.path.join(folder, "roofline")).read().rstrip())
    with open(config) as f:
        work = shape_work(json.load(f), tokens, new_tokens)
    threads = 2 if ("sgemm", 2) in limits else 1
    sgemm, bandwidth = limits.get(("sgemm", threads), 0), limits.get(("read_bandwidth", threads), 0)
    peaks = {"fp32": sgemm, "bf16": limits.get(("bf16_dot_peak", threads), 0)}
    results = {label: best(folder, label) for label, *_ in ENGINES}
    reference_ids = (results["actcap fp32"][0] or {}).get("ids")
    print(f"\nprefill: {work['prefill_flops'] * 1e-9:.2f} GFLOP/token; sgemm {sgemm:.0f} GFLOP/s, bf16 dot peak "
          f"{peaks['bf16']:.0f} GFLOP/s, read bandwidth {bandwidth:.1f} GB/s ({threads} threads, this run)")
    print("| engine | prefill tok/s | vs llama.cpp | % of peak | decode tok/s | vs llama.cpp "
          "| % of bandwidth bound | peak RSS | ids = actcap fp32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, dtype, weight_bytes, kv_bytes in ENGINES:
        r, why = results[label]
        if r is None:
            print(f"| {label} | not run: {why} |||||||| ")
            continue
        peer = results["llama.cpp F32" if dtype == "fp32" else "llama.cpp BF16"][0]
        bandwidth_here = nearby_bandwidth(folder, label, threads) or bandwidth
        bound = bandwidth_here / (decode_bytes(work, weight_bytes, kv_bytes) * 1e-9) if bandwidth_here else 0
        def ratio(key):
            return f"{r[key] / peer[key]:.2f}x" if peer else "n/a"
        gflops = r["prefill"] * work["prefill_flops"] * 1e-9
        print(f"| {label} | {r['prefill']:.1f} | {ratio('prefill')} | {100 * gflops / peaks[dtype]:.0f}% "
              f"| {r['decode']:.1f} | {ratio('decode')} | {100 * r['decode'] / bound:.0f}% of {bound:.1f} "
              f"({bandwidth_here:.1f} GB/s) "
              f"| {r['rss']:.0f} MiB | {'yes' if r['ids'] == reference_ids else 'no'} |")


if __name__ == "__main__":
    main(sys.argv)
