# Checks a rotation ledger written by `actcap rotation` against a numpy float64 reference computed from the same
# stores, and the transport files against it (safetensors with the shared reader, .pt with torch.load).
# Usage: check_rotation.py LEDGER EXPECTED_LINES
import hashlib, json, os, re, sys
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import readers

KEYS = ["ledger_version", "created", "site", "components", "student", "teacher", "tokens", "cosine_before",
        "cosine_after", "singular_values", "explained_variance_student", "explained_variance_teacher",
        "residual_error", "transport"]
failures = 0


def check(ok, what):
    global failures
    if not ok:
        failures += 1
        print("FAIL:", what)


def close(a, b, what, tol=1e-8):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol)
    check(ok, f"{what}: {a if a.size < 8 else a.shape} vs reference {b if b.size < 8 else b.shape}"
              + ("" if a.shape != b.shape else f" (max diff {np.max(np.abs(a - b)) if a.size else 0})"))


def rows(store, site):
    records = [json.loads(line) for line in open(os.path.join(store, "records.jsonl"))]
    tensors = readers.read_store_tensors(store)
    parts = [tensors[f"{r['record']}/{site}"] for r in records]
    return np.concatenate([p.reshape(p.shape[0], -1) for p in parts]).astype(np.float64), records


def pca(cov, k):
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:k]
    basis = vectors[:, order]
    for j in range(k):  # the entry of largest magnitude positive
        if basis[np.argmax(np.abs(basis[:, j])), j] < 0:
            basis[:, j] = -basis[:, j]
    return basis, values[order].sum() / np.trace(cov)


def row_cosines(a, b):
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, np.sum(a * b, axis=1) / np.where(norms > 0, norms, 1), 0.0)


lines = [json.loads(line) for line in open(sys.argv[1])]
check(len(lines) == int(sys.argv[2]), f"{len(lines)} ledger lines, expected {sys.argv[2]}")
for line in lines:
    check(list(line) == KEYS, f"keys {list(line)}")
    check(line["ledger_version"] == 1, "ledger_version")
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line["created"]) is not None, f"created {line['created']}")
    site, k = line["site"], line["components"]
    s, s_records = rows(line["student"]["store"], site)
    t, t_records = rows(line["teacher"]["store"], site)
    check([r["token_ids"] for r in s_records] == [r["token_ids"] for r in t_records], "stores paired")
    for side in ("student", "teacher"):
        manifest = json.load(open(os.path.join(line[side]["store"], "manifest.json")))
        check(line[side]["manifest_sha256"] == manifest["manifest_sha256"], f"{side} manifest_sha256")
    check(line["student"]["width"] == s.shape[1] and line["teacher"]["width"] == t.shape[1], "widths")
    n = s.shape[0]
    check(line["tokens"] == n, "tokens")

    ms, mt = s.mean(axis=0), t.mean(axis=0)
    sc, tc = s - ms, t - mt
    ps, ev_s = pca(sc.T @ sc / n, k)
    pt, ev_t = pca(tc.T @ tc / n, k)
    u, sigma, vt = np.linalg.svd(ps.T @ (sc.T @ tc / n) @ pt)
    r = u @ vt
    mapped, target = sc @ ps @ r, tc @ pt
    if s.shape[1] == t.shape[1]:
        close(line["cosine_before"], row_cosines(sc, tc).mean(), f"{site} cosine_before")
    else:
        check(line["cosine_before"] is None, "cosine_before null for different widths")
    close(line["cosine_after"], row_cosines(mapped, target).mean(), f"{site} cosine_after")
    close(line["singular_values"], sigma, f"{site} singular_values")
    close(line["explained_variance_student"], ev_s, "explained_variance_student")
    close(line["explained_variance_teacher"], ev_t, "explained_variance_teacher")
    close(line["residual_error"], np.linalg.norm(mapped - target) / np.linalg.norm(target), "residual_error")

    files = line["transport"]
    check(hashlib.sha256(open(files["safetensors"], "rb").read()).hexdigest() == files["sha256"], "transport sha256")
    saved = readers.read_safetensors_typed(files["safetensors"])
    check(all(dtype == "F64" for dtype, _ in saved.values()), "float64 tensors")
    reference = {"rotation": r, "student_basis": ps, "teacher_basis": pt, "student_mean": ms, "teacher_mean": mt,
                 "singular_values": sigma, "linear_map": ps @ r @ pt.T}
    check(sorted(saved) == sorted(reference), f"tensors {sorted(saved)}")
    for name, value in reference.items():
        close(saved[name][1], value, f"{site} {name}", tol=1e-7)
    pt_file = torch.load(files["pt"], weights_only=True)
    check(pt_file["site"] == site and pt_file["components"] == k, ".pt site and components")
    for name, (_, value) in saved.items():
        check(pt_file[name].dtype == torch.float64 and np.array_equal(pt_file[name].numpy(), value), f".pt {name}")
    if k == s.shape[1] == t.shape[1]:
        lm = saved["linear_map"][1]
        close(lm.T @ lm, np.eye(k), "linear_map orthogonal when k = d", tol=1e-9)

if failures:
    sys.exit(f"{failures} failure(s)")
print(f"rotation ledger: {len(lines)} lines match the numpy reference")
