#!/usr/bin/env bash
# The Python module (python/, built into build/python by ACTCAP_PYTHON): the unittest suites of tests/python
# with Debian's Python, numpy and torch, against the CLI's own stores and exports.
set -uo pipefail
ACTCAP=${1:?usage: test_python_module.sh ACTCAP_BINARY}
SRC=${ACTCAP_SOURCE_DIR:?}
source "$SRC/tests/scripts/common.sh"
require_python numpy torch
MODULE=$(dirname "$ACTCAP")/python
if [[ ! -f $MODULE/actcap/__init__.py ]]; then echo "SKIP: the Python module was not built (ACTCAP_PYTHON=OFF)"; exit 77; fi
export PYTHONPATH=$MODULE:$SRC/tests/python ACTCAP_BINARY=$ACTCAP
$PY -m unittest discover -s "$SRC/tests/python" -t "$SRC/tests/python" -v || fail "tests/python"
finish "python module: every test passed"
