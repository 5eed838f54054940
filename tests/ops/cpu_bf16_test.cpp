// The CPU backend in bf16 against straightforward references that round to bf16 where HF's PyTorch code rounds
// a tensor: each op's inputs as the backend holds them (bf16), fp32 arithmetic inside, the output rounded. Ops
// whose fp32 arithmetic is the same sequence of operations here must match bit for bit; attention sums dot
// products in another order, so a rounding may flip by one ulp now and then.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/backend.h"

namespace actcap::ops {
namespace {

float rd(float v) { return round_to(DType::BF16, v); }

std::vector<float> random_bf16(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = rd(uniform(rng));
  return v;
}

// Bits of a bf16 value as an integer on a monotonic scale, for distances in ulps.
int64_t ordinal(float v) {
  const uint32_t bits = uint32_t(f32_to_bf16(v)) << 16;
  return bits >> 31 ? -int64_t(bits & 0x7fffffffu) : int64_t(bits);
}

// Every value within `max_ulps` bf16 ulps of its reference, and at most `max_flipped` of them not identical.
void expect_bf16(const std::vector<float>& got, const std::vector<float>& want, const std::string& what,
                 int64_t max_ulps = 0, double max_flipped = 0.0) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t flipped = 0, far = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i], rd(got[i])) << what << "[" << i << "] is not a bf16 value";
    if (got[i] == want[i]) continue;
    ++flipped;
    if (std::llabs(ordinal(got[i]) - ordinal(want[i])) > max_ulps) {
      if (far < 5) ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", expected " << want[i];
      ++far;
    }
  }
  EXPECT_EQ(far, 0u) << what;
  EXPECT_LE(double(flipped), max_flipped * double(want.size())) << what << ": " << flipped << " of " << want.size();
}

class CpuBf16 : public ::testing::Test {
 protected:
  void TearDown() override { ThreadPool::set_global_threads(0); }

  // Backend memory holding v (rounded to bf16).
  Buffer put(const std::vector<float>& v) {
    Buffer buffer = be_->allocate(int64_t(v.size()));
    be_->upload(v.data(), int64_t(v.size()), buffer.data());
    return buffer;
  }
  std::vector<float> read(const Buffer& buffer, size_t n) { return be_->to_host(buffer.data(), int64_t(n)); }
  const float* weight(const std::vector<float>& v) {
    return static_cast<const float*>(be_->weight(TensorView{v.data(), DType::F32, {int64_t(v.size())}}));
  }

  std::unique_ptr<Backend> be_ = make_cpu_backend(DType::BF16);
};

TEST_F(CpuBf16, HoldsBf16AndRoundsUploadsToNearestEven) {
  EXPECT_EQ(be_->dtype(), DType::BF16);
  EXPECT_EQ(be_->allocate(10).bytes(), 20u);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: to the even one, 1; 1 + 3 * 2^-8 halfway up to 1 + 2^-6.
  // 3.4e38 is past the midpoint between bf16's largest value and 2^128: infinity.
  const std::vector<float> in = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(1.0f + 0x1p-9f), 3.4e38f, inf, -0.0f, nan};
  const std::vector<float> want = {1.0f, 1.0f + 0x1p-6f, -1.0f, inf, inf, -0.0f, nan};
  Buffer b = put(in);
  const std::vector<float> got = read(b, in.size());
  for (size_t i = 0; i + 1 < in.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;
  EXPECT_TRUE(std::signbit(got[5]));
  EXPECT_TRUE(std::isnan(got[6]));
  be_->capture(b.data(), int64_t(in.size()), [&](const float* host) {
    for (size_t i = 0; i + 1 < in.size(); ++i) EXPECT_EQ(host[i], got[i]) << i;
  });
}

TEST_F(CpuBf16, Fp16IsRefusedWithTheDtypesItHas) {
  try {
    make_cpu_backend(DType::F16);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp32 or bf16"), std::string::npos) << e.what();
  }
  BackendOptions options;
  options.dtype = DType::BF16;
  EXPECT_EQ(make_backend(options)->dtype(), DType::BF16);
}

