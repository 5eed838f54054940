#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test (unit tests, HF reference comparisons, the
# tokenizer oracle, and end-to-end CLI tests with numpy/torch readers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)"
