#!/usr/bin/env bash
# Capture throughput of the CPU engine (bench/engine_bench.cpp) at 1 thread and all threads, for GPT-2-small
# and Qwen3-0.6B shaped models with synthetic weights, 1 x 128 tokens, every hidden state captured.
#   bench/engine_bench.sh [BUILD_DIR]     (default: build; the engine_bench target must be built)
set -euo pipefail
build=${1:-build}
bench="$build/bench/engine_bench"
[[ -x $bench ]] || { echo "engine_bench not found at $bench (cmake --build $build --target engine_bench)" >&2; exit 1; }
echo "# $(date -u +%FT%TZ) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
for model in gpt2-small qwen3-0.6b; do
  for threads in 1 0; do
    "$bench" "$model" "$threads" 128 3
  done
done
