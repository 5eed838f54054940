#!/usr/bin/env bash
# `actcap devices` tells "no GPU" apart from "a broken CUDA install": the plugin's load error and the driver's
# message reach the user, and --require-cuda (what the device scripts check first) fails with them.
set -uo pipefail
ACTCAP=${1:?usage: test_devices.sh ACTCAP}
source "$(dirname "$0")/common.sh"

"$ACTCAP" devices >"$WORK/devices.txt" 2>&1 && grep -q "^cpu .*hardware threads" "$WORK/devices.txt" &&
  pass "devices lists the CPU" || fail "devices: $(cat "$WORK/devices.txt")"

if grep -q "^cuda  *unavailable: this actcap was built without the CUDA backend" "$WORK/devices.txt"; then
  finish "devices: a build without CUDA says so (the plugin checks below need one)"
  exit 0
fi
printf 'not a shared object' >"$WORK/junk.so"
ACTCAP_CUDA_PLUGIN=$WORK/junk.so "$ACTCAP" devices >"$WORK/junk.txt" 2>&1
grep -qF "cuda      unavailable: cannot load the CUDA backend: $WORK/junk.so" "$WORK/junk.txt" &&
  pass "a plugin that cannot load is named with the loader's message" || fail "junk plugin: $(cat "$WORK/junk.txt")"
expect_error "--require-cuda with a broken plugin" "--require-cuda: cannot load the CUDA backend: $WORK/missing.so: no such file" \
  "$WORK/none" env ACTCAP_CUDA_PLUGIN=$WORK/missing.so "$ACTCAP" devices --require-cuda
expect_error "capture on a broken plugin" "--device cuda:0: cannot load the CUDA backend: $WORK/junk.so" "$WORK/out" \
  env ACTCAP_CUDA_PLUGIN=$WORK/junk.so "$ACTCAP" capture --model "$ACTCAP_TEST_DATA/reference/gpt2" --input-ids 1,2 \
  --device cuda --quiet --out "$WORK/out"
if ! grep -q "^cuda:0 " "$WORK/devices.txt"; then
  expect_error "--require-cuda without a GPU" "--require-cuda: " "$WORK/none" "$ACTCAP" devices --require-cuda
fi
finish "devices: CUDA's state is reported, never hidden"