TEST_F(CpuBf16, AddScaleAndCopyRoundTheFp32Result) {
  const size_t n = 1000;
  const auto a = random_bf16(n, 1, 4.0f), b = random_bf16(n, 2, 0.01f);
  Buffer x = put(a), y = put(b), out = be_->allocate(int64_t(n));
  be_->add(x.data(), y.data(), out.data(), int64_t(n));
  std::vector<float> sum(n), scaled(n);
  for (size_t i = 0; i < n; ++i) sum[i] = rd(a[i] + b[i]);
  expect_bf16(read(out, n), sum, "add");
  be_->scale(out.data(), 0.125f * 3, int64_t(n));
  for (size_t i = 0; i < n; ++i) scaled[i] = rd(sum[i] * 0.375f);
  expect_bf16(read(out, n), scaled, "scale");
  Buffer copy = be_->allocate(int64_t(n));
  be_->copy_rows(copy.data(), 10, out.data(), 20, 10, 50);  // every other run of 10
  const auto copied = read(copy, 500);
  for (size_t i = 0; i < 500; ++i) EXPECT_EQ(copied[i], scaled[(i / 10) * 20 + i % 10]) << i;
}

// HF's activations in bf16: gelu_new is a chain of tensor ops, each rounded; the others single kernels.
float reference_activation(Activation activation, float x) {
  const float k = float(std::sqrt(2.0 / std::numbers::pi));
  switch (activation) {
    case Activation::Silu:
      return rd(x / (1.0f + std::exp(-x)));
    case Activation::GeluNew: {
      const float inner = rd(k * rd(x + rd(0.044715f * rd(x * x * x))));
      return rd(rd(0.5f * x) * rd(1.0f + rd(std::tanh(inner))));
    }
    case Activation::GeluPytorchTanh:
      return rd(0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * (x * x * x)))));
    case Activation::Gelu:
      return rd(0.5f * x * (1.0f + std::erf(x * float(1.0 / std::numbers::sqrt2))));
    case Activation::Relu:
      return x > 0 ? x : 0.0f;
  }
  return x;
}

TEST_F(CpuBf16, ActivationsRoundWherePyTorchRounds) {
  const size_t n = 4000;
  const auto gate = random_bf16(n, 3, 6.0f), up = random_bf16(n, 4, 2.0f);
  for (Activation activation :
       {Activation::Silu, Activation::GeluNew, Activation::GeluPytorchTanh, Activation::Gelu, Activation::Relu}) {
    const std::string name = std::to_string(int(activation));
    Buffer x = put(gate), u = put(up), out = be_->allocate(int64_t(n));
    be_->gated_activate(activation, x.data(), u.data(), out.data(), int64_t(n));
    be_->activate(activation, x.data(), int64_t(n));
    std::vector<float> act(n), gated(n);
    for (size_t i = 0; i < n; ++i) {
      act[i] = reference_activation(activation, gate[i]);
      gated[i] = rd(act[i] * up[i]);
    }
    expect_bf16(read(x, n), act, "activate " + name);
    expect_bf16(read(out, n), gated, "gated_activate " + name);
  }
}

TEST_F(CpuBf16, NormsComputeInFp32AndRoundOnceOrWhereHfDoes) {
  const int64_t rows = 7, dim = 96;
  const auto x = random_bf16(size_t(rows * dim), 5, 3.0f), w = random_bf16(size_t(dim), 6, 2.0f),
             bias = random_bf16(size_t(dim), 7, 0.5f);
  const float eps = 1e-5f;
  std::vector<float> rms(x.size()), ln(x.size()), ln_no_bias(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x.data() + r * dim;
    double sum = 0, sq = 0, centred = 0;
    for (int64_t i = 0; i < dim; ++i) sum += in[i], sq += double(in[i]) * in[i];
    const double mean = sum / double(dim);
    for (int64_t i = 0; i < dim; ++i) centred += (in[i] - mean) * (in[i] - mean);
    // RMSNorm: weight * (x * rsqrt(mean(x^2) + eps)).to(bf16)
    const float rms_rstd = float(1.0 / std::sqrt(double(float(sq / double(dim)) + eps)));
    // LayerNorm: one bf16 kernel, fp32 inside
    const float rstd = float(1.0 / std::sqrt(centred / double(dim) + double(eps))), m = float(mean);
    for (int64_t i = 0; i < dim; ++i) {
      const size_t at = size_t(r * dim + i);
      rms[at] = rd(w[size_t(i)] * rd(in[i] * rms_rstd));
      const float v = (in[i] - m) * rstd * w[size_t(i)];
      ln[at] = rd(v + bias[size_t(i)]);
      ln_no_bias[at] = rd(v);
    }
  }
  Buffer in = put(x), out = be_->allocate(rows * dim);
  be_->rms_norm(in.data(), rows, dim, weight(w), eps, out.data());
  expect_bf16(read(out, x.size()), rms, "rms_norm");
  be_->layer_norm(in.data(), rows, dim, weight(w), weight(bias), eps, out.data());
  expect_bf16(read(out, x.size()), ln, "layer_norm");
  be_->layer_norm(in.data(), rows, dim, weight(w), nullptr, eps, in.data());  // in place
  expect_bf16(read(in, x.size()), ln_no_bias, "layer_norm without bias, in place");
}

