#!/usr/bin/env bash
# Usage: scripts/fuzz.sh [SECONDS [TARGET...]]
# Builds the libFuzzer targets of fuzz/ with clang-14 (-fsanitize=fuzzer,address,undefined) in build-fuzz/ and
# runs them all at once (or only the TARGETs named), each for SECONDS (default 600), at the lowest CPU priority. Each target starts from its
# seed corpus fuzz/corpus/<target>/ (copied, so that the repository's seeds stay small); new inputs go to
# build-fuzz/corpus/<target>/, crashes, leaks, timeouts and out-of-memory inputs to build-fuzz/findings/<target>/.
# Prints, per target: seconds run, executions, findings. Exits non-zero when any target found something.
# Needs: clang-14 libfuzzer-14-dev libclang-rt-14-dev (scripts/install-deps.sh --fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
build=build-fuzz

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DACTCAP_FUZZ=ON -DACTCAP_NATIVE=OFF >/dev/null
targets=()
if (($#)); then
  for name in "$@"; do targets+=("fuzz_$name"); done
else
  for source in fuzz/fuzz_*.cpp; do targets+=("$(basename "$source" .cpp)"); done
fi
nice -n 19 cmake --build "$build" -j2 --target "${targets[@]}"

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for target in "${targets[@]}"; do
  name=${target#fuzz_}
  rm -rf "$build/findings/$name"
  mkdir -p "$build/corpus/$name" "$build/findings/$name"
  cp -n fuzz/corpus/"$name"/* "$build/corpus/$name/" 2>/dev/null || true
  # -timeout: one input may take at most 10 s; -rss_limit_mb: 2 GB (the limits the engine itself enforces are
  # far below).
  nice -n 19 "$build/fuzz/$target" "$build/corpus/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/findings/$name/" \
    >"$build/$name.log" 2>&1 &
done
wait || true

status=0
printf '%-14s %8s %12s %9s\n' target seconds executions findings
for target in "${targets[@]}"; do
  name=${target#fuzz_}
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$name.log" | grep -o '[0-9]*$' || echo "?")
  time=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$build/$name.log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "?")
  findings=$(find "$build/findings/$name" -type f | wc -l)
  printf '%-14s %8s %12s %9s\n' "$name" "${time:-?}" "${runs:-?}" "$findings"
  ((findings == 0)) || status=1
done
exit $status
