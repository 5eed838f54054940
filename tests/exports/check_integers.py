# Oracle for the exact integer export: every value of each corpus file is checked against Python's decimal
# module (exact: Decimal(float) is the float's exact binary value, the context's precision is far above the
# digits any float32 times 10^s needs) rounded half to even, then against the .npy actcap wrote
# (object arrays through numpy.load(allow_pickle=True); int64; fixed-width two's complement bytes).
# Usage: check_integers.py DIR   (DIR/cases.json lists the cases)
import json, os, sys
from decimal import Decimal, Context, ROUND_HALF_EVEN
from fractions import Fraction
import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from readers import bf16_to_float32

ctx = Context(prec=4000, rounding=ROUND_HALF_EVEN, Emax=10**6, Emin=-10**6)

def oracle(x, s):
    return int(ctx.to_integral_value(ctx.scaleb(Decimal(x), s)))

def source_floats(path, dtype):
    raw = np.load(path)
    if dtype == "BF16":
        return bf16_to_float32(raw)
    return raw.astype(np.float32)

def load_integers(path, fmt):
    if fmt == "object":
        a = np.load(path, allow_pickle=True)
        assert a.dtype == object, a.dtype
        return a
    a = np.load(path, allow_pickle=False)
    if fmt == "int64":
        assert a.dtype == np.int64, a.dtype
        return a
    assert a.dtype == np.uint8, a.dtype
    w = a.shape[-1]
    flat = a.reshape(-1, w)
    out = np.empty(flat.shape[0], dtype=object)
    for i in range(flat.shape[0]):
        out[i] = int.from_bytes(flat[i].tobytes(), "little", signed=True)
    return out.reshape(a.shape[:-1])

def main(d):
    cases = json.load(open(os.path.join(d, "cases.json")))
    total = 0
    for case in cases:
        xs = source_floats(os.path.join(d, case["source"]), case["dtype"])
        ints = load_integers(os.path.join(d, case["file"]), case["format"])
        assert ints.shape == xs.shape, (case, ints.shape, xs.shape)
        s = case["scale"]
        got = ints.reshape(-1).tolist()
        for i, x in enumerate(xs.reshape(-1).tolist()):
            want = oracle(x, s)
            if type(got[i]) is not int or got[i] != want:
                sys.exit(f"FAIL {case['file']} element {i}: x={x!r} scale={s}: got {got[i]!r}, want {want}")
        # Round trip: integer / 10^s is within half a unit of the scale of the float, exactly.
        half = Fraction(1, 2 * 10**s)
        for i, x in enumerate(xs.reshape(-1)[:: max(1, xs.size // 2000)].tolist()):
            j = i * max(1, xs.size // 2000)
            assert abs(Fraction(got[j], 10**s) - Fraction(x)) <= half, (case["file"], j)
        total += xs.size
    print(f"ok: {total} values match decimal's ROUND_HALF_EVEN in {len(cases)} cases")

main(sys.argv[1])
