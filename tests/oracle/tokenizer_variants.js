// Variants of the real tokenizer.json files, written to WORK_DIR/<name>/tokenizer.json, that exercise what the
// shipped files do not: Metaspace (non-legacy Llama), added tokens with lstrip / rstrip / single_word /
// normalized, unk with and without fuse_unk (no byte_fallback), ByteLevel add_prefix_space with
// RobertaProcessing, and the Unigram model on Llama-2's SentencePiece vocabulary with SentencePiece's scores
// (-rank): with byte fallback, with unk only, and with the Metaspace pre-tokenizer of T5-style files; and
// BERT's pipeline (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] A [SEP], WordPiece decoder), cased and
// uncased, on a WordPiece vocabulary made of GPT-2's tokens: word-initial ones, and every one with "##".
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
  if (gpt2) {
    const base = JSON.parse(fs.readFileSync(path.join(gpt2, "tokenizer.json"), "utf8"));
    const vocab = wordPieceVocab(base.model.vocab);
    for (const cased of [true, false]) {
      write(cased ? "gpt2-wordpiece-cased" : "gpt2-wordpiece-uncased", {
        version: "1.0", truncation: null, padding: null,
        added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((content, id) =>
          ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
        normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: !cased },
        pre_tokenizer: { type: "BertPreTokenizer" },
        model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
        post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
                                                             { SpecialToken: { id: "[SEP]", type_id: 0 } }],
                          pair: [], special_tokens: { "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] },
                                                      "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] } } },
        decoder: { type: "WordPiece", prefix: "##", cleanup: true },
      });
    }
  }
  return dirs;
}

// GPT-2's byte-level tokens as text: one with a leading space is a word-initial piece; every other one is
// both a word-initial and a "##" continuation piece. Tokens that are not whole UTF-8 characters are left out.
function wordPieceVocab(gpt2Vocab) {
  const byteOf = new Map();
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    byteOf.set(String.fromCodePoint(printable ? b : next++), b);
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const vocab = { "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4 };
  let size = 5;
  const add = (piece) => { if (!(piece in vocab)) vocab[piece] = size++; };
  for (const [token] of Object.entries(gpt2Vocab).sort((a, b) => a[1] - b[1])) {
    let text;
    try { text = decoder.decode(Uint8Array.from([...token].map((c) => byteOf.get(c)))); } catch { continue; }
    if (text.startsWith(" ")) text = text.slice(1);
    else add("##" + text);
    if (text && !/\s/.test(text)) add(text);
  }
  return vocab;
}

module.exports = { writeVariants };

