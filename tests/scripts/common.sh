# Sourced by the script tests that check actcap's files with Debian's Python: the interpreter and the shared
# readers (readers.py), a scratch folder, failure counting, and the check of a one-line error.
PY=/usr/bin/python3
export PYTHONPATH=${ACTCAP_SOURCE_DIR:?}/tests/scripts PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree

# Skips the test (exit 77) unless $PY imports every module named.
require_python() {
  local modules
  modules=$(IFS=,; echo "$*")
  if ! $PY -c "import $modules" 2>/dev/null; then
    echo "SKIP: $PY lacks one of: $*"
    exit 77
  fi
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILURES=0
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok: $*"; }

# expect_error NAME FRAGMENT LEFTOVER COMMAND...: COMMAND must exit non-zero, print one line containing FRAGMENT
# (stdout and stderr together) and leave nothing named LEFTOVER* behind (a temporary file included).
expect_error() {
  local name=$1 fragment=$2 leftover=$3
  shift 3
  if "$@" >"$WORK/error.txt" 2>&1; then
    fail "$name: exit status 0"
  elif [[ $(grep -c . "$WORK/error.txt") != 1 ]] || ! grep -qF -- "$fragment" "$WORK/error.txt"; then
    fail "$name: output was '$(cat "$WORK/error.txt")', expected one line with '$fragment'"
  elif ls "$leftover"* >/dev/null 2>&1; then
    fail "$name: left $leftover behind"
  else
    pass "$name: $(cat "$WORK/error.txt")"
  fi
}

# Ends the test: prints MESSAGE when nothing failed, else the count, and exits accordingly.
finish() {
  if ((FAILURES)); then
    echo "$FAILURES failure(s)"
    exit 1
  fi
  echo "$1"
}
