"""Per model shape (bench/shapes/*.json): the work of a 1 x TOKENS prefill that captures hidden states (logits for
the last position only, as the engine computes them) and of one decode step, and the bounds the machine's measured
limits put on them. Reads roofline_bench's output on stdin; plain Python 3, no packages.

    roofline_bench | python3 bench/roofline_model.py [TOKENS] [NEW_TOKENS] [SHAPE.json ...]
    python3 bench/roofline_model.py --decode-bytes CONFIG.json TOKENS NEW_TOKENS WEIGHT_BYTES KV_BYTES
        (bytes a decode step reads, on average: the weights with WEIGHT_BYTES per parameter and the key/value
        cache with KV_BYTES per element)
"""
import glob
import json
import os
import re
import sys


def measured(lines):
    """{(kind, threads): GFLOP/s or GB/s}; sgemm keeps its best shape."""
    best = {}
    for line in lines:
        m = re.match(r"(\w+) .*threads=(\d+) .*(?:gflops|gbps)=([\d.]+)", line)
        if m:
            k = (m.group(1), int(m.group(2)))
            best[k] = max(best.get(k, 0.0), float(m.group(3)))
    return best


def shape_work(cfg, tokens, new_tokens):
    h, layers, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // heads
    inter = cfg["intermediate_size"]
    block = 2 * h * heads * hd + 2 * h * kv * hd + 3 * h * inter  # q, o, k, v, gate, up, down
    matmul_params = layers * block
    # Attention scores and values: 4 * heads * head_dim flops per (query, key) pair; a causal prefill averages
    # (T + 1) / 2 keys per query.
    attention = layers * 4 * heads * hd * (tokens + 1) / 2
    prefill_flops = 2 * matmul_params + attention + 2 * vocab * h / tokens
    # The NEW_TOKENS - 1 decode steps after the prefill see TOKENS + 1 ... TOKENS + NEW_TOKENS - 1 keys.
    mean_context = tokens + new_tokens / 2
    return {
        "params": matmul_params + vocab * h * (1 if cfg.get("tie_word_embeddings") else 2),
        "prefill_flops": prefill_flops,
        "decode_params": matmul_params + vocab * h,  # the lm_head is read in full each step
        "decode_kv_elements": layers * 2 * kv * hd * mean_context,
    }


def decode_bytes(work, weight_bytes, kv_bytes):
    """Bytes one decode step reads: every weight once, and the key/value cache of the context so far."""
    return work["decode_params"] * weight_bytes + work["decode_kv_elements"] * kv_bytes


def main(argv):
    if len(argv) == 7 and argv[1] == "--decode-bytes":
        with open(argv[2]) as f:
            print(int(decode_bytes(shape_work(json.load(f), int(argv[3]), int(argv[4])), int(argv[5]), int(argv[6]))))
        return
    tokens = int(argv[1]) if len(argv) > 1 else 128
    new_tokens = int(argv[2]) if len(argv) > 2 else 16
    shapes = argv[3:] or sorted(glob.glob(os.path.join(os.path.dirname(__file__), "shapes", "*.json")))
    limits = measured(sys.stdin.read().splitlines())
    sgemm = limits.get(("sgemm", 2), 0.0)
    bf16 = limits.get(("bf16_dot_peak", 2), 0.0)
    bandwidth = limits.get(("read_bandwidth", 2), 0.0)
    print(f"\n2 threads: sgemm {sgemm:.0f} GFLOP/s (best shape), bf16 dot peak "
          f"{bf16:.0f} GFLOP/s, read bandwidth {bandwidth:.1f} GB/s; prefill 1 x {tokens}, decode to "
          f"{tokens + new_tokens} tokens; fp32 weights and cache / bf16 weights and cache")
    print("| shape | params | GFLOP per prefill token | fp32 prefill bound (sgemm) | bf16 prefill bound (dot peak) "
          "| GB per decode step fp32 / bf16 | decode bound fp32 / bf16 |")
    print("|---|---|---|---|---|---|---|")
    for path in shapes:
        with open(path) as f:
            cfg = json.load(f)
        w = shape_work(cfg, tokens, new_tokens)
        gflop = w["prefill_flops"] * 1e-9
        fp32_gb, bf16_gb = decode_bytes(w, 4, 4) * 1e-9, decode_bytes(w, 2, 2) * 1e-9
        def per_s(rate, cost):
            return f"{rate / cost:.1f} tok/s" if rate else "n/a"
        print(f"| {os.path.basename(path)[:-5]} | {w['params'] / 1e9:.2f} B | {gflop:.2f} | {per_s(sgemm, gflop)} "
              f"| {per_s(bf16, gflop)} | {fp32_gb:.2f} / {bf16_gb:.2f} "
              f"| {per_s(bandwidth, fp32_gb)} / {per_s(bandwidth, bf16_gb)} |")


if __name__ == "__main__":
    main(sys.argv)
