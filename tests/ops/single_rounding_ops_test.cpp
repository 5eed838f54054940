// rms_norm_fp32_weight and rotary_fp32_tables (OLMo 2's roundings). In fp32 they are rms_norm and rotary bit for
// bit. In bf16/fp16 on the GPU each output must be HF's fp32 result rounded once (computed here on the host), which
// rms_norm / rotary (rounding the normalised value, cos/sin and each product) are not.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../gpu_test_util.h"
#include "core/dtype.h"
#include "core/tensor.h"
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

// Each value as a backend of `dtype` stores it (round to nearest even).
std::vector<float> rounded(std::vector<float> v, DType dtype) {
  if (dtype == DType::F32) return v;
  std::vector<uint16_t> bits(v.size());
  convert_from_f32(v.data(), dtype, bits.data(), v.size());
  convert_to_f32(bits.data(), dtype, v.data(), v.size());
  return v;
}

// Two sequences continuing caches of different lengths, so rows sit at different positions.
ForwardBatch two_sequence_batch() {
  ForwardBatch batch;
  batch.sequences = {BatchSequence{0, 4, 0}, BatchSequence{4, 9, 30}};
  batch.token_ids.assign(13, 0);
  return batch;
}

int64_t position_of_row(const ForwardBatch& batch, int64_t row) {
  for (const BatchSequence& s : batch.sequences)
    if (row >= s.first_row && row < s.first_row + s.rows) return s.first_position + row - s.first_row;
  return -1;
}

std::vector<float> inverse_frequencies(int64_t head_dim) {
  std::vector<float> inv_freq(size_t(head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, float(2 * i) / float(head_dim));
  return inv_freq;
}

// Writable backend memory holding v.
Buffer writable(Backend& b, const std::vector<float>& v) {
  const int64_t n = int64_t(v.size());
  Buffer buffer = b.allocate(n);
  b.upload(v.data(), n, buffer.data());
  return buffer;
}

const void* put(Backend& b, const std::vector<float>& v) {
  return b.weight(TensorView{v.data(), DType::F32, {int64_t(v.size())}});
}

// HF Olmo2RMSNorm in fp32 on the host: weight * (x * rsqrt(mean(x^2) + eps)), statistics in double as the backends.
std::vector<float> olmo2_rms_norm(const std::vector<float>& x, int64_t rows, int64_t dim, const std::vector<float>& w,
                                  float eps) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x.data() + r * dim;
    double sq = 0;
    for (int64_t i = 0; i < dim; ++i) sq += double(in[i]) * in[i];
    const float rstd = float(1.0 / std::sqrt(double(float(sq / double(dim)) + eps)));
    for (int64_t i = 0; i < dim; ++i) y[size_t(r * dim + i)] = w[size_t(i)] * (in[i] * rstd);
  }
  return y;
}

