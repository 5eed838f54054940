// Compares actcap's tokenizer with the real HF tokenizers (Rust, through @anush008/tokenizers) on real
// tokenizer.json files: ids with and without special tokens, decoded text with and without skip_special_tokens.
// Usage: node tokenizer_oracle.js ACTCAP CORPUS_JSONL WORK_DIR MODEL_DIR...   (exit 1 on any difference)
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const { Tokenizer } = require("@anush008/tokenizers");
const { writeVariants } = require("./tokenizer_variants");

const [actcap, corpusFile, workDir, ...modelDirs] = process.argv.slice(2);

// Long inputs are generated, not stored: a 200 KB mixed text, a 100,000-character word, long runs.
function longInputs(base) {
  let text = "";
  for (let i = 0; text.length < 200000; i++) text += base[(i * 7919) % base.length] + (i % 3 ? " " : "\n");
  let word = "";
  for (let i = 0; i < 100000; i++) word += "abcdefghijklmnopqrstuvwxyz"[(i * 31 + (i >> 5)) % 26];
  return [text, word, " ".repeat(50000) + "x", "\n".repeat(20000), "7".repeat(30001), "é".repeat(40000),
          "😀".repeat(20000), "ab ".repeat(30000)];
}

// Deterministic id sequences, to check decoding of any ids (lone byte tokens, specials, unknown ids).
function randomIdSequences(vocabSize, count) {
  let state = 12345;
  const next = () => (state = (state * 1103515245 + 12345) % 2147483648);
  const out = [];
  for (let k = 0; k < count; k++) {
    const ids = [];
    const n = 1 + (next() % 24);
    for (let i = 0; i < n; i++) ids.push(next() % (vocabSize + 3));  // a few ids past the vocab
    out.push(ids);
  }
  return out;
}

function runActcap(args) {
  return execFileSync(actcap, args, { maxBuffer: 1 << 30, encoding: "utf8" }).split("\n").filter((l) => l.length);
}

function firstDiff(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

async function main() {
  const base = fs.readFileSync(corpusFile, "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
  const corpus = base.concat(longInputs(base));
  fs.mkdirSync(workDir, { recursive: true });
  const corpusPath = path.join(workDir, "corpus.jsonl");
  fs.writeFileSync(corpusPath, corpus.map((s) => JSON.stringify(s)).join("\n") + "\n");

  modelDirs.push(...writeVariants(modelDirs, workDir));
  let failures = 0, comparisons = 0, decodes = 0;
  const report = (what) => { if (failures++ < 20) console.log("MISMATCH " + what); };
  for (const dir of modelDirs) {
    const name = path.basename(dir === "models" ? path.dirname(dir) : dir.replace(/\/models\/?$/, ""));
    const hf = Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
    for (const special of [true, false]) {
      const ours = runActcap(["tokenize", "--model", dir, "--jsonl", corpusPath].concat(special ? [] : ["--no-special"]));
      if (ours.length !== corpus.length) { report(`${name}: ${ours.length} lines for ${corpus.length} strings`); continue; }
      const idLists = [];
      for (let i = 0; i < corpus.length; i++) {
        const expected = (await hf.encode(corpus[i], null, { addSpecialTokens: special })).getIds();
        const got = JSON.parse(ours[i]);
        idLists.push(expected);
        comparisons++;
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          const at = firstDiff(got, expected);
          report(`${name} special=${special} string #${i} ${JSON.stringify(corpus[i].slice(0, 80))}: ` +
                 `first difference at token ${at}: ours ${JSON.stringify(got.slice(at, at + 8))} ` +
                 `HF ${JSON.stringify(expected.slice(at, at + 8))}`);
        }
      }
      if (!special) continue;
      // Decoding: the HF ids of the corpus plus arbitrary id sequences.
      const sequences = idLists.concat(randomIdSequences(hf.getVocabSize(true), 300));
      const idsPath = path.join(workDir, "ids.jsonl");
      fs.writeFileSync(idsPath, sequences.map((s) => JSON.stringify(s)).join("\n") + "\n");
      for (const skip of [false, true]) {
        const texts = runActcap(["detokenize", "--model", dir, "--jsonl", idsPath].concat(skip ? ["--skip-special"] : []));
        for (let i = 0; i < sequences.length; i++) {
          const expected = await hf.decode(sequences[i], skip);
          const got = texts[i] === undefined ? undefined : JSON.parse(texts[i]);
          decodes++;
          if (got !== expected) {
            const at = got === undefined ? 0 : firstDiff(got, expected);
            report(`${name} decode skip_special=${skip} sequence #${i} ${JSON.stringify(sequences[i].slice(0, 12))}: ` +
                   `at char ${at}: ours ${JSON.stringify(got && got.slice(at, at + 20))} HF ${JSON.stringify(expected.slice(at, at + 20))}`);
          }
        }
      }
    }
    console.log(`${name}: done`);
  }
  console.log(`compared ${corpus.length} strings x ${modelDirs.length} tokenizers x 2 (with/without special tokens) ` +
              `= ${comparisons} encodings, and ${decodes} decodings; ${failures} mismatches`);
  process.exit(failures ? 1 : 0);
}
main().catch((e) => { console.error(e); process.exit(2); });
