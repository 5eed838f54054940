#include "generate/generate.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace actcap {

TokenSampler::TokenSampler(const GenerationOptions& options, uint64_t seed) : options_(options), rng_(seed) {}

int32_t TokenSampler::next(const float* logits, int64_t vocab_size) {
  if (!options_.do_sample) {
    // torch.argmax: the first maximum
    return int32_t(std::max_element(logits, logits + vocab_size) - logits);
  }
  scratch_.clear();
  for (int64_t i = 0; i < vocab_size; ++i) scratch_.emplace_back(logits[i] / options_.temperature, int32_t(i));
  // Highest first; equal scores by token id, so the order never depends on the sort implementation.
  auto higher = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  std::sort(scratch_.begin(), scratch_.end(), higher);
  size_t keep = scratch_.size();
  if (options_.top_k > 0 && size_t(options_.top_k) < keep) {
    // transformers keeps every token scoring at least the k-th score
    const float kth = scratch_[size_t(options_.top_k) - 1].first;
    keep = size_t(options_.top_k);
    while (keep < scratch_.size() && scratch_[keep].first >= kth) ++keep;
  }
  std::vector<double> probs(keep);
  const double max = scratch_[0].first;
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += probs[i] = std::exp(double(scratch_[i].first) - max);
  if (options_.top_p < 1.0f) {
    // keep the smallest prefix whose probability reaches top_p (at least one token)
    double cumulative = 0;
    size_t prefix = 0;
    while (prefix < keep) {
      cumulative += probs[prefix] / sum;
      ++prefix;
      if (cumulative >= double(options_.top_p)) break;
    }
    keep = prefix;
    sum = 0;
    for (size_t i = 0; i < keep; ++i) sum += probs[i];
  }
  const double u = std::generate_canonical<double, 64>(rng_) * sum;
  double cumulative = 0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (u < cumulative) return scratch_[i].second;
  }
  return scratch_[keep - 1].second;
}

namespace {

void check_options(const GenerationOptions& options, size_t prompts) {
  if (options.max_new_tokens < 0) fail("--max-new-tokens must be >= 0, got {}", options.max_new_tokens);
  if (options.do_sample) {
    if (!(options.temperature > 0)) fail("--temperature must be > 0, got {}", options.temperature);
    if (options.top_k < 0) fail("--top-k must be >= 0, got {}", options.top_k);
    if (!(options.top_p > 0 && options.top_p <= 1)) fail("--top-p must be in (0, 1], got {}", options.top_p);
  }
  if (!options.sequence_seeds.empty() && options.sequence_seeds.size() != prompts)
    fail("internal error: {} sequence seeds for {} prompts", options.sequence_seeds.size(), prompts);
}

}  // namespace

std::vector<GeneratedSequence> generate(Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                        const GenerationOptions& options, const SiteSelection* selection,
                                        CaptureMode mode, ActivationSink* sink) {
  check_options(options, prompts.size());
  const std::vector<int32_t> eos = options.eos_token_ids.value_or(model.config().eos_token_ids);
  const int64_t vocab = model.config().vocab_size;
  const size_t count = prompts.size();
  for (size_t s = 0; s < count; ++s) {
    const std::vector<int32_t>& prompt = prompts[s];
    if (prompt.empty()) fail("input {} has no tokens", s);
    for (int32_t id : prompt)
      if (id < 0 || id >= vocab) fail("input {}: token id {} is outside the vocabulary (size {})", s, id, vocab);
    const int64_t longest = int64_t(prompt.size()) + options.max_new_tokens;
    if (model.max_positions() > 0 && longest > model.max_positions())
      fail("input {}: {} prompt tokens + {} new tokens exceed the {} positions of {}", s, prompt.size(),
           options.max_new_tokens, model.max_positions(), model.dir());
  }
  std::vector<GeneratedSequence> results(count);
  if (count == 0) return results;
  const CaptureTarget target{selection, sink};
  const bool capturing = sink != nullptr;
  const CaptureTarget live = capturing && mode == CaptureMode::Stepwise ? target : CaptureTarget{};

  // Every live sequence advances in the same packed pass: the prompts together, then one token each per step.
  std::vector<KVCache> caches;
  std::vector<TokenSampler> samplers;
  std::vector<SequenceStep> steps;
  caches.reserve(count);  // steps point into it
  for (size_t s = 0; s < count; ++s) {
    results[s].token_ids = prompts[s];
    results[s].n_prompt = int(prompts[s].size());
    caches.push_back(model.new_cache(int64_t(prompts[s].size()) + options.max_new_tokens));
    samplers.emplace_back(options, options.sequence_seeds.empty() ? options.seed : options.sequence_seeds[s]);
    steps.push_back(SequenceStep{prompts[s], &caches[s], int(s)});
  }
  if (options.max_new_tokens == 0) {
    if (capturing) model.forward(steps, target, false);
    model.synchronize();
    return results;
  }

  std::vector<size_t> live_sequences(count);
  for (size_t s = 0; s < count; ++s) live_sequences[s] = s;
  for (int step = 0; !live_sequences.empty(); ++step) {
    const Tensor logits = model.forward(steps, live);
    std::vector<size_t> still_live;
    steps.clear();
    for (size_t i = 0; i < live_sequences.size(); ++i) {
      const size_t s = live_sequences[i];
      GeneratedSequence& out = results[s];
      const int32_t token = samplers[s].next(logits.f32() + int64_t(i) * vocab, vocab);
      out.token_ids.push_back(token);
      if (options.on_token) options.on_token(int(s), token);
      if (std::find(eos.begin(), eos.end(), token) != eos.end()) {
        out.stopped_at_eos = true;
      } else if (step + 1 < options.max_new_tokens) {
        still_live.push_back(s);
        steps.push_back(SequenceStep{std::span(&out.token_ids.back(), 1), &caches[s], int(s)});
      }
    }
    live_sequences = std::move(still_live);
  }

  if (capturing && mode == CaptureMode::Stepwise) {
    // the last chosen tokens have not been through the model yet
    for (size_t s = 0; s < count; ++s)
      steps.push_back(SequenceStep{std::span(&results[s].token_ids.back(), 1), &caches[s], int(s)});
    model.forward(steps, live, false);
  } else if (capturing) {
    std::vector<KVCache> fresh(count);
    for (size_t s = 0; s < count; ++s) {
      fresh[s] = model.new_cache(int64_t(results[s].token_ids.size()));
      steps.push_back(SequenceStep{results[s].token_ids, &fresh[s], int(s)});
    }
    model.forward(steps, target, false);
  }
  model.synchronize();
  return results;
}

}  // namespace actcap
