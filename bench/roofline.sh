#!/usr/bin/env bash
# The machine's limits (bench/roofline_bench: sgemm, fp32 FMA and bf16 dot-product peaks, read bandwidth, on 1 and
# 2 threads) and what they bound for each model shape of bench/shapes (bench/roofline_model.py).
#
#   bench/roofline.sh [BUILD_DIR] [TOKENS] [NEW_TOKENS]      (defaults: build 128 16)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
bench=$build/bench/roofline_bench
[[ -x $bench ]] || { echo "roofline.sh: $bench not found (cmake --build $build --target roofline_bench)" >&2; exit 1; }
echo "# $(date -u '+%F %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
out=$("$bench")
echo "$out"
echo "$out" | python3 "$here/roofline_model.py" "${2:-128}" "${3:-16}"
