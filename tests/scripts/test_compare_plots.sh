#!/usr/bin/env bash
# The figures of `compare --plot` and `stats --plot`: PNGs that open as images of the stated size (the IHDR
# chunk, checked by Python's zlib CRC), SVGs that are well-formed XML of the stated size, nothing left under a
# temporary name, and the refusals (unknown extension, missing folder) before any work.
set -uo pipefail
ACTCAP=${1:?usage: test_compare_plots.sh ACTCAP_BINARY}
DATA=${ACTCAP_TEST_DATA:?}
source "${ACTCAP_SOURCE_DIR:?}/tests/scripts/common.sh"
require_python json zlib xml.etree.ElementTree

M="$DATA/reference/tiny-gpt2"
for prompt in "The cat sat on the mat" "The dog sat on the rug"; do
  "$ACTCAP" capture --quiet --model "$M" --prompt "$prompt" --sites all --out "$WORK/${prompt:4:3}" >/dev/null \
    || fail "capture '$prompt'"
done

# check_image NAME FILE WIDTH HEIGHT: a PNG (signature, IHDR with a valid CRC, IEND) or an SVG (XML, <svg>) of that size.
check_image() {
  local name=$1 file=$2 width=$3 height=$4
  if $PY - "$file" "$width" "$height" <<'PY' >"$WORK/image.txt" 2>&1; then
import struct, sys, zlib
import xml.etree.ElementTree as ET
path, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(path, "rb").read()
if path.endswith(".png"):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, kind
    ihdr = data[16:29]
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(b"IHDR" + ihdr), "IHDR CRC"
    w, h = struct.unpack(">II", ihdr[:8])
    assert (w, h) == (width, height), (w, h)
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", "IEND"
    assert len(data) < 200_000, len(data)
else:
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
    assert root.get("viewBox") == f"0 0 {width} {height}", root.get("viewBox")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 10, "nothing drawn"
print(f"{len(data)} bytes")
PY
    pass "$name: $width x $height, $(cat "$WORK/image.txt")"
  else
    fail "$name: $(cat "$WORK/image.txt")"
  fi
}

"$ACTCAP" compare "$WORK/cat" "$WORK/dog" --allow-different-tokens --plot "$WORK/compare.png" --json "$WORK/c.json" >/dev/null \
  && check_image "compare --plot png" "$WORK/compare.png" 1200 500 || fail "compare --plot png"
"$ACTCAP" compare "$WORK/cat" "$WORK/dog" --allow-different-tokens --sites 'blocks.*' --plot "$WORK/compare.svg" >/dev/null \
  && check_image "compare --plot svg" "$WORK/compare.svg" 1200 500 || fail "compare --plot svg"
"$ACTCAP" stats "$WORK/cat" --plot "$WORK/stats.png" >"$WORK/stats.txt" && grep -q "^hidden_states.1 " "$WORK/stats.txt" \
  && check_image "stats --plot png (and the table)" "$WORK/stats.png" 1200 900 || fail "stats --plot png"
"$ACTCAP" stats "$WORK/cat" --out "$WORK/stats.json" --plot "$WORK/stats.svg" >/dev/null && [[ -s "$WORK/stats.json" ]] \
  && check_image "stats --plot svg (and --out)" "$WORK/stats.svg" 1200 900 || fail "stats --plot svg"
ls "$WORK" | grep -q "tmp-" && fail "a temporary file was left: $(ls "$WORK")" || pass "no temporary files left"

expect_error "stats --plot: unknown extension" "--plot $WORK/s.pdf: expected a .png or .svg file" "$WORK/s.pdf" \
  "$ACTCAP" stats "$WORK/cat" --plot "$WORK/s.pdf"
expect_error "stats --plot: missing folder" "the folder $WORK/missing does not exist" "$WORK/missing" \
  "$ACTCAP" stats "$WORK/cat" --plot "$WORK/missing/s.png"
expect_error "compare --plot: missing folder" "the folder $WORK/missing does not exist" "$WORK/missing" \
  "$ACTCAP" compare "$WORK/cat" "$WORK/dog" --allow-different-tokens --plot "$WORK/missing/c.png"
expect_error "stats --plot: no site of a layer" "--plot $WORK/logits.png: nothing to draw" "$WORK/logits" \
  "$ACTCAP" stats "$WORK/cat" --sites logits --out "$WORK/logits.json" --plot "$WORK/logits.png"
expect_error "compare --plot: no site of a layer" "--plot $WORK/logits.png: nothing to draw" "$WORK/logits" \
  "$ACTCAP" compare "$WORK/cat" "$WORK/dog" --allow-different-tokens --sites logits hook_embed --json "$WORK/logits.json" \
  --plot "$WORK/logits.png"

finish "compare and stats figures: all passed"
