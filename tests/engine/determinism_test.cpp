// Bit-reproducibility: across runs, thread counts and batch compositions; and the two capture modes of
// generation agree.
#include <gtest/gtest.h>

#include "capture/sites.h"
#include "core/thread_pool.h"
#include "engine_test_util.h"
#include "generate/generate.h"

namespace actcap {
namespace {

using testing::expect_bitwise_equal;
using testing::synthetic_config;
using testing::token_sequence;

class EngineDeterminism : public ::testing::TestWithParam<std::string> {
 protected:
  void TearDown() override { ThreadPool::set_global_threads(0); }
};

Recorder::Taken capture_prefill(Model& model, const std::vector<int32_t>& ids) {
  const SiteSelection all = SiteSelection::all(model);
  Recorder recorder;
  KVCache cache = model.new_cache();
  model.forward(ids, cache, CaptureTarget{&all, &recorder});
  return recorder.take(0, int(ids.size()), int(ids.size()));
}

TEST_P(EngineDeterminism, BitIdenticalAcrossRunsAndThreadCounts) {
  auto model = Model::synthetic(synthetic_config(GetParam()), 7);
  const auto ids = token_sequence(150, 1);  // three row tiles, past the sliding window
  ThreadPool::set_global_threads(1);
  const auto reference = capture_prefill(*model, ids);
  expect_bitwise_equal(reference, capture_prefill(*model, ids));
  for (int threads : {2, 3}) {
    SCOPED_TRACE(threads);
    ThreadPool::set_global_threads(threads);
    expect_bitwise_equal(reference, capture_prefill(*model, ids));
  }
}

TEST_P(EngineDeterminism, BatchGivesExactlyWhatEachSequenceGivesAlone) {
  auto model = Model::synthetic(synthetic_config(GetParam()), 11);
  const std::vector<std::vector<int32_t>> prompts = {token_sequence(90, 2), token_sequence(7, 3),
                                                     token_sequence(33, 4)};
  const SiteSelection all = SiteSelection::all(*model);
  GenerationOptions options;
  options.max_new_tokens = 6;
  options.eos_token_ids = std::vector<int32_t>{};
  for (CaptureMode mode : {CaptureMode::Rerun, CaptureMode::Stepwise}) {
    Recorder together;
    ThreadPool::set_global_threads(2);
    auto batch = generate(*model, prompts, options, &all, mode, &together);
    ASSERT_EQ(batch.size(), prompts.size());
    for (size_t s = 0; s < prompts.size(); ++s) {
      SCOPED_TRACE(s);
      ThreadPool::set_global_threads(int(s) + 1);
      Recorder alone;
      auto single = generate(*model, {prompts[s]}, options, &all, mode, &alone);
      EXPECT_EQ(single[0].token_ids, batch[s].token_ids);
      const int n = int(batch[s].token_ids.size()), n_prompt = batch[s].n_prompt;
      expect_bitwise_equal(together.take(int(s), n_prompt, n), alone.take(0, n_prompt, n));
    }
  }
}

TEST_P(EngineDeterminism, StepwiseCaptureAgreesWithRerun) {
  auto model = Model::synthetic(synthetic_config(GetParam()), 13);
  const SiteSelection all = SiteSelection::all(*model);
  GenerationOptions options;
  options.max_new_tokens = 8;
  options.eos_token_ids = std::vector<int32_t>{};
  const auto prompt = token_sequence(70, 5);  // decode steps cross the sliding window of 64
  Recorder rerun, stepwise;
  auto a = generate(*model, {prompt}, options, &all, CaptureMode::Rerun, &rerun);
  auto b = generate(*model, {prompt}, options, &all, CaptureMode::Stepwise, &stepwise);
  ASSERT_EQ(a[0].token_ids, b[0].token_ids);
  const int n = int(a[0].token_ids.size());
  auto x = rerun.take(0, int(prompt.size()), n), y = stepwise.take(0, int(prompt.size()), n);
  ASSERT_EQ(x.sites.size(), model->site_names().size());
  ASSERT_EQ(x.sites.size(), y.sites.size());
  for (size_t i = 0; i < x.sites.size(); ++i) {
    const Tensor &p = x.sites[i].second, &q = y.sites[i].second;
    ASSERT_EQ(x.sites[i].first, y.sites[i].first);
    ASSERT_EQ(p.shape(), q.shape()) << x.sites[i].first;
    double max_ref = 0, max_err = 0;
    for (int64_t j = 0; j < p.numel(); ++j) {
      max_ref = std::max(max_ref, double(std::fabs(p.f32()[j])));
      max_err = std::max(max_err, double(std::fabs(p.f32()[j] - q.f32()[j])));
    }
    EXPECT_LE(max_err, 1e-5 * max_ref) << x.sites[i].first;
  }
}

INSTANTIATE_TEST_SUITE_P(Engine, EngineDeterminism,
                         ::testing::Values("gpt2", "llama", "mistral", "qwen2", "qwen3", "opt", "olmo2", "olmo",
                                           "gemma2", "gemma3_text", "qwen3_moe", "mixtral", "gpt_neox", "phi3",
                                           "phi3_longrope"));

}  // namespace
}  // namespace actcap
