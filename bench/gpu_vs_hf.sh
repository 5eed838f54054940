#!/usr/bin/env bash
# actcap against Hugging Face transformers on the GPU machine, side by side in one run, on random-weight models
# of the shapes of Llama-3.2-1B, Qwen3-0.6B and Llama-3.1-8B (bench/shapes/*.json), bf16: actcap's
# bench/gpu_capture_bench and transformers' bench/hf_capture_bench.py, each in its own process, one model after
# the other, cases 1x128, 8x512, 32x512 (16x512 for the 8B) in three modes (forward only; + every hidden state
# to host memory; + written to disk). Also measures the disk's write bandwidth (4 GiB of random bytes in 64 MiB
# writes, then fsync, where the benches write) and prints the machine, the date, and a table of throughputs
# with ratios actcap/HF. Exits non-zero if the build or any bench fails (the table still shows what ran).
#
#   bench/gpu_vs_hf.sh [--models llama-3.2-1b,qwen3-0.6b,llama-3.1-8b] [--skip-8b] [--iters N] [--warmup N]
#                      [--build-dir DIR] [--build-only] [--no-build] [--out DIR]
#
# Within the GPU machine's 10 minutes per command: build once with --build-only (the build folder stays between
# calls while the machine is warm), then run the benches with --no-build, the 8B model in a call of its own if
# need be (--models llama-3.1-8b). Results go to OUT (default BUILD_DIR/gpu_vs_hf): machine.txt, disk.json,
# actcap.jsonl, hf.jsonl, table.md; later calls with the same OUT add to them and the table covers them all.
# Environment: PYTHON (default python3, the one with torch and transformers), JOBS (build jobs, default nproc),
# CMAKE_ARGS (more configure arguments). The GPU machine lacks the build dependencies: run
# scripts/gpu-machine-deps.sh here first and carry third_party/gpu-machine with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."

models=llama-3.2-1b,qwen3-0.6b,llama-3.1-8b
skip_8b=0
iters=5
warmup=2
build_dir=build-gpu
build=1
build_only=0
out=""
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0" >&2; exit 2; }
while (($#)); do
  case $1 in
    --models) models=$2; shift 2 ;;
    --skip-8b) skip_8b=1; shift ;;
    --iters) iters=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    --no-build) build=0; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "gpu_vs_hf.sh: unknown option $1" >&2; usage ;;
  esac
done
out=${out:-$build_dir/gpu_vs_hf}
work=$out/work
mkdir -p "$out" "$work"

bench_bin=$build_dir/bench/gpu_capture_bench
. scripts/gpu-machine-env.sh  # the build dependencies carried from Debian, CUDA's libraries

if ((build)); then
  echo "== building actcap with CUDA in $build_dir"
  # sm_90: the H100/H200 of the GPU machine
  if ! cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DACTCAP_CUDA=ON ${CMAKE_ARGS:-} >"$out/build.log" 2>&1 ||
    ! cmake --build "$build_dir" -j"$JOBS" --target gpu_capture_bench >>"$out/build.log" 2>&1; then
    tail -40 "$out/build.log" >&2
    echo "gpu_vs_hf.sh: the build failed (log: $out/build.log)" >&2
    exit 1
  fi
fi
((build_only)) && { echo "built $bench_bin"; exit 0; }
[[ -x $bench_bin ]] || { echo "gpu_vs_hf.sh: $bench_bin not found (run without --no-build)" >&2; exit 1; }
command -v nvidia-smi >/dev/null || { echo "gpu_vs_hf.sh: nvidia-smi not found: not a GPU machine" >&2; exit 1; }
"$PYTHON" -c 'import torch, transformers, safetensors' ||
  { echo "gpu_vs_hf.sh: $PYTHON lacks torch, transformers or safetensors (set PYTHON)" >&2; exit 1; }

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  nvidia-smi -L
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
  echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "disk ($work): $(df -hT "$work" | awk 'NR == 2 {print $1, $2, $3 " total,", $5 " free"}')"
  echo "actcap: $(git describe --always --dirty 2>/dev/null || echo unknown)"
  "$PYTHON" -c 'import torch, transformers
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}")'
} | tee -a "$out/machine.txt"

echo "== disk write bandwidth (4 GiB, 64 MiB writes, fsync) in $work"
"$PYTHON" - "$work/disk-bandwidth.tmp" <<'EOF' | tee -a "$out/disk.json"
import json, os, sys, time
path, total = sys.argv[1], 4 << 30
block = memoryview(os.urandom(64 << 20))  # random bytes: no filesystem can compress or skip them
start = time.perf_counter()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
written = 0
while written < total:
    chunk = block[: min(len(block), total - written)]
    while chunk:
        n = os.write(fd, chunk)
        chunk = chunk[n:]
        written += n
