// The ops the newer architectures added (Gemma, OLMo / OLMo 2, MoE) in the CPU backend's bf16, against
// straightforward references that round where HF's PyTorch code rounds: inputs as the backend holds them (bf16),
// fp32 arithmetic inside, each output bit for bit. The ops that round once must also differ from their
// Llama-style relatives, which round in between, or the test could not tell the two apart.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "ops/backend.h"

namespace actcap::ops {
namespace {

float rd(float v) { return round_to(DType::BF16, v); }

std::vector<float> random_bf16(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = rd(uniform(rng));
  return v;
}

// The fp32 result of x * rsqrt(mean(x^2) + eps) for row `r`, statistics as PyTorch's fp32 mean (in double here).
float rstd_of(const std::vector<float>& x, int64_t r, int64_t dim, float eps) {
  double sq = 0;
  for (int64_t i = 0; i < dim; ++i) sq += double(x[size_t(r * dim + i)]) * x[size_t(r * dim + i)];
  return float(1.0 / std::sqrt(double(float(sq / double(dim)) + eps)));
}

size_t count_differences(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

void expect_identical(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t wrong = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))) continue;
    if (++wrong <= 5) ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", expected " << want[i];
  }
  EXPECT_EQ(wrong, 0u) << what;
}

class CpuBf16NewOps : public ::testing::Test {
 protected:
  Buffer put(const std::vector<float>& v) {
    Buffer buffer = be_->allocate(int64_t(v.size()));
    be_->upload(v.data(), int64_t(v.size()), buffer.data());
    return buffer;
  }
  std::vector<float> read(const Buffer& buffer, size_t n) { return be_->to_host(buffer.data(), int64_t(n)); }
  const void* weight(const std::vector<float>& v) {
    return be_->weight(TensorView{v.data(), DType::F32, {int64_t(v.size())}});
  }

  std::unique_ptr<Backend> be_ = make_cpu_backend(DType::BF16);
};

TEST_F(CpuBf16NewOps, GemmaRmsNormRoundsOnceAfterOnePlusWeight) {
  const int64_t rows = 9, dim = 128;
  const auto x = random_bf16(size_t(rows * dim), 1, 3.0f), w = random_bf16(size_t(dim), 2, 0.8f);
  std::vector<float> want(x.size()), llama_style(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float rstd = rstd_of(x, r, dim, 1e-6f);
    for (int64_t i = 0; i < dim; ++i) {
      const size_t at = size_t(r * dim + i);
      want[at] = rd((x[at] * rstd) * (1.0f + w[size_t(i)]));
      llama_style[at] = rd(rd(x[at] * rstd) * rd(1.0f + w[size_t(i)]));
    }
  }
  Buffer in = put(x), out = be_->allocate(rows * dim);
  be_->gemma_rms_norm(in.data(), rows, dim, weight(w), 1e-6f, out.data());
  expect_identical(read(out, x.size()), want, "gemma_rms_norm");
  be_->gemma_rms_norm(in.data(), rows, dim, weight(w), 1e-6f, in.data());  // in place
  expect_identical(read(in, x.size()), want, "gemma_rms_norm in place");
  EXPECT_GT(count_differences(want, llama_style), x.size() / 20);
}

TEST_F(CpuBf16NewOps, SoftcapRoundsTheQuotientTheTanhAndTheProduct) {
  const auto x = random_bf16(5000, 3, 120.0f);
  const float cap = 30.0f;
  std::vector<float> want(x.size()), rounded_once(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    want[i] = rd(rd(std::tanh(rd(x[i] / cap))) * cap);
    rounded_once[i] = rd(std::tanh(x[i] / cap) * cap);
  }
  Buffer b = put(x);
  be_->softcap(b.data(), cap, int64_t(x.size()));
  expect_identical(read(b, x.size()), want, "softcap");
  EXPECT_GT(count_differences(want, rounded_once), x.size() / 100);
}

TEST_F(CpuBf16NewOps, RmsNormFp32WeightRoundsOnlyTheWeightedValue) {
  const int64_t rows = 9, dim = 128;
  const auto x = random_bf16(size_t(rows * dim), 4, 3.0f), w = random_bf16(size_t(dim), 5, 1.5f);
  std::vector<float> want(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float rstd = rstd_of(x, r, dim, 1e-6f);
    for (int64_t i = 0; i < dim; ++i) want[size_t(r * dim + i)] = rd(w[size_t(i)] * (x[size_t(r * dim + i)] * rstd));
  }
  Buffer a = put(x), b = put(x);
  be_->rms_norm_fp32_weight(a.data(), rows, dim, weight(w), 1e-6f, a.data());
  be_->rms_norm(b.data(), rows, dim, weight(w), 1e-6f, b.data());
  expect_identical(read(a, x.size()), want, "rms_norm_fp32_weight");
  EXPECT_GT(count_differences(want, read(b, x.size())), x.size() / 20) << "rms_norm rounds the same way";
}