// Two sequences: rows 0-2 continue a cache of 5 positions, rows 3-6 start at position 0.
ForwardBatch two_sequences() {
  ForwardBatch batch;
  batch.token_ids = {1, 2, 3, 4, 5, 6, 7};
  batch.sequences = {BatchSequence{0, 3, 5}, BatchSequence{3, 4, 0}};
  return batch;
}

TEST_F(CpuBf16, RotaryCastsCosAndSinToBf16AndRoundsEachProduct) {
  const int64_t heads = 3, hd = 16, half = hd / 2;
  const ForwardBatch batch = two_sequences();
  const int64_t positions[] = {5, 6, 7, 0, 1, 2, 3};
  const auto x = random_bf16(size_t(batch.rows() * heads * hd), 8, 2.0f);
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = float(std::pow(10000.0, -double(2 * i) / double(hd)));
  std::vector<float> want = x;
  for (int64_t r = 0; r < batch.rows(); ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const float angle = float(positions[r]) * inv_freq[size_t(i)];
        const float c = rd(std::cos(angle)), s = rd(std::sin(angle));
        const size_t at = size_t((r * heads + h) * hd + i);
        const float a = x[at], b = x[at + half];
        want[at] = rd(rd(a * c) - rd(b * s));
        want[at + half] = rd(rd(b * c) + rd(a * s));
      }
  be_->begin_batch(batch);
  Buffer buffer = put(x);
  be_->rotary(buffer.data(), heads, hd, be_->f32_constant(inv_freq));
  expect_bf16(read(buffer, x.size()), want, "rotary");
}

// HF eager attention in bf16, written out: rd(q·k), rd(* scale), rd(/ divisor), + mask; softmax in fp32,
// rounded; rd(p @ v). Dot products in double.
struct AttentionReference {
  std::vector<float> z, pattern;
};

AttentionReference reference_attention(const AttentionShape& s, const std::vector<float>& q, int64_t rows,
                                       int64_t first, const std::vector<float>& keys,
                                       const std::vector<float>& values) {
  const int64_t H = s.heads, hd = s.head_dim, total = first + rows, G = s.heads / s.kv_heads;
  AttentionReference out{std::vector<float>(size_t(rows * H * hd)), std::vector<float>(size_t(rows * H * total))};
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t pos = first + r, g = h / G;
      std::vector<float> score(size_t(total), -std::numeric_limits<float>::infinity());
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j <= pos; ++j) {
        if (s.sliding_window > 0 && j <= pos - s.sliding_window) continue;
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d)
          dot += double(q[size_t((r * H + h) * hd + d)]) * keys[size_t((j * s.kv_heads + g) * hd + d)];
        float v = rd(rd(float(dot)) * s.scale);
        for (float divisor : s.divisors)
          if (divisor > 0) v = rd(v / divisor);
        score[size_t(j)] = v;
        max = std::max(max, v);
      }
      double denominator = 0;
      for (float v : score) denominator += std::exp(double(v) - max);
      for (int64_t j = 0; j < total; ++j) {
        const float p = rd(float(std::exp(double(score[size_t(j)]) - max) / denominator));
        out.pattern[size_t((r * H + h) * total + j)] = p;
        for (int64_t d = 0; d < hd; ++d)
          out.z[size_t((r * H + h) * hd + d)] += p * values[size_t((j * s.kv_heads + g) * hd + d)];
      }
      for (int64_t d = 0; d < hd; ++d) {
        float& z = out.z[size_t((r * H + h) * hd + d)];
        z = rd(z);
      }
    }
  return out;
}

