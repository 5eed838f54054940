#!/usr/bin/env bash
# actcap concept and actcap control-vector on the tiny reference model, checked against numpy computed from the
# store itself: every metric of every layer, each control-vector method (repeng's definitions), the GGUF through
# @huggingface/gguf (tests/oracle/gguf_oracle.js), the safetensors, the figure's PNG size, the labels, the chat
# template, and bad inputs (one-line errors, nothing left behind).
set -uo pipefail
source "$(dirname "$0")/common.sh"
require_python numpy
A=$1
M=$ACTCAP_TEST_DATA/reference/tiny-gpt2
R=$WORK/run

# The built-in concepts come with the binary, whatever the working folder.
(cd "$WORK" && $A concept --list-concepts) >"$WORK/concepts.txt" || fail "--list-concepts"
[[ $(cut -d' ' -f1 "$WORK/concepts.txt" | tr '\n' ' ') == "confidence creativity empathy enthusiasm formality helpfulness honesty verbosity " ]] ||
  fail "--list-concepts: $(cat "$WORK/concepts.txt")"
grep -q "^honesty .*(8 personas x 16 prompts)$" "$WORK/concepts.txt" || fail "--list-concepts counts"

$A concept --model "$M" --concept honesty --max-samples 10 --out "$R" --quiet >"$WORK/table.txt" 2>"$WORK/err.txt" ||
  fail "concept capture: $(cat "$WORK/err.txt")"
grep -q "concept honesty: 10 pairs, last position" "$WORK/table.txt" || fail "table heading: $(head -1 "$WORK/table.txt")"
grep -qE "^ +1  hidden_states.2 " "$WORK/table.txt" || fail "table rows: $(cat "$WORK/table.txt")"
$A verify "$R/store" >/dev/null || fail "the concept store does not verify"

# Every metric of every layer, recomputed with numpy from the store's own shards: check_metrics RUN PAIRS.
cat >"$WORK/check_metrics.py" <<'PY'
import json, sys
import numpy as np
import readers
run, n = sys.argv[1], int(sys.argv[2])
tensors = readers.read_store_tensors(run + "/store")
report = json.load(open(run + "/concept.json"))
assert report["pairs"] == n and report["positions"] == "last", report
def close(a, b, what):
    assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), (what, a, b)
for layer in report["layers"]:
    site = layer["site"]
    p = np.stack([tensors[f"{2*i}/{site}"][-1] for i in range(n)]).astype(np.float64)
    q = np.stack([tensors[f"{2*i+1}/{site}"][-1] for i in range(n)]).astype(np.float64)
    mu = (p - q).mean(0)
    u = mu / np.linalg.norm(mu)
    a, b = p @ u, q @ u
    mean_norm = (np.linalg.norm(p, axis=1).sum() + np.linalg.norm(q, axis=1).sum()) / (2 * n)
    expected = {
        "diff_norm": np.linalg.norm(mu), "mean_norm": mean_norm, "relative_diff": np.linalg.norm(mu) / mean_norm,
        "cosine": np.mean([p[i] @ q[i] / np.linalg.norm(p[i]) / np.linalg.norm(q[i]) for i in range(n)]),
        "separation": (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2),
        "pair_accuracy": np.mean(a > b)}
    for key, value in expected.items():
        close(layer[key], float(value), f"{run} {site} {key}")
    assert layer["block"] == int(site.split(".")[1]) - 1 and layer["pairs"] == n
ranked = sorted(report["layers"], key=lambda l: -l["separation"])
assert [l["rank"] for l in ranked] == list(range(1, len(ranked) + 1)), ranked
assert report["ranking"] == [l["block"] for l in ranked], report["ranking"]
print(f"{run}: every metric of {len(report['layers'])} layers matches numpy")
PY
$PY "$WORK/check_metrics.py" "$R" 10 || fail "tiny-gpt2: concept metrics differ from numpy"

