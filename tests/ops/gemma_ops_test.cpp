// The ops Gemma adds (its RMSNorm, soft-capping, attention logit soft-capping): the CPU backend against a
// straightforward double-precision evaluation of HF's formulas, and the CUDA backend against the CPU backend
// where a GPU exists.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "../gpu_test_util.h"
#include "core/dtype.h"
#include "ops/backend.h"

namespace actcap::ops {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = uniform(rng);
  return v;
}

// The values as a backend of `dtype` stores them.
std::vector<float> rounded(std::vector<float> v, DType dtype) {
  if (dtype == DType::F32) return v;
  std::vector<uint16_t> bits(v.size());
  convert_from_f32(v.data(), dtype, bits.data(), v.size());
  convert_to_f32(bits.data(), dtype, v.data(), v.size());
  return v;
}

// Every |got - want| within tol * (|want| + rms(want)).
void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double sq = 0;
  for (double w : want) sq += w * w;
  const double rms = std::sqrt(sq / double(want.size()));
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * (std::fabs(want[i]) + rms)) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
  EXPECT_EQ(bad, 0u) << what;
}

std::vector<double> widened(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

const void* put(Backend& b, const std::vector<float>& v) {
  return b.weight(TensorView{v.data(), DType::F32, {int64_t(v.size())}});
}
Buffer writable(Backend& b, const std::vector<float>& v) {
  const int64_t n = int64_t(v.size());
  Buffer buffer = b.allocate(n);
  b.upload(v.data(), n, buffer.data());
  return buffer;
}

constexpr int64_t ROWS = 7, DIM = 96;

std::vector<float> gemma_rms_norm(Backend& b, const std::vector<float>& x, const std::vector<float>& w) {
  Buffer y = writable(b, x);
  b.gemma_rms_norm(y.data(), ROWS, DIM, put(b, w), 1e-6f, y.data());  // in place, as the model uses it
  return b.to_host(y.data(), ROWS * DIM);
}

std::vector<float> softcap(Backend& b, const std::vector<float>& x, float cap) {
  Buffer y = writable(b, x);
  b.softcap(y.data(), cap, int64_t(x.size()));
  return b.to_host(y.data(), int64_t(x.size()));
}

// One sequence of 9 new rows after 4 cached positions, grouped-query heads, a window of 5, soft-capping at 2
// (scores of magnitude up to ~10, so the cap bends most of them); returns z.
struct AttentionCase {
  int64_t heads = 4, kv_heads = 2, head_dim = 32, cached = 4, rows = 9, window = 5;
  float scale = 0.25f, cap = 2.0f;
  std::vector<float> q, keys, values;
  explicit AttentionCase(DType dtype) {
    const int64_t total = cached + rows;
    q = rounded(random_values(size_t(rows * heads * head_dim), 1, 1.0f), dtype);
    keys = rounded(random_values(size_t(total * kv_heads * head_dim), 2, 1.0f), dtype);
    values = rounded(random_values(size_t(total * kv_heads * head_dim), 3, 1.0f), dtype);
  }
  std::vector<float> run(Backend& b, float softcap) const {
    b.begin_batch(ForwardBatch{std::vector<int32_t>(size_t(rows), 0), {BatchSequence{0, rows, cached}}});
    AttentionShape shape{heads, kv_heads, head_dim, scale, window};
    shape.softcap = softcap;
    const AttentionSequence sequence{put(b, keys), put(b, values), nullptr};
    Buffer z = b.allocate(rows * heads * head_dim);
    b.attention(shape, put(b, q), std::span(&sequence, 1), z.data());
    return b.to_host(z.data(), rows * heads * head_dim);
  }
  // HF eager attention in double: scores, tanh cap, mask, softmax, weighted values.
  std::vector<double> expected() const {
    std::vector<double> z(size_t(rows * heads * head_dim), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t pos = cached + r, g = h / (heads / kv_heads);
        std::vector<double> p;
        double max = -1e300, sum = 0;
        for (int64_t j = pos - window + 1; j <= pos; ++j) {
          double s = 0;
          for (int64_t d = 0; d < head_dim; ++d)
            s += double(q[size_t((r * heads + h) * head_dim + d)]) * keys[size_t((j * kv_heads + g) * head_dim + d)];
          p.push_back(std::tanh(s * scale / cap) * cap);
          max = std::max(max, p.back());
        }
        for (double& v : p) sum += (v = std::exp(v - max));
        for (int64_t j = pos - window + 1, k = 0; j <= pos; ++j, ++k)
          for (int64_t d = 0; d < head_dim; ++d)
            z[size_t((r * heads + h) * head_dim + d)] +=
                p[size_t(k)] / sum * values[size_t((j * kv_heads + g) * head_dim + d)];
      }
    return z;
  }
};

TEST(GemmaOps, RmsNormMultipliesByOnePlusWeightInFp32) {
  const std::vector<float> x = random_values(size_t(ROWS * DIM), 4, 3.0f), w = random_values(size_t(DIM), 5, 1.0f);
  std::vector<double> want(x.size());
  for (int64_t r = 0; r < ROWS; ++r) {
    double sq = 0;
    for (int64_t i = 0; i < DIM; ++i) sq += double(x[size_t(r * DIM + i)]) * x[size_t(r * DIM + i)];
    const double rstd = 1.0 / std::sqrt(sq / DIM + 1e-6);
    for (int64_t i = 0; i < DIM; ++i) want[size_t(r * DIM + i)] = x[size_t(r * DIM + i)] * rstd * (1.0 + w[size_t(i)]);
  }
  auto cpu = make_cpu_backend();
  expect_close(gemma_rms_norm(*cpu, x, w), want, 1e-6, "gemma_rms_norm");
}

TEST(GemmaOps, SoftcapIsTanhScaled) {
  const std::vector<float> x = random_values(200, 6, 100.0f);
  std::vector<double> want;
  for (float v : x) want.push_back(std::tanh(v / 30.0) * 30.0);
  auto cpu = make_cpu_backend();
  expect_close(softcap(*cpu, x, 30.0f), want, 1e-6, "softcap");
}

TEST(GemmaOps, AttentionSoftcapsScoresBeforeTheMask) {
  auto cpu = make_cpu_backend();
  const AttentionCase c(DType::F32);
  const std::vector<double> want = c.expected();
  expect_close(c.run(*cpu, c.cap), want, 1e-5, "softcapped attention");
  // The cap matters at these scores: without it the result is another one.
  const std::vector<float> uncapped = c.run(*cpu, 0.0f);
  double diff = 0;
  for (size_t i = 0; i < want.size(); ++i) diff = std::max(diff, std::fabs(uncapped[i] - want[i]));
  EXPECT_GT(diff, 1e-2);
}

class GemmaOpsCuda : public testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    ACTCAP_SKIP_WITHOUT_GPU();
#ifdef ACTCAP_HAVE_CUDA
    cpu_ = make_cpu_backend();
    BackendOptions options;
    options.device = Device{Device::Type::Cuda, 0};
    options.dtype = GetParam();
    gpu_ = make_cuda_backend(options);
#endif
  }
  double tolerance() const { return GetParam() == DType::BF16 ? 3e-2 : GetParam() == DType::F16 ? 5e-3 : 1e-5; }
  std::vector<float> inputs(size_t n, uint32_t seed, float scale) const {
    return rounded(random_values(n, seed, scale), GetParam());
  }
  std::unique_ptr<Backend> cpu_, gpu_;
};

TEST_P(GemmaOpsCuda, MatchesTheCpuBackend) {
  const std::vector<float> x = inputs(size_t(ROWS * DIM), 4, 3.0f), w = inputs(size_t(DIM), 5, 1.0f);
  expect_close(gemma_rms_norm(*gpu_, x, w), widened(gemma_rms_norm(*cpu_, x, w)), tolerance(), "gemma_rms_norm");
  const std::vector<float> logits = inputs(500, 6, 100.0f);
  expect_close(softcap(*gpu_, logits, 30.0f), widened(softcap(*cpu_, logits, 30.0f)), tolerance(), "softcap");
  const AttentionCase c(GetParam());
  expect_close(c.run(*gpu_, c.cap), widened(c.run(*cpu_, c.cap)), 2 * tolerance(), "softcapped attention");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GemmaOpsCuda, testing::Values(DType::F32, DType::BF16, DType::F16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace actcap::ops
