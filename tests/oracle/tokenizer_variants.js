// Variants of the real tokenizer.json files, written to WORK_DIR/<name>/tokenizer.json, that exercise what the
// shipped files do not: Metaspace (non-legacy Llama), added tokens with lstrip / rstrip / single_word /
// normalized, unk with and without fuse_unk (no byte_fallback), ByteLevel add_prefix_space with
// RobertaProcessing, and the Unigram model on Llama-2's SentencePiece vocabulary with SentencePiece's scores
// (-rank): with byte fallback, with unk only, and with the Metaspace pre-tokenizer of T5-style files.
"use strict";
const fs = require("fs");
const path = require("path");

function writeVariants(modelDirs, workDir, only = null) {
  const dirs = [];
  const find = (suffix) => modelDirs.find((d) => d.replace(/\/models\/?$/, "").endsWith(suffix));
  const write = (name, json) => {
    if (only && !only.test(name)) return;
    const dir = path.join(workDir, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(json));
    dirs.push(dir);
  };
  const llama2 = find("tokenizer-llama2");
  if (llama2) {
    const base = JSON.parse(fs.readFileSync(path.join(llama2, "tokenizer.json"), "utf8"));
    const extra = [
      { id: 32000, content: "<lstrip>", single_word: false, lstrip: true, rstrip: false, normalized: false, special: true },
      { id: 32001, content: "<rstrip>", single_word: false, lstrip: false, rstrip: true, normalized: false, special: true },
      { id: 32002, content: "word", single_word: true, lstrip: false, rstrip: false, normalized: false, special: false },
      { id: 32003, content: "Norm Tok", single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
    ];
    const meta = JSON.parse(JSON.stringify(base));
    meta.normalizer = null;
    meta.pre_tokenizer = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false };
    meta.decoder = { type: "Sequence", decoders: [{ type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
                                                  { type: "ByteFallback" }, { type: "Fuse" }] };
    meta.added_tokens = meta.added_tokens.concat(extra);
    write("llama2-metaspace-added", meta);
    const legacyAdded = JSON.parse(JSON.stringify(base));
    legacyAdded.added_tokens = legacyAdded.added_tokens.concat(extra);
    write("llama2-legacy-added", legacyAdded);
    for (const fuse of [true, false]) {
      const unk = JSON.parse(JSON.stringify(base));
      unk.model.byte_fallback = false;
      unk.model.fuse_unk = fuse;
      write(fuse ? "llama2-unk-fused" : "llama2-unk", unk);
    }
  }
  const gpt2 = find("tiny-gpt2");
  if (gpt2) {
    const roberta = JSON.parse(fs.readFileSync(path.join(gpt2, "tokenizer.json"), "utf8"));
    roberta.pre_tokenizer.add_prefix_space = true;
    roberta.post_processor = { type: "RobertaProcessing", sep: ["<|endoftext|>", 50256], cls: ["<|endoftext|>", 50256],
                               trim_offsets: true, add_prefix_space: true };
    write("gpt2-prefix-roberta", roberta);
  }
  if (llama2) {
    const base = JSON.parse(fs.readFileSync(path.join(llama2, "tokenizer.json"), "utf8"));
    const byId = Object.entries(base.model.vocab).sort((a, b) => a[1] - b[1]);
    const unigram = (byteFallback) => ({
      type: "Unigram", unk_id: base.model.vocab[base.model.unk_token], byte_fallback: byteFallback,
      vocab: byId.map(([piece, id]) => [piece, /^<(0x[0-9A-F]{2}|unk|s|\/s)>$/.test(piece) ? 0.0 : -id]),
    });
    const withModel = (model) => Object.assign(JSON.parse(JSON.stringify(base)), { model });
    write("llama2-unigram-bytes", withModel(unigram(true)));
    write("llama2-unigram-unk", withModel(unigram(false)));
    const metaspace = withModel(unigram(true));
    metaspace.normalizer = null;
    metaspace.pre_tokenizer = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true };
    metaspace.decoder = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true };
    write("llama2-unigram-metaspace", metaspace);
  }
  return dirs;
}

module.exports = { writeVariants };

