// The mixture-of-experts row ops (gather_rows, scatter_add_rows) against plain loops: on the CPU backend, and on
// CUDA in each dtype (skipped without a GPU). Each result element is one rounding of an exact value (a product,
// then a sum), so every backend must reproduce the reference bit for bit.
#include <gtest/gtest.h>

#include <cstdint>
#include <iomanip>
#include <random>
#include <vector>

#include "../gpu_test_util.h"
#include "core/dtype.h"
#include "ops/backend.h"

namespace actcap::ops {
namespace {

constexpr int64_t kWidth = 37;
constexpr int64_t kSourceRows = 9;

std::vector<float> values(size_t n, uint32_t seed, DType dtype) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = round_to(dtype, uniform(rng));
  return v;
}

// Backend memory holding v (converted to the backend's dtype).
Buffer put(Backend& b, const std::vector<float>& v) {
  Buffer buffer = b.allocate(int64_t(v.size()));
  b.upload(v.data(), int64_t(v.size()), buffer.data());
  return buffer;
}

void check_expert_rows(Backend& b) {
  const DType dtype = b.dtype();
  const std::vector<float> source = values(size_t(kSourceRows * kWidth), 1, dtype);
  const std::vector<int32_t> rows = {7, 0, 3, 8};  // any order, each row once
  const std::vector<float> weights = {round_to(dtype, 0.6f), round_to(dtype, 0.3f), 1.0f, round_to(dtype, -0.45f)};

  Buffer src = put(b, source), gathered = b.allocate(int64_t(rows.size()) * kWidth);
  b.gather_rows(src.data(), kWidth, rows, gathered.data());
  const std::vector<float> got_gather = b.to_host(gathered.data(), int64_t(rows.size()) * kWidth);
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t c = 0; c < kWidth; ++c)
      ASSERT_EQ(got_gather[i * kWidth + size_t(c)], source[size_t(rows[i] * kWidth + c)]) << "row " << i << ", " << c;

  // dst starts from values of its own; rows not listed must stay untouched.
  const std::vector<float> start = values(size_t(kSourceRows * kWidth), 2, dtype);
  const std::vector<float> expert_out = values(rows.size() * kWidth, 3, dtype);
  Buffer dst = put(b, start), out = put(b, expert_out);
  std::vector<int32_t> host_rows = rows;
  std::vector<float> host_weights = weights;
  b.scatter_add_rows(out.data(), kWidth, host_rows, host_weights, dst.data());
  host_rows.assign(host_rows.size(), 1);  // the call copied them
  host_weights.assign(host_weights.size(), 100.0f);
  const std::vector<float> got = b.to_host(dst.data(), kSourceRows * kWidth);

  std::vector<float> expected = start;
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t c = 0; c < kWidth; ++c) {
      // A double holds a product or sum of two floats closely enough that rounding it once more is exact.
      float& e = expected[size_t(rows[i] * kWidth + c)];
      const float product = round_to(dtype, float(double(expert_out[i * kWidth + size_t(c)]) * weights[i]));
      e = round_to(dtype, float(double(e) + product));
    }
  for (size_t i = 0; i < expected.size(); ++i)
    ASSERT_EQ(got[i], expected[i]) << std::setprecision(9) << got[i] << " vs " << expected[i] << ": "
                                   << dtype_name(dtype) << " element " << i << " (row " << i / kWidth << ")";
}

TEST(ExpertRows, CpuMatchesPlainLoops) { check_expert_rows(*make_cpu_backend()); }
TEST(ExpertRows, CpuBf16MatchesPlainLoops) { check_expert_rows(*make_cpu_backend(DType::BF16)); }

TEST(ExpertRows, EmptyRowListsDoNothing) {
  auto b = make_cpu_backend();
  Buffer dst = put(*b, {1.0f, 2.0f});
  b->gather_rows(nullptr, 2, {}, nullptr);
  b->scatter_add_rows(nullptr, 2, {}, {}, dst.data());
  EXPECT_EQ(b->to_host(dst.data(), 2), (std::vector<float>{1.0f, 2.0f}));
}

#ifdef ACTCAP_HAVE_CUDA
class ExpertRowsCuda : public testing::TestWithParam<DType> {};

TEST_P(ExpertRowsCuda, MatchesPlainLoops) {
  ACTCAP_SKIP_WITHOUT_GPU();
  BackendOptions options;
  options.device = Device{Device::Type::Cuda, 0};
  options.dtype = GetParam();
  check_expert_rows(*make_cuda_backend(options));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ExpertRowsCuda, testing::Values(DType::F32, DType::BF16, DType::F16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });
#endif

}  // namespace
}  // namespace actcap::ops
