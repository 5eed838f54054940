# The numpy reference for `actcap metrics`: reads two capture stores (sites hidden_states.* and logits, same
# prompts) and one metrics.jsonl, recomputes every value in float64 with numpy and compares. Used by
# test_metrics_cli.sh. Prints one line per mismatch and exits 1 if there is any.
import json, sys
import numpy as np
import readers


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def records(store):
    with open(store + "/records.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(store_a, store_b, metrics_path):
    ta, tb = readers.read_store_tensors(store_a), readers.read_store_tensors(store_b)
    lines = [json.loads(line) for line in open(metrics_path) if line.strip()]
    bad, checked = [], 0

    def close(name, got, want):
        nonlocal checked
        if want is None:  # the mean of no values (a one-token prompt has no next token)
            if got is not None:
                bad.append(f"{name}: actcap {got}, expected null")
            return
        got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        checked += want.size
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-9, atol=1e-12):
            bad.append(f"{name}: actcap {got.ravel()[:4]} numpy {want.ravel()[:4]}")

    recs = records(store_a)
    for line in lines:
        r = line["record"]
        ids = recs[r]["token_ids"]
        if line["id"] != recs[r]["id"] or line["tokens"] != len(ids):
            bad.append(f"record {r}: id/tokens {line['id']}/{line['tokens']} vs {recs[r]['id']}/{len(ids)}")
        if line["kind"] == "logits":
            lp, lq = log_softmax(ta[f"{r}/logits"]), log_softmax(tb[f"{r}/logits"])
            kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
            nxt = np.array(ids[1:], dtype=np.int64)
            sa, sb = -lp[np.arange(len(nxt)), nxt], -lq[np.arange(len(nxt)), nxt]
            close(f"{r} kl", line["kl"], kl)
            close(f"{r} kl_mean", line["kl_mean"], kl.mean())
            close(f"{r} surprisal_a", line["surprisal_a"], sa)
            close(f"{r} surprisal_b", line["surprisal_b"], sb)
            close(f"{r} surprisal_a_mean", line["surprisal_a_mean"], sa.mean() if sa.size else None)
            close(f"{r} surprisal_b_mean", line["surprisal_b_mean"], sb.mean() if sb.size else None)
        else:
            a = ta[f"{r}/{line['site']}"].astype(np.float64)
            b = tb[f"{r}/{line['site']}"].astype(np.float64)
            cos = (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
            close(f"{r} {line['site']} cosine_mean", line["cosine_mean"], cos.mean())
            close(f"{r} {line['site']} rms_a", line["rms_a"], np.sqrt((a * a).mean()))
            close(f"{r} {line['site']} rms_b", line["rms_b"], np.sqrt((b * b).mean()))
    for b in bad:
        print("MISMATCH", b)
    print(f"{checked} values over {len(lines)} lines compared with numpy")
    sys.exit(1 if bad or not lines else 0)


if __name__ == "__main__":
    main(*sys.argv[1:4])
