// Every code point through actcap's tokenizer and the real HF tokenizers (Rust, @anush008/tokenizers). Each code
// point c (U+0000..U+10FFFF without surrogates) appears in one segment that puts c first, before "'s", between a
// letter and a digit, after a space and before a newline: the contexts where regex pre-tokenizers, normalizers
// and byte fallback differ. Segments are tokenized GROUP at a time (one string per group, which
// keeps the sweep fast); the code points of a group whose ids differ are then tokenized one by one, to count
// and show the code points that differ alone. Prints the counts per tokenizer. Besides MODEL_DIRs: the Unigram
// variants of tokenizer_variants.js (byte fallback; unk only).
// Usage: node tokenizer_sweep.js ACTCAP WORK_DIR MODEL_DIR...   (exit 1 when any group differs)
"use strict";
const fs = require("fs");
const path = require("path");
const { execFile } = require("child_process");
const { Tokenizer } = require("@anush008/tokenizers");
const { writeVariants } = require("./tokenizer_variants");

const [actcap, workDir, ...modelDirs] = process.argv.slice(2);
const GROUP = 64;
const BATCH = 2000;

const segment = (cp) => {
  const c = String.fromCodePoint(cp);
  return `${c}'s x${c}7 ${c}\n`;
};
const hex = (cp) => "U+" + cp.toString(16).toUpperCase().padStart(4, "0");

function groups() {
  const out = [];
  let group = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    group.push(cp);
    if (group.length === GROUP) out.push(group), (group = []);
  }
  if (group.length) out.push(group);
  return out;
}

// Ids of `strings` by actcap (a child process, running while HF encodes) and by HF, as JSON texts.
async function bothIds(dir, hf, strings, file) {
  fs.writeFileSync(file, strings.map((s) => JSON.stringify(s)).join("\n") + "\n");
  const ours = new Promise((resolve, reject) =>
    execFile(actcap, ["tokenize", "--model", dir, "--no-special", "--jsonl", file], { maxBuffer: 1 << 30, encoding: "utf8" },
             (error, stdout) => (error ? reject(error) : resolve(stdout.split("\n")))));
  const theirs = [];
  for (let start = 0; start < strings.length; start += BATCH)
    for (const encoding of await hf.encodeBatch(strings.slice(start, start + BATCH), { addSpecialTokens: false }))
      theirs.push(JSON.stringify(encoding.getIds()));
  return [await ours, theirs];
}

async function main() {
  fs.mkdirSync(workDir, { recursive: true });
  modelDirs.push(...writeVariants(modelDirs, workDir, /^(llama2-unigram-(bytes|unk)|gpt2-wordpiece-(cased|uncased))$/));
  const all = groups();
  const strings = all.map((group) => group.map(segment).join("\n"));
  const codePoints = all.reduce((n, g) => n + g.length, 0);
  let failed = 0;
  for (const dir of modelDirs) {
    const name = path.basename(dir.replace(/\/models\/?$/, ""));
    const hf = Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
    const [ours, theirs] = await bothIds(dir, hf, strings, path.join(workDir, "groups.jsonl"));
    const badGroups = all.filter((_, i) => ours[i] !== theirs[i]);
    const suspects = badGroups.flat();
    const alone = suspects.map(segment);
    const [oursAlone, theirsAlone] = await bothIds(dir, hf, alone, path.join(workDir, "alone.jsonl"));
    const differing = suspects.map((cp, i) => [cp, i]).filter(([, i]) => oursAlone[i] !== theirsAlone[i]);
    console.log(`${name}: ${badGroups.length} of ${all.length} groups of ${GROUP} code points differ; ` +
                `${differing.length} of ${codePoints} code points differ alone`);
    for (const [cp, i] of differing.slice(0, 5))
      console.log(`  ${hex(cp)} ${JSON.stringify(alone[i])}: actcap ${oursAlone[i]} HF ${theirsAlone[i]}`);
    if (badGroups.length && !differing.length)
      console.log(`  first differing group starts at ${hex(badGroups[0][0])}`);
    if (badGroups.length) failed++;
  }
  process.exit(failed ? 1 : 0);
}
main().catch((e) => { console.error(e); process.exit(2); });
