#pragma once
// Text generation over a Model: greedy or seeded sampling, stopping at max_new_tokens or an EOS id, with the
// activations of the selected sites delivered to a sink.
//
// Sampling is reproducible: each sequence draws from its own std::mt19937_64 seeded with its seed
// (sequence_seeds[s] when given, else seed), one uniform double in [0, 1) per generated token
// (std::generate_canonical<double, 64>), inverted over the filtered, renormalised distribution in token-id order.
// Filters run in transformers' order: temperature, top-k, top-p. A sequence's tokens depend only on its prompt,
// its seed and the options, never on the thread count or the other sequences in the call.
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <vector>

#include "capture/sink.h"
#include "capture/sites.h"
#include "models/model.h"

namespace actcap {

struct GenerationOptions {
  int max_new_tokens = 0;
  bool do_sample = false;
  float temperature = 1.0f;
  int top_k = 0;       // 0 = no top-k filter
  float top_p = 1.0f;  // 1 = no nucleus filter
  uint64_t seed = 0;
  std::vector<uint64_t> sequence_seeds;  // optional, one per prompt (e.g. seed + record index); overrides seed
  std::optional<std::vector<int32_t>> eos_token_ids;  // default: generation_config / config
  std::function<void(int sequence, int32_t token)> on_token;  // called as each token is chosen
};

enum class CaptureMode {
  Rerun,     // one forward over prompt + generated tokens after generating
  Stepwise,  // from the cached decode, step by step
};

struct GeneratedSequence {
  std::vector<int32_t> token_ids;  // prompt + generated
  int n_prompt = 0;
  bool stopped_at_eos = false;
};

// selection/sink may be null (no capture). The prompts advance together, one packed forward pass per step (all
// prompts, then one token of each unfinished sequence), and every capture has reached the sink on return.
// Sequences are independent: on the CPU each gives exactly (bitwise) what it gives alone; on CUDA, GEMM
// kernels chosen by batch shape may change the last bits. Throws actcap::Error on an empty prompt, a token id outside the vocabulary, or a sequence longer
// than a learned position table.
std::vector<GeneratedSequence> generate(Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                        const GenerationOptions& options, const SiteSelection* selection,
                                        CaptureMode mode, ActivationSink* sink);

// Picks the next token from one row of logits [V] (greedy when !options.do_sample). Exposed for tests.
class TokenSampler {
 public:
  TokenSampler(const GenerationOptions& options, uint64_t seed);
  int32_t next(const float* logits, int64_t vocab_size);

 private:
  const GenerationOptions& options_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> scratch_;
};

}  // namespace actcap