TEST_F(CpuBf16NewOps, RotaryFp32TablesRoundsOnlyTheSum) {
  const int64_t heads = 3, hd = 64, half = hd / 2;
  ForwardBatch batch;  // rows 0-2 continue a cache of 5 positions, rows 3-6 start at position 0
  batch.token_ids = {1, 2, 3, 4, 5, 6, 7};
  batch.sequences = {BatchSequence{0, 3, 5}, BatchSequence{3, 4, 0}};
  const int64_t positions[] = {5, 6, 7, 0, 1, 2, 3};
  const auto x = random_bf16(size_t(batch.rows() * heads * hd), 6, 2.0f);
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = float(std::pow(10000.0, -double(2 * i) / double(hd)));
  std::vector<float> want = x;
  for (int64_t r = 0; r < batch.rows(); ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const float angle = float(positions[r]) * inv_freq[size_t(i)];
        const float c = std::cos(angle), s = std::sin(angle);
        const size_t at = size_t((r * heads + h) * hd + i);
        const float a = x[at], b = x[at + half];
        // Each product rounded to fp32 on its own, as PyTorch's separate multiplications do: volatile keeps the
        // compiler from fusing a product into the sum.
        volatile float ac = a * c, bs = b * s, bc = b * c, as = a * s;
        want[at] = rd(ac - bs);
        want[at + half] = rd(bc + as);
      }
  be_->begin_batch(batch);
  Buffer a = put(x), b = put(x);
  be_->rotary_fp32_tables(a.data(), heads, hd, be_->f32_constant(inv_freq));
  be_->rotary(b.data(), heads, hd, be_->f32_constant(inv_freq));
  expect_identical(read(a, x.size()), want, "rotary_fp32_tables");
  EXPECT_GT(count_differences(want, read(b, x.size())), x.size() / 20) << "rotary rounds the same way";
}

TEST_F(CpuBf16NewOps, ClampTakesTheBoundAndKeepsNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  auto x = random_bf16(3000, 7, 16.0f);
  x.insert(x.end(), {nan, inf, -inf, 8.0f, -8.0f, -0.0f});
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = x[i] < -8.0f ? -8.0f : x[i] > 8.0f ? 8.0f : x[i];
  Buffer b = put(x);
  be_->clamp(b.data(), 8.0f, int64_t(x.size()));
  const auto got = read(b, x.size());
  expect_identical(got, want, "clamp");
  EXPECT_TRUE(std::isnan(got[3000]));
  EXPECT_TRUE(std::signbit(got.back()));
  // A bound between two bf16 values becomes the bf16 value nearest to it.
  Buffer c = put({9.0f, -9.0f, 8.0f});
  be_->clamp(c.data(), 8.01f, 3);
  EXPECT_EQ(read(c, 3), (std::vector<float>{8.0f, -8.0f, 8.0f}));
}

TEST_F(CpuBf16NewOps, GatherAndScatterAddRowsRoundTheProductAndTheSum) {
  const int64_t width = 96, block_rows = 6;
  const auto block = random_bf16(size_t(block_rows * width), 8, 4.0f);
  const std::vector<int32_t> rows = {4, 0, 3};
  const std::vector<float> weights = {0.3f, 0.55f, 0.15f};  // fp32, as the router gives them
  Buffer src = put(block), gathered = be_->allocate(int64_t(rows.size()) * width);
  be_->gather_rows(src.data(), width, rows, gathered.data());
  std::vector<float> want_gathered;
  for (int32_t r : rows)
    want_gathered.insert(want_gathered.end(), block.begin() + r * width, block.begin() + (r + 1) * width);
  expect_identical(read(gathered, want_gathered.size()), want_gathered, "gather_rows");

  const auto expert_out = random_bf16(rows.size() * size_t(width), 9, 3.0f);
  Buffer out = put(expert_out), dst = put(block);
  be_->scatter_add_rows(out.data(), width, rows, weights, dst.data());
  std::vector<float> want = block, fused = block;
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t c = 0; c < width; ++c) {
      const size_t at = size_t(rows[i] * width + c);
      const float product = expert_out[i * size_t(width) + size_t(c)] * weights[i];
      want[at] = rd(want[at] + rd(product));
      fused[at] = rd(fused[at] + product);
    }
  expect_identical(read(dst, block.size()), want, "scatter_add_rows");
  EXPECT_GT(count_differences(want, fused), 0u);
}

// fp32 rounds nothing in between: the formulas of HF's fp32 run, bit for bit.
TEST(CpuFp32NewOps, GemmaRmsNormAndSoftcapKeepTheirFp32Bits) {
  auto be = make_cpu_backend();
  const int64_t rows = 5, dim = 64;
  const auto x = random_bf16(size_t(rows * dim), 10, 3.0f), w = random_bf16(size_t(dim), 11, 0.8f);
  std::vector<float> normed(x.size()), capped(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float rstd = rstd_of(x, r, dim, 1e-6f);
    for (int64_t i = 0; i < dim; ++i) {
      const size_t at = size_t(r * dim + i);
      normed[at] = (x[at] * rstd) * (1.0f + w[size_t(i)]);
      capped[at] = std::tanh(x[at] * 40.0f / 30.0f) * 30.0f;
    }
  }
  std::vector<float> y(x.size()), big(x.size());
  be->gemma_rms_norm(x.data(), rows, dim, w.data(), 1e-6f, y.data());
  expect_identical(y, normed, "fp32 gemma_rms_norm");
  for (size_t i = 0; i < x.size(); ++i) big[i] = x[i] * 40.0f;
  be->softcap(big.data(), 30.0f, int64_t(big.size()));
  expect_identical(big, capped, "fp32 softcap");
}

}  // namespace
}  // namespace actcap::ops
