// Generation: seeded sampling, the sampling filters, EOS and max_new_tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "engine_test_util.h"
#include "generate/generate.h"

namespace actcap {
namespace {

using testing::synthetic_config;
using testing::token_sequence;

std::vector<int32_t> sample(Model& model, uint64_t seed, float temperature, int top_k, float top_p) {
  GenerationOptions options;
  options.max_new_tokens = 24;
  options.do_sample = true;
  options.seed = seed;
  options.temperature = temperature;
  options.top_k = top_k;
  options.top_p = top_p;
  options.eos_token_ids = std::vector<int32_t>{};
  return generate(model, {token_sequence(5, 1)}, options, nullptr, CaptureMode::Rerun, nullptr)[0].token_ids;
}

TEST(EngineGeneration, SeededSamplingIsReproducible) {
  auto model = Model::synthetic(synthetic_config("llama"), 3);
  const auto a = sample(*model, 42, 1.5f, 0, 1.0f);
  EXPECT_EQ(a, sample(*model, 42, 1.5f, 0, 1.0f));
  EXPECT_NE(a, sample(*model, 43, 1.5f, 0, 1.0f));
  // top_k = 1 and a tiny top_p both leave only the most likely token: greedy
  GenerationOptions greedy;
  greedy.max_new_tokens = 24;
  greedy.eos_token_ids = std::vector<int32_t>{};
  const auto expected = generate(*model, {token_sequence(5, 1)}, greedy, nullptr, CaptureMode::Rerun, nullptr)[0].token_ids;
  EXPECT_EQ(sample(*model, 9, 1.0f, 1, 1.0f), expected);
  EXPECT_EQ(sample(*model, 9, 1.0f, 0, 1e-6f), expected);
}

TEST(EngineGeneration, PerSequenceSeedsMakeSamplesIndependentOfTheBatch) {
  auto model = Model::synthetic(synthetic_config("qwen3"), 3);
  GenerationOptions options;
  options.max_new_tokens = 12;
  options.do_sample = true;
  options.eos_token_ids = std::vector<int32_t>{};
  options.sequence_seeds = {100, 101};
  auto both = generate(*model, {token_sequence(4, 1), token_sequence(9, 2)}, options, nullptr, CaptureMode::Rerun, nullptr);
  options.sequence_seeds = {101};
  auto second = generate(*model, {token_sequence(9, 2)}, options, nullptr, CaptureMode::Rerun, nullptr);
  EXPECT_EQ(both[1].token_ids, second[0].token_ids);
}

TEST(EngineGeneration, SamplerFollowsTheFilteredDistribution) {
  const float logits[4] = {std::log(0.5f), std::log(0.3f), std::log(0.2f), -INFINITY};
  auto frequencies = [&](int top_k, float top_p) {
    GenerationOptions options;
    options.do_sample = true;
    options.top_k = top_k;
    options.top_p = top_p;
    TokenSampler sampler(options, 1234);
    std::vector<double> counts(4, 0);
    const int n = 20000;
    for (int i = 0; i < n; ++i) counts[size_t(sampler.next(logits, 4))] += 1.0 / n;
    return counts;
  };
  auto all = frequencies(0, 1.0f);
  EXPECT_NEAR(all[0], 0.5, 0.02);
  EXPECT_NEAR(all[1], 0.3, 0.02);
  EXPECT_NEAR(all[2], 0.2, 0.02);
  EXPECT_EQ(all[3], 0.0);
  auto top2 = frequencies(2, 1.0f);
  EXPECT_NEAR(top2[0], 0.625, 0.02);
  EXPECT_EQ(top2[2], 0.0);
  auto nucleus = frequencies(0, 0.6f);  // 0.5 < 0.6 <= 0.8: tokens 0 and 1
  EXPECT_NEAR(nucleus[1], 0.375, 0.02);
  EXPECT_EQ(nucleus[2], 0.0);
}

TEST(EngineGeneration, StopsAtEosAndMaxNewTokens) {
  auto model = Model::load(std::string(ACTCAP_TEST_DATA) + "/reference/llama");
  const std::vector<int32_t> prompt = {1, 20, 300, 511, 7, 7};
  GenerationOptions options;
  options.max_new_tokens = 6;
  options.eos_token_ids = std::vector<int32_t>{};
  std::vector<int32_t> streamed;
  options.on_token = [&](int sequence, int32_t token) {
    EXPECT_EQ(sequence, 0);
    streamed.push_back(token);
  };
  auto full = generate(*model, {prompt}, options, nullptr, CaptureMode::Rerun, nullptr)[0];
  ASSERT_EQ(full.token_ids.size(), prompt.size() + 6);
  EXPECT_FALSE(full.stopped_at_eos);
  EXPECT_EQ(streamed, std::vector<int32_t>(full.token_ids.begin() + 6, full.token_ids.end()));

  options.on_token = nullptr;
  options.eos_token_ids = std::vector<int32_t>{full.token_ids[8]};  // the third generated token
  auto stopped = generate(*model, {prompt}, options, nullptr, CaptureMode::Rerun, nullptr)[0];
  EXPECT_TRUE(stopped.stopped_at_eos);
  EXPECT_EQ(stopped.token_ids, std::vector<int32_t>(full.token_ids.begin(), full.token_ids.begin() + 9));

  options.max_new_tokens = 0;
  EXPECT_EQ(generate(*model, {prompt}, options, nullptr, CaptureMode::Rerun, nullptr)[0].token_ids, prompt);
}

TEST(EngineGeneration, RejectsBadRequests) {
  auto model = Model::load(std::string(ACTCAP_TEST_DATA) + "/reference/gpt2");
  GenerationOptions options;
  EXPECT_THROW(generate(*model, {{}}, options, nullptr, CaptureMode::Rerun, nullptr), Error);
  EXPECT_THROW(generate(*model, {{1, 512}}, options, nullptr, CaptureMode::Rerun, nullptr), Error);  // vocab 512
  options.max_new_tokens = 60;  // gpt2 reference has 64 positions
  EXPECT_THROW(generate(*model, {token_sequence(5, 0)}, options, nullptr, CaptureMode::Rerun, nullptr), Error);
  options.max_new_tokens = 2;
  options.do_sample = true;
  options.temperature = 0;
  EXPECT_THROW(generate(*model, {{1, 2}}, options, nullptr, CaptureMode::Rerun, nullptr), Error);
}

}  // namespace
}  // namespace actcap
