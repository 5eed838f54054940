#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test (unit tests, HF reference comparisons, the
# tokenizer oracle, and end-to-end CLI tests with numpy/torch readers). Then builds the same tests with
# AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/ and runs them again: any memory error, leak or
# undefined behaviour fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)")

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DACTCAP_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)" --target actcap actcap_tests
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
cd build-asan
ctest --output-on-failure -j"$(nproc)"