os.fsync(fd)
os.close(fd)
seconds = time.perf_counter() - start
os.unlink(path)
print(json.dumps({"disk_write_mb_per_s": written / seconds / 1e6, "bytes": written, "seconds": seconds}))
EOF

failed=()
IFS=, read -r -a model_list <<<"$models"
for model in "${model_list[@]}"; do
  [[ $model == llama-3.1-8b && $skip_8b == 1 ]] && continue
  config=bench/shapes/$model.json
  [[ -f $config ]] || { echo "gpu_vs_hf.sh: no shape $config" >&2; failed+=("$model"); continue; }
  cases=1x128,8x512,32x512
  [[ $model == llama-3.1-8b ]] && cases=16x512
  common=(--config "$config" --name "$model" --cases "$cases" --iters "$iters" --warmup "$warmup" --work "$work")
  echo "== $model: actcap"
  "$bench_bin" "${common[@]}" --device cuda --dtype bf16 | tee -a "$out/actcap.jsonl" || failed+=("actcap:$model")
  echo "== $model: transformers"
  PYTHONUNBUFFERED=1 "$PYTHON" bench/hf_capture_bench.py "${common[@]}" --dtype bf16 --attn sdpa |
    tee -a "$out/hf.jsonl" || failed+=("hf:$model")
done

echo "== results"
"$PYTHON" - "$out" <<'EOF' | tee "$out/table.md"
import json, os, sys
out = sys.argv[1]

def lines(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.startswith("{")]

# the latest line of each case wins when a case was run again
actcap = {(r["model"], r["batch"], r["tokens"], r["mode"]): r for r in lines("actcap.jsonl")}
hf = {(r["model"], r["batch"], r["tokens"], r["mode"]): r for r in lines("hf.jsonl")}
disk = lines("disk.json")
bandwidth = disk[-1]["disk_write_mb_per_s"] if disk else None
print(open(os.path.join(out, "machine.txt")).read().rstrip())
if bandwidth:
    print(f"disk write bandwidth: {bandwidth:,.0f} MB/s")
print()
print("| model | batch x tokens | mode | actcap tok/s | HF tok/s | actcap / HF | actcap MB/s written | "
      "actcap peak RSS MiB | HF peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|")
order = {"forward": 0, "host": 1, "disk": 2}
def number(value):
    return f"{value:,.0f}"
for key in sorted(set(actcap) | set(hf), key=lambda k: (k[0], k[1] * k[2], k[1], order.get(k[3], 9))):
    a, h = actcap.get(key), hf.get(key)
    cells = [key[0], f"{key[1]} x {key[2]}", key[3],
             number(a["tok_per_s"]) if a else "-",
             number(h["tok_per_s"]) if h else "-",
             f"{a['tok_per_s'] / h['tok_per_s']:.2f}x" if a and h else "-",
             number(a["bytes_written"] / a["seconds"] / 1e6) if a and key[3] == "disk" else "",
             number(a["peak_host_rss_mb"]) if a else "-",
             number(h["peak_host_rss_mb"]) if h else "-"]
    print("| " + " | ".join(cells) + " |")

# The issue's targets, where the cases ran.
print()
def ratio(model, batch, tokens, mode):
    a, h = actcap.get((model, batch, tokens, mode)), hf.get((model, batch, tokens, mode))
    return a["tok_per_s"] / h["tok_per_s"] if a and h else None
for model in sorted({k[0] for k in actcap}):
    for batch, tokens, mode, target in [(8, 512, "host", 5), (32, 512, "host", 5), (1, 128, "host", 5),
                                        (32, 512, "forward", 1)]:
        r = ratio(model, batch, tokens, mode)
        if r is not None:
            print(f"target {model} {batch}x{tokens} {mode} >= {target}x HF: {r:.2f}x "
                  f"{'met' if r >= target else 'NOT met'}")
    for key, a in sorted(actcap.items()):
        if key[0] == model and key[3] == "disk" and bandwidth:
            mbs = a["bytes_written"] / a["seconds"] / 1e6
            print(f"disk {model} {key[1]}x{key[2]}: actcap wrote {mbs:,.0f} MB/s = {100 * mbs / bandwidth:.0f}% "
                  f"of the disk's measured {bandwidth:,.0f} MB/s")
EOF

if ((${#failed[@]})); then
  echo "gpu_vs_hf.sh: failed: ${failed[*]}" >&2
  exit 1
fi
