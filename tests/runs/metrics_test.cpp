// analysis/metrics.h against values worked out by hand, and its exactness for a model against itself.
#include "analysis/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/thread_pool.h"
#include "../test_util.h"

namespace actcap {
namespace {

Tensor tensor(Shape shape, std::initializer_list<float> values) {
  Tensor t(std::move(shape));
  std::copy(values.begin(), values.end(), t.f32());
  return t;
}

TEST(Metrics, LogitsAgainstThemselvesGiveExactlyZeroKl) {
  const Tensor logits = tensor({2, 3}, {1.5f, -2.0f, 0.25f, 30.0f, 29.0f, -100.0f});
  const std::vector<int32_t> tokens = {0, 2};
  const LogitMetrics m = logit_metrics(logits.view(), logits.view(), tokens);
  EXPECT_EQ(m.kl, (std::vector<double>{0.0, 0.0}));
  EXPECT_EQ(m.surprisal_a, m.surprisal_b);
}

TEST(Metrics, KlAndSurprisalMatchTheirDefinitions) {
  // Position 0: p = softmax(0, log 3) = (1/4, 3/4); q = softmax(0, 0) = (1/2, 1/2).
  const Tensor a = tensor({2, 2}, {0.0f, float(std::log(3.0)), 0.0f, 0.0f});
  const Tensor b = tensor({2, 2}, {0.0f, 0.0f, 5.0f, 5.0f});
  const std::vector<int32_t> tokens = {0, 1};
  const LogitMetrics m = logit_metrics(a.view(), b.view(), tokens);
  const double p0 = 1.0 / (1.0 + std::exp(double(float(std::log(3.0))))), p1 = 1 - p0;
  EXPECT_NEAR(m.kl[0], p0 * std::log(p0 / 0.5) + p1 * std::log(p1 / 0.5), 1e-15);
  EXPECT_NEAR(m.kl[1], 0.0, 1e-15);                   // both uniform
  ASSERT_EQ(m.surprisal_a.size(), 1u);                // no next token after the last position
  EXPECT_NEAR(m.surprisal_a[0], -std::log(p1), 1e-15);  // token 1 follows position 0
  EXPECT_NEAR(m.surprisal_b[0], std::log(2.0), 1e-15);
}

TEST(Metrics, LogSoftmaxIsStableForHugeLogits) {
  const Tensor a = tensor({1, 2}, {1e30f, 0.0f}), b = tensor({1, 2}, {0.0f, 1e30f});
  const std::vector<int32_t> tokens = {0};
  const LogitMetrics m = logit_metrics(a.view(), b.view(), tokens);
  EXPECT_TRUE(std::isfinite(m.kl[0]));
  EXPECT_NEAR(m.kl[0], double(1e30f), 1e30 * 1e-12);  // p = (1, 0), log q(0) = -1e30
}

TEST(Metrics, ValuesDoNotDependOnTheThreadCount) {
  Tensor a({64, 1000}), b({64, 1000});
  for (int64_t i = 0; i < a.numel(); ++i) {
    a.f32()[i] = float(std::sin(double(i)));
    b.f32()[i] = float(std::cos(double(i) * 0.7));
  }
  std::vector<int32_t> tokens(64);
  for (size_t t = 0; t < tokens.size(); ++t) tokens[t] = int32_t(t * 13 % 1000);
  ThreadPool::set_global_threads(1);
  const LogitMetrics one = logit_metrics(a.view(), b.view(), tokens);
  ThreadPool::set_global_threads(4);
  const LogitMetrics four = logit_metrics(a.view(), b.view(), tokens);
  ThreadPool::set_global_threads(0);
  EXPECT_EQ(one.kl, four.kl);
  EXPECT_EQ(one.surprisal_a, four.surprisal_a);
  EXPECT_EQ(one.surprisal_b, four.surprisal_b);
  EXPECT_GT(one.kl[5], 0);
}

TEST(Metrics, CosineIsExactlyOneForEqualVectorsAndLeavesOutZeroRows) {
  const Tensor a = tensor({3, 3}, {0.1f, -7.3f, 2.9f, 0, 0, 0, 1e-3f, 5.0f, -0.5f});
  EXPECT_EQ(mean_cosine(a.view(), a.view()), 1.0);
  const Tensor b = tensor({3, 3}, {-0.1f, 7.3f, -2.9f, 1, 1, 1, 1e-3f, 5.0f, -0.5f});
  EXPECT_NEAR(*mean_cosine(a.view(), b.view()), 0.0, 1e-15);  // -1 and 1; the zero row is left out
  const Tensor narrower = tensor({3, 2}, {1, 2, 3, 4, 5, 6});
  EXPECT_FALSE(mean_cosine(a.view(), narrower.view()).has_value());
}

TEST(Metrics, RmsAndMean) {
  const Tensor h = tensor({2, 2}, {3, -3, 3, -3});
  EXPECT_EQ(rms(h.view()), 3.0);
  const std::vector<double> values = {1, 2, 6};
  EXPECT_EQ(mean_of(values), 3.0);
  EXPECT_FALSE(mean_of(std::span<const double>()).has_value());
}

TEST(Metrics, MismatchedLogitsAreRefused) {
  const Tensor a = tensor({1, 3}, {0, 0, 0}), b = tensor({1, 2}, {0, 0});
  const std::vector<int32_t> tokens = {0};
  test::expect_one_line_error([&] { logit_metrics(a.view(), b.view(), tokens); }, {"[1, 3]", "[1, 2]"});
}

}  // namespace
}  // namespace actcap
