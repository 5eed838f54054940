#!/usr/bin/env python3
"""Hugging Face transformers' side of bench/gpu_vs_hf.sh (bench/gpu_capture_bench.cpp is actcap's side, with the
same cases, modes and output). Needs torch and transformers (the GPU machine's python3: torch 2.11,
transformers 5.17).

Builds a random-weight model from a Hugging Face config.json (bench/shapes/*.json, read with
AutoConfig.from_pretrained exactly as a checkpoint's config is) with AutoModelForCausalLM.from_config directly on
the GPU, in bf16 by default, with SDPA attention (transformers' default; eager would be slower and materialise
every T x T pattern). Each case is `batch` sequences of `tokens` tokens (the same token ids as actcap's side)
in one forward call, in one of three modes:
  forward  model(input_ids, use_cache=False, logits_to_keep=1): the last token's logits only, as actcap
           computes them, and no KV cache returned: HF's fastest forward, so the comparison is conservative
  host     + output_hidden_states=True and .cpu() of every hidden state (what HF users do to get them)
  disk     + saved with safetensors.torch.save_file, one file per pass, then fsynced (actcap's store fsyncs
           its shards too, so both sides time the data reaching the disk, not the page cache)
A case runs WARMUP untimed passes, then ITERS timed passes back to back; the clock stops after
torch.cuda.synchronize(). One JSON line per case on stdout:
  {"side": "hf", "model", "batch", "tokens", "mode", "tok_per_s", "peak_host_rss_mb", "base_rss_mb", "iters",
   "seconds", "bytes_written", "device", "dtype", "attn", "torch", "transformers", "load_s"}

  python3 bench/hf_capture_bench.py --config bench/shapes/llama-3.2-1b.json [--name NAME]
      [--cases 1x128,8x512,32x512] [--modes forward,host,disk] [--dtype bf16] [--attn sdpa]
      [--iters 5] [--warmup 2] [--work DIR]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def status_mib(key):
    """A value of /proc/self/status in MiB ("VmHWM", "VmRSS")."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def reset_peak_rss():
    """Starts a new peak-RSS window (Linux >= 4.0: writing 5 to clear_refs resets VmHWM)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def parse_cases(text):
    cases = []
    for item in filter(None, text.split(",")):
        batch, _, tokens = item.partition("x")
        if not batch.isdigit() or not tokens.isdigit() or int(batch) <= 0 or int(tokens) <= 0:
            raise SystemExit(f"hf_capture_bench: --cases: expected BATCHxTOKENS, got {item!r}")
        cases.append((int(batch), int(tokens)))
    return cases


def build_model(config_path, dtype, attn):
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(config_path, os.path.join(folder, "config.json"))
        config = AutoConfig.from_pretrained(folder)
    torch.manual_seed(0)
    with torch.device("cuda"):  # initialise the random weights on the GPU, not in host memory
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn)
    return model.to("cuda").eval()  # a no-op unless from_config built it elsewhere


def token_ids(batch, tokens, vocab):
    """The token ids actcap's side uses: (t * 7919 + b * 104729 + 13) mod vocab."""
    t = torch.arange(tokens, dtype=torch.int64)
    b = torch.arange(batch, dtype=torch.int64)[:, None]
    return ((t * 7919 + b * 104729 + 13) % vocab).cuda()


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_files(prefix):
    folder, stem = os.path.split(prefix)
    for f in os.listdir(folder):
        if f.startswith(stem + "-"):
            os.remove(os.path.join(folder, f))


def run_passes(model, ids, mode, count, store_prefix):
    """`count` forward passes in `mode`; returns the bytes written (disk mode)."""
    written = 0
    for i in range(count):
        out = model(input_ids=ids, use_cache=False, logits_to_keep=1, output_hidden_states=mode != "forward")
        if mode == "host":
            hidden = [h.cpu() for h in out.hidden_states]
            del hidden
        elif mode == "disk":
            path = f"{store_prefix}-{i}.safetensors"
            save_file({f"hidden_states.{k}": h.contiguous().cpu() for k, h in enumerate(out.hidden_states)}, path)
            fsync_file(path)
            written += os.path.getsize(path)
        del out
    torch.cuda.synchronize()
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--name")
    parser.add_argument("--cases", default="1x128,8x512,32x512")
    parser.add_argument("--modes", default="forward,host,disk")
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--work", default="hf_capture_bench.work")
    args = parser.parse_args()
    name = args.name or os.path.splitext(os.path.basename(args.config))[0]
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("forward", "host", "disk"):
            raise SystemExit(f"hf_capture_bench: --modes: expected forward, host or disk, got {m!r}")
    if args.iters <= 0 or args.warmup < 0:
        raise SystemExit("hf_capture_bench: --iters must be positive and --warmup not negative")
    if not torch.cuda.is_available():
        raise SystemExit("hf_capture_bench: torch sees no CUDA device")
    os.makedirs(args.work, exist_ok=True)

    start = time.perf_counter()
    model = build_model(args.config, DTYPES[args.dtype], args.attn)
    torch.cuda.synchronize()
    load_seconds = time.perf_counter() - start
    vocab = model.config.vocab_size

    with torch.inference_mode():
        for batch, tokens in parse_cases(args.cases):
            ids = token_ids(batch, tokens, vocab)
            for mode in modes:
                prefix = os.path.join(args.work, f"hf-{name}-{batch}x{tokens}")
                base_rss = status_mib("VmRSS")
                reset_peak_rss()
                run_passes(model, ids, mode, args.warmup, prefix + "-warmup")
                remove_files(prefix)
                start = time.perf_counter()
                written = run_passes(model, ids, mode, args.iters, prefix + "-timed")
                seconds = time.perf_counter() - start
                peak = status_mib("VmHWM")
                remove_files(prefix)
                line = {
                    "side": "hf", "model": name, "batch": batch, "tokens": tokens, "mode": mode,
                    "tok_per_s": args.iters * batch * tokens / seconds, "peak_host_rss_mb": peak,
                    "base_rss_mb": base_rss, "iters": args.iters, "seconds": seconds, "bytes_written": written,
                    "device": torch.cuda.get_device_name(), "dtype": args.dtype, "attn": args.attn,
                    "torch": torch.__version__, "transformers": transformers.__version__, "load_s": load_seconds,
                }
                print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
