#!/usr/bin/env bash
# Keeps proving that the reference generator (tests/reference_gen/torch_reference.py, an independent PyTorch
# re-implementation of HF transformers 5.17) reproduces real HF output on every shared reference, and that the
# data it generated in tests/data/extra is exactly what it computes. Needs /usr/bin/python3 with torch + numpy.
set -uo pipefail
SRC=${ACTCAP_SOURCE_DIR:?}
PY=/usr/bin/python3
if ! $PY -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIP: $PY has no torch/numpy"
  exit 77
fi
exec $PY "$SRC/tests/reference_gen/validate_oracle.py" "$SRC"