# Labels, texts, the layers captured, the figure's size.
$PY - "$R" "$ACTCAP_SOURCE_DIR/data/concepts/honesty.json" <<'PY' || fail "concept store or figure"
import json, struct, sys
run, concept_file = sys.argv[1:]
records = [json.loads(l) for l in open(run + "/store/records.jsonl")]
concept = json.load(open(concept_file))
P, Q = len(concept["personas"]), len(concept["prompts"])
assert len(records) == 20, len(records)
for r in records:
    i, side = r["record"] // 2, ("positive", "negative")[r["record"] % 2]
    persona, prompt = i % P, (i % P + i // P) % Q
    want = {"concept": "honesty", "side": side, "pair": i, "persona": persona, "prompt": prompt}
    assert r["meta"] == want, (r["meta"], want)
    assert r["text"] == concept["personas"][persona][side] + "\n\n" + concept["prompts"][prompt], r["text"]
    assert r["positions"] == [r["n_prompt"] - 1], r["positions"]
report = json.load(open(run + "/concept.json"))
assert report["concept"] == "honesty" and report["model_type"] == "gpt2"
assert [l["site"] for l in report["layers"]] == ["hidden_states.1", "hidden_states.2"], report["layers"]
png = open(run + "/concept.png", "rb").read(24)
assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR", png
assert struct.unpack(">II", png[16:24]) == (1200, 1000), struct.unpack(">II", png[16:24])
print("concept: labels, texts and the 1200x1000 PNG as expected")
PY

# Every reference architecture (their vocabularies have 512 ids: a byte-level tokenizer of 256 tokens; gpt2 and
# opt have 64 positions: short pairs of the user's own).
printf '%s\n' "I am sure." "Yes, certainly." "We will win." "It works." "Do it now." "I know." >"$WORK/sure.txt"
printf '%s\n' "I am unsure." "Maybe, perhaps." "We might lose." "It may fail." "Wait a bit?" "I guess." >"$WORK/unsure.txt"
$PY - "$WORK/bytes-tokenizer.json" <<'PY'
import json, sys
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
cs, extra = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + extra); extra += 1
level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
json.dump({"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
           "pre_tokenizer": level, "post_processor": None, "decoder": level,
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                     "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                     "vocab": {chr(c): b for b, c in zip(bs, cs)}, "merges": []}}, open(sys.argv[1], "w"))
PY
for arch in gpt2 llama mistral opt qwen2 qwen3; do
  mkdir -p "$WORK/models/$arch"
  ln -s "$ACTCAP_TEST_DATA/reference/$arch/config.json" "$ACTCAP_TEST_DATA/reference/$arch/model.safetensors" "$WORK/models/$arch/"
  cp "$WORK/bytes-tokenizer.json" "$WORK/models/$arch/tokenizer.json"
  $A concept --model "$WORK/models/$arch" --positive "$WORK/sure.txt" --negative "$WORK/unsure.txt" \
    --out "$WORK/arch-$arch" --quiet >/dev/null &&
    $PY "$WORK/check_metrics.py" "$WORK/arch-$arch" 6 || fail "$arch: concept metrics differ from numpy"
done

# --from: the same analysis without capturing; --json prints concept.json.
$A concept --from "$R" --json >"$WORK/from.json" || fail "concept --from"
$PY -c "
import json, sys
a, b = json.load(open('$WORK/from.json')), json.load(open('$R/concept.json'))
assert a['layers'] == b['layers'] and a['ranking'] == b['ranking'], 'differs'" || fail "--from differs from the capture's analysis"

# --positions mean: every prompt token is kept and averaged.
$A concept --model "$M" --concept empathy --max-samples 3 --positions mean --layers -1 --out "$WORK/mean" --quiet \
  --json >"$WORK/mean.json" || fail "concept --positions mean"
$PY - "$WORK/mean" <<'PY' || fail "--positions mean differs from numpy"
import json, sys
import numpy as np
import readers
run = sys.argv[1]
report = json.load(open(run + "/concept.json"))
tensors = readers.read_store_tensors(run + "/store")
records = [json.loads(l) for l in open(run + "/store/records.jsonl")]
assert [l["site"] for l in report["layers"]] == ["hidden_states.2"], report["layers"]
assert all(r["positions"] == list(range(r["n_prompt"])) for r in records)
p = np.stack([tensors[f"{2*i}/hidden_states.2"].astype(np.float64).mean(0) for i in range(3)])
q = np.stack([tensors[f"{2*i+1}/hidden_states.2"].astype(np.float64).mean(0) for i in range(3)])
diff = np.linalg.norm((p - q).mean(0))
assert abs(report["layers"][0]["diff_norm"] - diff) <= 1e-9 * diff, (report["layers"][0]["diff_norm"], diff)
print("concept --positions mean matches numpy")
PY

# Control vectors: each method against numpy (repeng's definitions), GGUF through @huggingface/gguf.
for method in mean-diff pca-diff pca-center; do
  $A control-vector "$R" --method $method --out "$WORK/$method.gguf" --out "$WORK/$method.safetensors" \
    >"$WORK/cv.txt" 2>"$WORK/cv_err.txt" || fail "control-vector $method: $(cat "$WORK/cv_err.txt")"
  grep -q "direction.0 left out" "$WORK/cv_err.txt" || fail "$method: no warning about block 0"
done
$PY - "$R" "$WORK" <<'PY' || fail "control vectors differ from numpy"
import json, struct, sys
import numpy as np
import readers
run, work = sys.argv[1:]
tensors = readers.read_store_tensors(run + "/store")
def first_component(rows):
    centred = rows - rows.mean(0)
    v = np.linalg.svd(centred, full_matrices=False)[2][0]
    return -v if v[np.argmax(np.abs(v))] < 0 else v   # sklearn's svd_flip on Vt
for method in ["mean-diff", "pca-diff", "pca-center"]:
    st = readers.read_safetensors(f"{work}/{method}.safetensors")
    assert sorted(st) == ["direction.0", "direction.1"], sorted(st)
    for block in (0, 1):
        site = f"hidden_states.{block + 1}"
        p = np.stack([tensors[f"{2*i}/{site}"][-1] for i in range(10)]).astype(np.float64)
        q = np.stack([tensors[f"{2*i+1}/{site}"][-1] for i in range(10)]).astype(np.float64)
        if method == "mean-diff":
            d = (p - q).mean(0)
        elif method == "pca-diff":
            d = first_component(p - q)
        else:
            c = (p + q) / 2
            rows = np.empty((20, p.shape[1]))
            rows[0::2], rows[1::2] = p - c, q - c
            d = first_component(rows)
        a, b = p @ d / np.linalg.norm(d), q @ d / np.linalg.norm(d)
        if np.mean(a < b) > np.mean(a > b):
            d = -d
        got = st[f"direction.{block}"]
        assert got.dtype == np.float32 and got.shape == (32,), (got.dtype, got.shape)
        err = np.abs(got.astype(np.float64) - d).max() / np.abs(d).max()
        assert err < 1e-6, (method, block, err)
        if method != "mean-diff":
            assert abs(np.linalg.norm(got) - 1) < 1e-6
        # Positive projects higher on more pairs than not.
        assert np.mean(p @ got > q @ got) >= np.mean(p @ got < q @ got)
    # The GGUF holds direction.1 only, the same float32 values, in llama.cpp's layout.
    expected = {"version": 3,
                "metadata": {"general.architecture": {"type": 8, "value": "controlvector"},
                             "controlvector.model_hint": {"type": 8, "value": "gpt2"},
                             "controlvector.layer_count": {"type": 4, "value": 1}},
                "tensors": [{"name": "direction.1", "dtype": 0, "shape": [32],
                             "values": [float(x) for x in st["direction.1"]]}]}
    json.dump(expected, open(f"{work}/{method}.expected.json", "w"))
    header = json.loads(open(f"{work}/{method}.safetensors", "rb").read()[8:][:struct.unpack("<Q", open(f"{work}/{method}.safetensors", "rb").read(8))[0]])
    assert header["__metadata__"] == {"model_hint": "gpt2", "method": method, "concept": "honesty", "positions": "last"}, header["__metadata__"]
print("control vectors: mean-diff, pca-diff, pca-center match numpy; safetensors metadata as expected")
PY
if command -v node >/dev/null && [[ -d $ACTCAP_SOURCE_DIR/tests/oracle/node_modules/@huggingface/gguf ]]; then
  for method in mean-diff pca-diff pca-center; do
    (cd "$ACTCAP_SOURCE_DIR/tests/oracle" && node gguf_oracle.js "$WORK/$method.gguf" "$WORK/$method.expected.json") ||
      fail "@huggingface/gguf reads $method.gguf otherwise"
  done
else
  echo "SKIP (part): node or @huggingface/gguf missing, the GGUF oracle did not run"
fi

# The model's chat template wraps each prompt as a user turn: the records' tokens are the rendering's tokens.
C=$WORK/chat-model
mkdir -p "$C"
for f in config.json generation_config.json model.safetensors tokenizer.json; do ln -s "$M/$f" "$C/$f"; done
$PY -c "
import json
c = json.load(open('$M/tokenizer_config.json'))
c['chat_template'] = '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}'
json.dump(c, open('$C/tokenizer_config.json', 'w'))"
$A concept --model "$C" --concept formality --max-samples 2 --layers 1 --out "$WORK/chat" --quiet >/dev/null ||
  fail "concept with a chat template"
$PY -c "
import json
r = json.loads(open('$WORK/chat/store/records.jsonl').readline())
json.dump([{'role': 'user', 'content': r['text']}], open('$WORK/messages.json', 'w'))
print(json.dumps(r['token_ids']))" >"$WORK/chat_ids.txt"
$A chat-template --tokenizer-config "$C" --messages-file "$WORK/messages.json" --add-generation-prompt >"$WORK/rendered.txt"
$PY -c "import json; print(json.dumps(open('$WORK/rendered.txt').read()))" >"$WORK/rendered.jsonl"
[[ $($A tokenize --model "$C" --no-special --jsonl "$WORK/rendered.jsonl" | tr -d ' ') == "$(tr -d ' ' <"$WORK/chat_ids.txt")" ]] ||
  fail "the chat-templated record's tokens differ from the rendered template's"
$A concept --model "$C" --concept formality --max-samples 2 --layers 1 --no-chat --out "$WORK/nochat" --quiet >/dev/null
$PY -c "
import json
r = json.loads(open('$WORK/nochat/store/records.jsonl').readline())
assert r['token_ids'][:3] != [27, 91, 7220], r['token_ids']" || fail "--no-chat still used the template"

# The user's own pairs; their file's name labels them.
printf 'I love this.\n\nWhat a wonderful day.\n"A line with\\na newline."\n' >"$WORK/joy.txt"
printf 'I hate this.\n\nWhat a miserable day.\nA sad line.\n' >"$WORK/sad.txt"
$A concept --model "$M" --positive "$WORK/joy.txt" --negative "$WORK/sad.txt" --out "$WORK/own" --quiet >/dev/null ||
  fail "concept --positive/--negative"
$PY -c "
import json
r = [json.loads(l) for l in open('$WORK/own/store/records.jsonl')]
assert [x['text'] for x in r] == ['I love this.', 'I hate this.', 'What a wonderful day.', 'What a miserable day.', 'A line with\na newline.', 'A sad line.'], r
assert r[5]['meta'] == {'concept': 'joy', 'side': 'negative', 'pair': 2}, r[5]['meta']" || fail "own pairs' records"

# Bad inputs: one line naming the problem, nothing left behind.
expect_error "unknown concept" 'unknown concept "honsty": did you mean "honesty"?' "$WORK/bad" \
  $A concept --model "$M" --concept honsty --out "$WORK/bad"
: >"$WORK/empty.txt"
expect_error "empty positive file" "empty.txt: no prompts" "$WORK/bad" \
  $A concept --model "$M" --positive "$WORK/empty.txt" --negative "$WORK/sad.txt" --out "$WORK/bad"
printf 'one\ntwo\n' >"$WORK/two.txt"
expect_error "mismatched pair counts" "two.txt: 2 prompts, but $WORK/sad.txt has 3" "$WORK/bad" \
  $A concept --model "$M" --positive "$WORK/two.txt" --negative "$WORK/sad.txt" --out "$WORK/bad"
expect_error "positive without negative" "--positive and --negative go together" "$WORK/bad" \
  $A concept --model "$M" --positive "$WORK/two.txt" --out "$WORK/bad"
expect_error "concept and files" "give either --concept NAME" "$WORK/bad" \
  $A concept --model "$M" --concept honesty --positive "$WORK/two.txt" --negative "$WORK/two.txt" --out "$WORK/bad"
expect_error "bad positions" '--positions "first": expected last or mean' "$WORK/bad" \
  $A concept --model "$M" --concept honesty --positions first --out "$WORK/bad"
expect_error "layer out of range" "layer 5 is out of range" "$WORK/bad" \
  $A concept --model "$M" --concept honesty --layers 5 --out "$WORK/bad"
expect_error "existing store" "already holds a concept store" "$WORK/nothing" \
  $A concept --model "$M" --concept honesty --out "$R"
$A concept --model "$M" --concept honesty --max-samples 10 --out "$R" --resume --quiet --json >"$WORK/resumed.json" ||
  fail "--resume of a complete concept store"
cp "$R/prompts.jsonl" "$WORK/prompts.before"
expect_error "resume with other pairs" "prompts.jsonl: --resume needs the interrupted run's pairs" "$WORK/nothing" \
  $A concept --model "$M" --concept honesty --max-samples 11 --out "$R" --resume
cmp -s "$R/prompts.jsonl" "$WORK/prompts.before" || fail "a refused --resume changed prompts.jsonl"
expect_error "--from with --layers" "leave out --layers" "$WORK/nothing" $A concept --from "$R" --layers 1
$A capture --model "$M" --prompt "Hello" --prompt "world" --out "$WORK/plain" --quiet
expect_error "unlabelled store" "record 0 has no concept label" "$WORK/x.gguf" \
  $A control-vector "$WORK/plain" --out "$WORK/x.gguf"
$A concept --model "$M" --concept verbosity --max-samples 1 --out "$WORK/one" --quiet >/dev/null
expect_error "pca of one pair" "hidden_states.1: pca-diff needs at least 2 pairs" "$WORK/x.gguf" \
  $A control-vector "$WORK/one" --method pca-diff --out "$WORK/x.gguf"
expect_error "unknown method" '--method "pca": expected mean-diff, pca-diff or pca-center' "$WORK/x.gguf" \
  $A control-vector "$R" --method pca --out "$WORK/x.gguf"
expect_error "bad extension" "x.npy: the file name must end in .gguf or .safetensors" "$WORK/x.npy" \
  $A control-vector "$R" --out "$WORK/x.npy"
expect_error "only block 0 for llama.cpp" "no direction llama.cpp can load" "$WORK/x.gguf" \
  $A control-vector "$R" --layers 0 --out "$WORK/x.gguf"
$A concept --model "$M" --concept honesty --max-samples 3 --layers 0 --out "$WORK/first" --quiet >/dev/null
expect_error "--layers counts the model's blocks" "block 1 is not in the store" "$WORK/x.gguf" \
  $A control-vector "$WORK/first" --layers -1 --out "$WORK/x.gguf"
expect_error "capture refused" "exceed the 64 positions" "$WORK/long" \
  $A concept --model "$WORK/models/gpt2" --concept honesty --max-samples 2 --out "$WORK/long"
finish "concept and control-vector OK"