TEST_F(CpuBf16, AttentionRoundsScoresProbabilitiesAndOutputs) {
  AttentionShape shape{4, 2, 32, float(1.0 / std::sqrt(32.0)), 0, {2.0f, 3.0f}};
  const ForwardBatch batch = two_sequences();
  const int64_t width = shape.heads * shape.head_dim, kv_width = shape.kv_heads * shape.head_dim;
  for (int64_t window : {int64_t(0), int64_t(3)}) {
    shape.sliding_window = window;
    SCOPED_TRACE(window);
    const auto q = random_bf16(size_t(batch.rows() * width), 9, 3.0f);
    std::vector<float> z_want(q.size());
    std::vector<std::vector<float>> pattern_want;
    std::vector<Buffer> keys, values, patterns;
    std::vector<AttentionSequence> sequences;
    for (const BatchSequence& s : batch.sequences) {
      const int64_t total = s.first_position + s.rows;
      const auto k = random_bf16(size_t(total * kv_width), uint32_t(10 + total), 3.0f);
      const auto v = random_bf16(size_t(total * kv_width), uint32_t(20 + total), 2.0f);
      const std::vector<float> q_rows(q.begin() + s.first_row * width, q.begin() + (s.first_row + s.rows) * width);
      AttentionReference ref = reference_attention(shape, q_rows, s.rows, s.first_position, k, v);
      std::copy(ref.z.begin(), ref.z.end(), z_want.begin() + s.first_row * width);
      pattern_want.push_back(ref.pattern);
      keys.push_back(put(k));
      values.push_back(put(v));
      patterns.push_back(be_->allocate(int64_t(ref.pattern.size())));
      sequences.push_back(AttentionSequence{keys.back().data(), values.back().data(), patterns.back().data()});
    }
    be_->begin_batch(batch);
    Buffer qb = put(q), z = be_->allocate(int64_t(q.size()));
    be_->attention(shape, qb.data(), sequences, z.data());
    expect_bf16(read(z, q.size()), z_want, "z", 1, 0.01);
    for (size_t i = 0; i < patterns.size(); ++i)
      expect_bf16(read(patterns[i], pattern_want[i].size()), pattern_want[i], "pattern", 1, 0.01);
  }
}

// One sequence's ops, its rows in a batch or alone, with 1 to 3 threads: the same bits.
TEST_F(CpuBf16, ResultsDoNotDependOnThreadsOrTheBatch) {
  const AttentionShape shape{4, 2, 16, 0.25f, 0, {0.0f, 0.0f}};
  const int64_t width = shape.heads * shape.head_dim, kv_width = shape.kv_heads * shape.head_dim, rows = 40;
  const auto q = random_bf16(size_t(rows * width), 30, 3.0f), k = random_bf16(size_t(rows * kv_width), 31, 3.0f),
             v = random_bf16(size_t(rows * kv_width), 32, 2.0f), w = random_bf16(size_t(width), 33);
  std::vector<float> inv_freq(static_cast<size_t>(shape.head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i) inv_freq[i] = float(std::pow(1e4, -2.0 * double(i) / 16.0));
  auto run = [&](int threads, int64_t first_row) {
    ThreadPool::set_global_threads(threads);
    ForwardBatch batch;
    if (first_row > 0) batch.sequences.push_back(BatchSequence{0, first_row, 0});
    batch.sequences.push_back(BatchSequence{first_row, rows, 0});
    batch.token_ids.assign(size_t(first_row + rows), 1);
    std::vector<float> padded(size_t(first_row * width), 0.5f);
    padded.insert(padded.end(), q.begin(), q.end());
    Buffer qb = put(padded), kb = put(k), vb = put(v), z = be_->allocate(int64_t(padded.size()));
    be_->begin_batch(batch);
    be_->rms_norm(qb.data(), batch.rows(), width, weight(w), 1e-6f, qb.data());
    be_->rotary(qb.data(), shape.heads, shape.head_dim, be_->f32_constant(inv_freq));
    std::vector<AttentionSequence> sequences;
    if (first_row > 0) sequences.push_back(AttentionSequence{kb.data(), vb.data(), nullptr});
    sequences.push_back(AttentionSequence{kb.data(), vb.data(), nullptr});
    be_->attention(shape, qb.data(), sequences, z.data());
    be_->gated_activate(Activation::Silu, z.data(), qb.data(), z.data(), int64_t(padded.size()));
    const auto all = read(z, padded.size());
    return std::vector<float>(all.begin() + first_row * width, all.end());
  };
  const auto alone = run(1, 0);
  for (int threads : {1, 2, 3})
    for (int64_t first_row : {int64_t(0), int64_t(9)}) {
      SCOPED_TRACE(std::to_string(threads) + " threads, after " + std::to_string(first_row) + " rows");
      const auto got = run(threads, first_row);
      ASSERT_EQ(got.size(), alone.size());
      for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], alone[i]) << i;
    }
}

}  // namespace
}  // namespace actcap::ops
