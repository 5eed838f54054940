# Recomputes `actcap compare`'s JSON with numpy from the two stores' files (readers.py: json + numpy, no actcap
# code): every metric of every compared site, which sites were compared, and why the others were not.
# usage: check_compare.py A B RESULT.json [PAIRS]   PAIRS: "0:1,2:2" (default: every record with itself)
import json, os, sys
import numpy as np
import readers

a_dir, b_dir, result_path = sys.argv[1:4]
result = json.load(open(result_path))


def records(store):
    return {r["record"]: r for r in map(json.loads, open(os.path.join(store, "records.jsonl")))}


def sites(store):
    return json.load(open(os.path.join(store, "manifest.json")))["sites"]


rec_a, rec_b = records(a_dir), records(b_dir)
if len(sys.argv) > 4:
    pairs = [tuple(int(x) for x in p.split(":")) for p in sys.argv[4].split(",")]
else:
    pairs = [(r, r) for r in sorted(rec_a)]
tensors_a, tensors_b = readers.read_store_tensors(a_dir), readers.read_store_tensors(b_dir)

failures = []


def close(name, got, want):
    if got is None or want is None or not np.isfinite(want):
        ok = got is None and (want is None or not np.isfinite(want))
    else:
        ok = abs(got - want) <= 1e-12 * max(1.0, abs(want))
    if not ok:
        failures.append(f"{name}: actcap {got}, numpy {want}")


def cosine(x, y):
    nx, ny = np.dot(x, x), np.dot(y, y)
    if nx == 0 or ny == 0:
        return 1.0 if nx == ny else 0.0
    return np.dot(x, y) / np.sqrt(nx * ny)


compared = {s["site"]: s for s in result["sites"]}
skipped = {s["site"]: s["reason"] for s in result["not_compared"]}
selected = set(compared) | set(skipped)
for site in selected:
    if site not in sites(a_dir):
        if skipped.get(site) != "only in B":
            failures.append(f"{site}: only in B, but reported as {compared.get(site) or skipped.get(site)}")
        continue
    if site not in sites(b_dir):
        if skipped.get(site) != "only in A":
            failures.append(f"{site}: only in A, but reported as {compared.get(site) or skipped.get(site)}")
        continue
    rows_a, rows_b = [], []
    for i, j in pairs:
        ta, tb = tensors_a[f"{i}/{site}"].astype(np.float64), tensors_b[f"{j}/{site}"].astype(np.float64)
        if site.endswith("hook_pattern"):  # [heads, T, T_keys]: positions along dim 1
            ta, tb = np.moveaxis(ta, 1, 0), np.moveaxis(tb, 1, 0)
        if ta.shape[1:] != tb.shape[1:]:
            rows_a = None
            break
        pa, pb = rec_a[i]["positions"], rec_b[j]["positions"]
        if rec_a[i]["token_ids"] == rec_b[j]["token_ids"]:
            matched = [(k, pb.index(p)) for k, p in enumerate(pa) if p in pb]
        else:
            matched = [(k, k) for k in range(min(len(pa), len(pb)))]
        rows_a += [ta[k].ravel() for k, _ in matched]
        rows_b += [tb[k].ravel() for _, k in matched]
    if rows_a is None:
        if not skipped.get(site, "").startswith("rows are"):
            failures.append(f"{site}: rows of different shapes, but reported as {compared.get(site) or skipped.get(site)}")
        continue
    if site not in compared:
        failures.append(f"{site}: present in both with equal rows, but not compared: {skipped.get(site)}")
        continue
    got = compared[site]
    cosines = [cosine(u, v) for u, v in zip(rows_a, rows_b)]
    x, y = np.concatenate(rows_a), np.concatenate(rows_b)  # rows may differ in width between records (patterns)
    if got["rows"] != len(rows_a) or got["values"] != x.size:
        failures.append(f"{site}: {got['rows']} rows / {got['values']} values, numpy {len(rows_a)} / {x.size}")
    close(f"{site} cosine_mean", got["cosine_mean"], np.mean(cosines))
    close(f"{site} cosine_min", got["cosine_min"], np.min(cosines))
    close(f"{site} cosine_flat", got["cosine_flat"], cosine(x, y))
    norm_a = np.linalg.norm(x)
    close(f"{site} relative_l2", got["relative_l2"], np.linalg.norm(x - y) / norm_a if norm_a else 0.0)
    if got["max_abs_diff"] != np.max(np.abs(x - y)):
        failures.append(f"{site} max_abs_diff: actcap {got['max_abs_diff']}, numpy {np.max(np.abs(x - y))}")

if failures:
    print("\n".join(failures[:20]))
    sys.exit(1)
print(f"numpy agrees: {len(compared)} sites compared ({sum(s['rows'] for s in compared.values())} rows), "
      f"{len(skipped)} not compared")
