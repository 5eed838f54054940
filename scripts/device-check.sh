#!/usr/bin/env bash
# The one prepared run on the GPU machine (NVIDIA H200, Ubuntu 24.04, CUDA, torch + transformers): builds
# actcap with CUDA there, proves the GPU is really used (`actcap devices --require-cuda`), runs every CUDA unit
# and reference test with ACTCAP_REQUIRE_CUDA=1 (a test that cannot reach the GPU fails instead of skipping),
# again the backend tests on the cudaMalloc fallback (ACTCAP_CUDA_MEMORY_POOLS=0), then bench/gpu_vs_hf.sh side
# by side with transformers. Each phase has its own time limit so that a hang or a slow phase still leaves
# the others' results; everything goes to $OUT (at most 8 files, as the device tool returns them).
#
#   here:  scripts/gpu-machine-deps.sh            (once: every build dependency but CUDA, as .deb files)
#   there: scripts/device-check.sh [--models llama-3.2-1b,qwen3-0.6b] [--skip-bench] [--skip-tests]
#          (device tool: carry third_party/gpu-machine; 5 minutes on the H200 on 2026-11-30: build 130-170 s,
#          tests 32 s, the two models' benches 120 s)
set -uo pipefail
cd "$(dirname "$0")/.."

models=llama-3.2-1b,qwen3-0.6b
bench=1
tests=1
while (($#)); do
  case $1 in
    --models) models=$2; shift 2 ;;
    --skip-bench) bench=0; shift ;;
    --skip-tests) tests=0; shift ;;
    *) echo "device-check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-build-device/out}
mkdir -p "$OUT"
summary=$OUT/summary.txt
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
build=build-device
export ACTCAP_REQUIRE_CUDA=1 PYTHONUNBUFFERED=1

. scripts/gpu-machine-env.sh  # the build dependencies carried from Debian, CUDA's libraries

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), actcap $(git describe --always --dirty 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  nvcc --version 2>&1 | tail -1
  python3 -c 'import torch, transformers
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}")' 2>&1
  echo "cpu: $(nproc) cores; $(. /etc/os-release && echo "$PRETTY_NAME"); $(c++ --version | head -1)"
} | tee "$OUT/machine.txt"

phase() {  # phase NAME SECONDS COMMAND...: runs it with a time limit, notes how it ended
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  timeout --kill-after=10 "$limit" "$@"
  local status=$?
  note "$name: $([[ $status == 0 ]] && echo ok || echo "FAILED (exit $status$([[ $status == 124 ]] && echo ", over ${limit}s"))") in $((SECONDS - start)) s"
  return $status
}

configure_and_build() {
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DACTCAP_CUDA=ON -DACTCAP_NATIVE=ON \
    ${CMAKE_ARGS:-} &&
    cmake --build "$build" -j"$(nproc)" --target actcap actcap_tests gpu_capture_bench -- -k  # every error in one log
}
export -f configure_and_build; export build CMAKE_ARGS  # timeout runs programs, not functions
if ! phase build 300 bash -c configure_and_build >"$OUT/build.log" 2>&1; then
  tail -30 "$OUT/build.log"
  note "the build failed: see build.log"
  exit 1
fi

if ! phase devices 30 "$build/actcap" devices --require-cuda >>"$summary" 2>&1; then
  note "no usable GPU: the tests and benches would only measure that; stopping"
  exit 1
fi

status=0
if ((tests)); then
  cd "$build" || exit 1
  phase cuda-tests 150 ctest -R 'Cuda|cuda' -j4 -V >"$OUT/cuda_tests.log" 2>&1 || status=1
  ACTCAP_CUDA_MEMORY_POOLS=0 phase cuda-tests-without-memory-pools 60 \
    ctest -R 'CudaBackend' -j4 --output-on-failure >>"$OUT/cuda_tests.log" 2>&1 || status=1
  cd - >/dev/null || exit 1
  grep -E "tests passed|tests failed|\(Failed\)|\(Timeout\)|Not Run|\[cuda (fp32|bf16)\]" "$OUT/cuda_tests.log" | tee -a "$summary"
fi

if ((bench)); then
  phase bench 240 bench/gpu_vs_hf.sh --no-build --build-dir "$build" --models "$models" --iters 3 --warmup 1 \
    --out "$build/gpu_vs_hf" >"$OUT/bench.log" 2>&1 || status=1
  for f in table.md actcap.jsonl hf.jsonl; do [[ -f $build/gpu_vs_hf/$f ]] && cp "$build/gpu_vs_hf/$f" "$OUT/"; done
  [[ -f $OUT/table.md ]] && tee -a "$summary" <"$OUT/table.md" >/dev/null
fi
note "done in $SECONDS s; results in $OUT"
exit $status
