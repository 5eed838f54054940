// The newer families (Gemma 2/3, OLMo / OLMo 2, the MoE models, GPT-NeoX, Phi-3) in the CPU engine's bf16: every
// site close to the fp32 run of the same synthetic model, and the same bits at one and two threads. An op that
// read bf16 storage as fp32 would be far off (or NaN) at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bf16_reference.h"
#include "capture/sites.h"
#include "core/thread_pool.h"
#include "engine_test_util.h"
#include "reference_data.h"

namespace actcap {
namespace {

Recorder::Taken capture_prefill(Model& model, const std::vector<int32_t>& ids) {
  const SiteSelection all = SiteSelection::all(model);
  Recorder recorder;
  KVCache cache = model.new_cache();
  model.forward(ids, cache, CaptureTarget{&all, &recorder});
  return recorder.take(0, int(ids.size()), int(ids.size()));
}

// bf16 rounds the weights and every op's output, and the rounding errors travel down the two layers: measured
// at most ~5 bf16 ulps of a site's largest |value|; kUlps leaves room, while a wrong rounding step (or an op
// computing on the wrong storage type) lies far outside.
constexpr double kUlps = 8;

// The positions before the first one at which the two runs route a token to different experts (all of them when
// none does). A near-tie of router logits may resolve differently in bf16, and that token's rows, and the later
// ones attending to them, then differ by far more than rounding; attention is causal, so earlier rows do not.
// Such a flip must be a near-tie: `expected`'s k-th and (k+1)-th largest logits within kUlps of the row's scale.
int64_t rows_routed_alike(const Recorder::Taken& got, const Recorder::Taken& expected) {
  std::map<std::string, const Tensor*> expected_sites;
  for (const auto& [site, tensor] : expected.sites) expected_sites[site] = &tensor;
  int64_t rows = got.sites.front().second.dim(0);
  for (const auto& [site, indices] : got.sites) {
    if (!site.ends_with("hook_expert_indices")) continue;
    const Tensor& other = *expected_sites.at(site);
    const int64_t k = indices.dim(1);
    for (int64_t r = 0; r < rows; ++r) {
      if (std::equal(indices.f32() + r * k, indices.f32() + (r + 1) * k, other.f32() + r * k)) continue;
      rows = r;
      const Tensor& logits = *expected_sites.at(site.substr(0, site.rfind("expert_indices")) + "router_logits");
      const int64_t experts = logits.dim(1);
      std::vector<float> row(logits.f32() + r * experts, logits.f32() + (r + 1) * experts);
      std::sort(row.begin(), row.end(), std::greater<>());
      const double scale = std::max(std::fabs(row.front()), std::fabs(row.back()));
      EXPECT_LE(row[size_t(k - 1)] - row[size_t(k)], kUlps * testing::bf16_ulp(scale))
          << site << " routes position " << r << " differently without a near-tie";
    }
  }
  return rows;
}

// deviation() over the first `rows` positions: the leading axis of `positions` elements (the second one of an
// attention pattern, [heads, positions, keys]).
testing::Deviation leading_rows_deviation(const Tensor& got, const Tensor& expected, int64_t positions,
                                          int64_t rows) {
  const auto& shape = expected.shape();
  const size_t axis = size_t(std::find(shape.begin(), shape.end(), positions) - shape.begin());
  EXPECT_LT(axis, shape.size()) << "no axis of positions";
  int64_t blocks = 1;
  for (size_t a = 0; a < axis && a < shape.size(); ++a) blocks *= shape[a];
  const int64_t block = expected.numel() / blocks, kept = block / positions * rows;
  testing::Deviation d;
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t i = b * block; i < b * block + kept; ++i) {
      d.max_reference = std::max(d.max_reference, double(std::fabs(expected.f32()[i])));
      d.max_error = std::max(d.max_error, std::fabs(double(expected.f32()[i]) - double(got.f32()[i])));
    }
  return d;
}

class CpuBf16Families : public ::testing::TestWithParam<std::string> {
 protected:
  void TearDown() override { ThreadPool::set_global_threads(0); }
};

TEST_P(CpuBf16Families, CloseToFp32AndBitIdenticalAcrossThreadCounts) {
  const std::string config = testing::synthetic_config(GetParam());
  LoadOptions bf16_options;
  bf16_options.backend.dtype = DType::BF16;
  auto bf16 = Model::synthetic(config, 5, bf16_options);
  auto fp32 = Model::synthetic(config, 5);
  const auto ids = testing::token_sequence(80, 4);  // past the synthetic sliding window of 64
  ThreadPool::set_global_threads(1);
  const Recorder::Taken ours = capture_prefill(*bf16, ids);
  ThreadPool::set_global_threads(2);
  testing::expect_bitwise_equal(ours, capture_prefill(*bf16, ids));
  const Recorder::Taken expected = capture_prefill(*fp32, ids);
  ASSERT_EQ(ours.sites.size(), expected.sites.size());
  const int64_t rows = rows_routed_alike(ours, expected);
  EXPECT_GE(rows, 8) << "the runs route differently from an early position on";
  double worst = 0;
  std::string worst_site;
  for (size_t i = 0; i < ours.sites.size(); ++i) {
    const auto& [site, got] = ours.sites[i];
    SCOPED_TRACE(site);
    ASSERT_EQ(site, expected.sites[i].first);
    ASSERT_EQ(got.shape(), expected.sites[i].second.shape());
    const testing::Deviation d = leading_rows_deviation(got, expected.sites[i].second, int64_t(ids.size()), rows);
    const double ulps = d.max_error / testing::bf16_ulp(d.max_reference);
    EXPECT_LE(ulps, kUlps) << "max |error| " << d.max_error << ", max |fp32| " << d.max_reference;
    if (ulps > worst) worst = ulps, worst_site = site;
  }
  std::printf("[cpu bf16 %s] worst site %s: %.2f bf16 ulps of its max |fp32 value| (over %lld of %zu positions)\n",
              GetParam().c_str(), worst_site.c_str(), worst, static_cast<long long>(rows), ids.size());
}

INSTANTIATE_TEST_SUITE_P(Engine, CpuBf16Families,
                         ::testing::Values("gemma2", "gemma3_text", "olmo", "olmo2", "qwen3_moe", "mixtral",
                                           "gpt_neox", "phi3", "phi3_longrope"));

}  // namespace
}  // namespace actcap
