// llama.cpp (the prebuilt CPU build node-llama-cpp ships) on a GGUF file: a prefill of the given token ids, then
// greedy decoding of NEW_TOKENS tokens. Prints one JSON line per run: prefill and decode tokens/s and the ids.
//
//   node bench/peers/llama_cpp_bench.mjs MODEL.gguf THREADS IDS NEW_TOKENS [RUNS]     IDS: "1,2,3"
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, threadsArg, idsArg, newArg, runsArg] = process.argv.slice(2);
if (!newArg) {
  console.error("usage: llama_cpp_bench.mjs MODEL.gguf THREADS IDS NEW_TOKENS [RUNS]");
  process.exit(2);
}
const threads = Number(threadsArg), newTokens = Number(newArg), runs = Number(runsArg ?? 1);
const ids = idsArg.split(",").map(Number);

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads});
const model = await llama.loadModel({modelPath});
for (let run = 0; run < runs; ++run) {
  const context = await model.createContext({contextSize: ids.length + newTokens + 16, batchSize: ids.length,
                                             threads: {ideal: threads, min: threads}, sequences: 1});
  const sequence = context.getSequence();
  const generated = [];
  const start = performance.now();
  let firstAt = 0;
  // temperature 0: greedy. The generator evaluates the prompt, yields a token, evaluates it, yields the next...
  for await (const token of sequence.evaluate(ids, {temperature: 0})) {
    generated.push(token);
    if (generated.length === 1) firstAt = performance.now();
    if (generated.length === newTokens) break;
  }
  const end = performance.now();
  console.log(JSON.stringify({
    run, threads, prompt_tokens: ids.length, new_tokens: generated.length,
    prefill_tok_s: ids.length / ((firstAt - start) / 1000),
    decode_tok_s: (generated.length - 1) / ((end - firstAt) / 1000),
    ids: generated,
  }));
  await context.dispose();
}
await model.dispose();
await llama.dispose();