// HF olmo2 apply_rotary_pos_emb in fp32: x * cos + rotate_half(x) * sin with fp32 cos/sin.
std::vector<float> olmo2_rotary(std::vector<float> x, const ForwardBatch& batch, int64_t heads, int64_t head_dim,
                                const std::vector<float>& inv_freq) {
  const int64_t half = head_dim / 2;
  for (int64_t r = 0; r < batch.rows(); ++r) {
    const float position = float(position_of_row(batch, r));
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x.data() + (r * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float angle = position * inv_freq[size_t(i)];
        const float c = std::cos(angle), s = std::sin(angle), a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
  }
  return x;
}

TEST(SingleRoundingOps, AreRmsNormAndRotaryInFp32) {
  auto cpu = make_cpu_backend();
  const int64_t rows = 13, dim = 48, heads = 4, head_dim = 12;
  const std::vector<float> x = random_values(size_t(rows * dim), 1, 3.0f), w = random_values(size_t(dim), 2, 1.5f);
  Buffer a = writable(*cpu, x), b = writable(*cpu, x);
  cpu->rms_norm(a.data(), rows, dim, put(*cpu, w), 1e-5f, a.data());
  cpu->rms_norm_fp32_weight(b.data(), rows, dim, put(*cpu, w), 1e-5f, b.data());
  EXPECT_EQ(cpu->to_host(a.data(), rows * dim), cpu->to_host(b.data(), rows * dim));
  EXPECT_EQ(cpu->to_host(b.data(), rows * dim), olmo2_rms_norm(x, rows, dim, w, 1e-5f));

  const ForwardBatch batch = two_sequence_batch();
  const std::vector<float> inv_freq = inverse_frequencies(head_dim);
  cpu->begin_batch(batch);
  Buffer c = writable(*cpu, x), d = writable(*cpu, x);
  cpu->rotary(c.data(), heads, head_dim, cpu->f32_constant(inv_freq));
  cpu->rotary_fp32_tables(d.data(), heads, head_dim, cpu->f32_constant(inv_freq));
  EXPECT_EQ(cpu->to_host(c.data(), rows * dim), cpu->to_host(d.data(), rows * dim));
  EXPECT_EQ(cpu->to_host(d.data(), rows * dim), olmo2_rotary(x, batch, heads, head_dim, inv_freq));
}

#ifdef ACTCAP_HAVE_CUDA

// The values the GPU returns against HF's fp32 result rounded once: all but a few identical (the GPU's cosf and
// summation order may move an fp32 result across a rounding boundary), none more than one unit in the last
// place; and the Llama-style op, which rounds in between, must differ from it in many places.
void expect_rounded_once(const std::vector<float>& got, const std::vector<float>& llama_style,
                         const std::vector<float>& fp32_result, DType dtype, const std::string& what) {
  const std::vector<float> expected = rounded(fp32_result, dtype);
  ASSERT_EQ(got.size(), expected.size());
  const int mantissa_bits = dtype == DType::BF16 ? 8 : 11;
  size_t identical = 0, llama_identical = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double ulp = std::ldexp(1.0, std::ilogb(std::fabs(expected[i]) + 1e-30) - (mantissa_bits - 1));
    EXPECT_LE(std::fabs(double(got[i]) - expected[i]), ulp) << what << "[" << i << "]";
    identical += got[i] == expected[i];
    llama_identical += llama_style[i] == expected[i];
  }
  const double n = double(expected.size());
  EXPECT_GE(double(identical) / n, 0.99) << what << ": " << identical << " of " << n << " identical";
  EXPECT_LE(double(llama_identical) / n, 0.97) << what << ": the Llama-style op rounds the same way";
}

class CudaSingleRounding : public testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    ACTCAP_SKIP_WITHOUT_GPU();
    BackendOptions options;
    options.device = Device{Device::Type::Cuda, 0};
    options.dtype = GetParam();
    gpu_ = make_cuda_backend(options);
  }
  std::unique_ptr<Backend> gpu_;
};

TEST_P(CudaSingleRounding, RmsNormMultipliesTheWeightBeforeRounding) {
  const DType dtype = GetParam();
  const int64_t rows = 40, dim = 384;
  const std::vector<float> x = rounded(random_values(size_t(rows * dim), 3, 3.0f), dtype);
  const std::vector<float> w = rounded(random_values(size_t(dim), 4, 1.5f), dtype);
  Buffer a = writable(*gpu_, x), b = writable(*gpu_, x);
  gpu_->rms_norm_fp32_weight(a.data(), rows, dim, put(*gpu_, w), 1e-6f, a.data());
  gpu_->rms_norm(b.data(), rows, dim, put(*gpu_, w), 1e-6f, b.data());
  expect_rounded_once(gpu_->to_host(a.data(), rows * dim), gpu_->to_host(b.data(), rows * dim),
                      olmo2_rms_norm(x, rows, dim, w, 1e-6f), dtype, "rms_norm_fp32_weight");
}

TEST_P(CudaSingleRounding, RotaryKeepsCosSinInFp32) {
  const DType dtype = GetParam();
  const ForwardBatch batch = two_sequence_batch();
  const int64_t heads = 8, head_dim = 64, n = batch.rows() * heads * head_dim;
  const std::vector<float> inv_freq = inverse_frequencies(head_dim);
  const std::vector<float> x = rounded(random_values(size_t(n), 5, 2.0f), dtype);
  gpu_->begin_batch(batch);
  Buffer a = writable(*gpu_, x), b = writable(*gpu_, x);
  gpu_->rotary_fp32_tables(a.data(), heads, head_dim, gpu_->f32_constant(inv_freq));
  gpu_->rotary(b.data(), heads, head_dim, gpu_->f32_constant(inv_freq));
  expect_rounded_once(gpu_->to_host(a.data(), n), gpu_->to_host(b.data(), n),
                      olmo2_rotary(x, batch, heads, head_dim, inv_freq), dtype, "rotary_fp32_tables");
}

INSTANTIATE_TEST_SUITE_P(HalfPrecision, CudaSingleRounding, testing::Values(DType::BF16, DType::F16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

#endif  // ACTCAP_HAVE_CUDA

}  // namespace
}  // namespace actcap::ops
