// Parses a GGUF file that actcap wrote with @huggingface/gguf (the reference parser) and compares what it finds
// with what the file should hold: every metadata key with its exact type (and array element type) and value, and
// every tensor's name, ggml dtype, shape and F32 values (read at the offsets the parser reports).
// Usage: node gguf_oracle.js FILE.gguf EXPECTED.json
// EXPECTED.json: {"version": 3, "metadata": {key: {"type": T, "subType": T?, "value": V}},
//                 "tensors": [{"name": N, "dtype": 0, "shape": [ne0, ...], "values": [...]}]}
// 64-bit integers (the parser gives BigInt) are compared as decimal strings: give them as strings.
"use strict";
const fs = require("fs");
const { gguf } = require("@huggingface/gguf");

const [file, expectedPath] = process.argv.slice(2);
if (!file || !expectedPath) {
  console.error("usage: node gguf_oracle.js FILE.gguf EXPECTED.json");
  process.exit(2);
}
const expected = JSON.parse(fs.readFileSync(expectedPath, "utf8"));
const problems = [];
const plain = (v) => (typeof v === "bigint" ? v.toString() : Array.isArray(v) ? v.map(plain) : v);
const same = (a, b) => JSON.stringify(plain(a)) === JSON.stringify(b);

(async () => {
  const parsed = await gguf(file, { allowLocalFile: true, typedMetadata: true });
  const meta = parsed.typedMetadata;
  if (meta.version.value !== expected.version) problems.push(`version ${meta.version.value} != ${expected.version}`);
  const keys = Object.keys(meta).filter((k) => !["version", "tensor_count", "kv_count"].includes(k));
  const wantKeys = Object.keys(expected.metadata);
  if (!same(keys.slice().sort(), wantKeys.slice().sort())) problems.push(`keys ${keys} != ${wantKeys}`);
  if (Number(meta.kv_count.value) !== wantKeys.length) problems.push(`kv_count ${meta.kv_count.value}`);
  for (const key of wantKeys) {
    const got = meta[key], want = expected.metadata[key];
    if (!got) continue;
    if (got.type !== want.type) problems.push(`${key}: type ${got.type} != ${want.type}`);
    if (want.subType !== undefined && got.subType !== want.subType)
      problems.push(`${key}: element type ${got.subType} != ${want.subType}`);
    if (!same(got.value, want.value)) problems.push(`${key}: value ${JSON.stringify(plain(got.value))} != ${JSON.stringify(want.value)}`);
  }

  const infos = parsed.tensorInfos;
  if (Number(meta.tensor_count.value) !== expected.tensors.length) problems.push(`tensor_count ${meta.tensor_count.value}`);
  if (!same(infos.map((t) => t.name), expected.tensors.map((t) => t.name)))
    problems.push(`tensor names ${infos.map((t) => t.name)} != ${expected.tensors.map((t) => t.name)}`);
  const bytes = fs.readFileSync(file);
  for (const want of expected.tensors) {
    const info = infos.find((t) => t.name === want.name);
    if (!info) continue;
    if (info.dtype !== want.dtype) problems.push(`${want.name}: dtype ${info.dtype} != ${want.dtype}`);
    if (info.n_dims !== want.shape.length || !same(info.shape, want.shape.map(String)))
      problems.push(`${want.name}: shape ${plain(info.shape)} != ${want.shape}`);
    const start = Number(parsed.tensorDataOffset + info.offset);
    const count = want.values.length;
    if (start + 4 * count > bytes.length) {
      problems.push(`${want.name}: data beyond the end of the file`);
      continue;
    }
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + start + 4 * count));
    for (let i = 0; i < count; i++)
      if (values[i] !== Math.fround(want.values[i])) {
        problems.push(`${want.name}[${i}] = ${values[i]}, expected ${want.values[i]}`);
        break;
      }
  }
  if (problems.length) {
    console.error(`${file}: ${problems.length} difference(s) from @huggingface/gguf:\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`${file}: @huggingface/gguf reads ${wantKeys.length} keys and ${infos.length} tensors as expected`);
})().catch((e) => {
  console.error(`${file}: @huggingface/gguf failed: ${e.message}`);
  process.exit(1);
});
