# Compares two capture stores record by record with an independent reader (json + numpy, tests/scripts/readers.py):
# records.jsonl byte for byte, every record's tensors bit for bit (dtype, shape, bytes; token_stream: its rows and
# row_index rows), the metadata lines but for where the rows lie (shard, shard_sha256, token_span, offsets), and
# the manifest's layout, dtype, sites and provenance but for what a merge or a rank may change.
# Usage: compare_stores.py A B   (exit 0 when equal; else prints the first difference)
import json, os, sys
import readers

PLACEMENT = ("shard", "shard_sha256", "token_span", "offsets")
PROVENANCE_MAY_DIFFER = ("command_line", "tool", "part", "merged", "compute", "complete")


def load(store):
    manifest = json.load(open(os.path.join(store, "manifest.json")))
    assert manifest["complete"], f"{store}: incomplete"
    records = open(os.path.join(store, "records.jsonl"), "rb").read().split(b"\n")[:-1]
    metadata = [json.loads(line) for line in open(os.path.join(store, "metadata.jsonl"))]
    return manifest, records, metadata


def record_tensors(store, manifest, meta, cache):
    if meta["shard"] not in cache:
        cache.clear()
        cache[meta["shard"]] = readers.read_safetensors_typed(os.path.join(store, meta["shard"]))
    tensors = cache[meta["shard"]]
    begin, end = meta["token_span"]
    out = {}
    for site in manifest["sites"]:
        if manifest["layout"] == "per_record":
            out[site] = tensors[f"{meta['record']}/{site}"]
        else:
            dtype, a = tensors[site]
            out[site] = (dtype, a[begin:end])
    if manifest["layout"] == "token_stream":
        dtype, a = tensors["row_index"]
        out["row_index"] = (dtype, a[begin:end])
    return out


def main(a, b):
    ma, ra, xa = load(a)
    mb, rb, xb = load(b)
    for key in ("format_version", "layout", "dtype", "sites"):
        if ma[key] != mb[key]:
            return f"manifest {key}: {ma[key]} != {mb[key]}"
    for key in set(ma) | set(mb):
        if key in PROVENANCE_MAY_DIFFER or key.endswith("sha256") or key.endswith("bytes") or key == "shards":
            continue
        if ma.get(key) != mb.get(key):
            return f"manifest {key}: {ma.get(key)} != {mb.get(key)}"
    if len(ra) != len(rb):
        return f"{len(ra)} records != {len(rb)}"
    cache_a, cache_b = {}, {}
    for i, (line_a, line_b) in enumerate(zip(ra, rb)):
        if line_a != line_b:
            return f"records.jsonl line {i + 1} differs"
        pa = {k: v for k, v in xa[i].items() if k not in PLACEMENT}
        pb = {k: v for k, v in xb[i].items() if k not in PLACEMENT}
        if pa != pb:
            return f"metadata.jsonl line {i + 1} differs beyond placement: {pa} != {pb}"
        ta = record_tensors(a, ma, xa[i], cache_a)
        tb = record_tensors(b, mb, xb[i], cache_b)
        for site in ta:
            (da, va), (db, vb) = ta[site], tb[site]
            if da != db or va.shape != vb.shape or va.tobytes() != vb.tobytes():
                return f"record {i} {site}: {da}{list(va.shape)} differs from {db}{list(vb.shape)}"
    return None


if __name__ == "__main__":
    problem = main(sys.argv[1], sys.argv[2])
    if problem:
        print(problem)
        sys.exit(1)
    print(f"equal: {len(load(sys.argv[1])[1])} records")
