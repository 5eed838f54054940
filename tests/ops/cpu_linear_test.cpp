// The CPU GEMM kernels (ops/cpu/linear.cpp): weights in their stored dtype with fp32 activations give the bits
// of the same weights in fp32; bf16 activations give fp32 sums of bf16 products rounded to bf16, on the
// AVX512-BF16 path and the portable one; every output's bits are independent of the thread count, of the
// other rows in the call and of where a decode step cuts the columns.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../test_util.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/kernels.h"

namespace actcap {
namespace {

using ops::Linear;

// Sizes past one 128-column tile with a partial one and a partial 32-output panel; K odd (a bf16 pair padded)
// and not a multiple of the dot products' 16/32-element steps.
constexpr int64_t IN = 301, OUT = 300;

class CpuLinear : public ::testing::Test {
 protected:
  void TearDown() override {
    ThreadPool::set_global_threads(0);
    unsetenv("ACTCAP_CPU_KERNELS");
  }
};

// Values exact in both bf16 and fp16 (8 significant bits, moderate exponents).
std::vector<float> bf16_exact_values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = round_to(DType::F16, round_to(DType::BF16, uniform(rng)));
  return v;
}

std::vector<uint8_t> stored_as(const std::vector<float>& values, DType dtype) {
  std::vector<uint8_t> bytes(values.size() * dtype_size(dtype));
  convert_from_f32(values.data(), dtype, bytes.data(), values.size());
  return bytes;
}

std::vector<float> run_f32(const Linear& layer, DType weight_dtype, const std::vector<float>& x, int64_t rows) {
  std::vector<float> y(size_t(rows * layer.out));
  ops::cpu::linear(layer, weight_dtype, DType::F32, x.data(), rows, y.data());
  return y;
}

std::vector<uint16_t> run_bf16(const Linear& layer, const std::vector<uint16_t>& x, int64_t rows) {
  std::vector<uint16_t> y(size_t(rows * layer.out));
  ops::cpu::linear(layer, DType::BF16, DType::BF16, x.data(), rows, y.data());
  return y;
}

TEST_F(CpuLinear, Fp32ActivationsGiveTheBitsOfFp32WeightsWhateverTheStoredDtype) {
  const std::vector<float> weights = bf16_exact_values(IN * OUT, 1), bias = bf16_exact_values(OUT, 2);
  for (const char* kernels : {"portable", "auto"}) {
    setenv("ACTCAP_CPU_KERNELS", kernels, 1);
    for (bool in_out_layout : {false, true}) {
      for (int64_t rows : {1, 7, 130}) {
        SCOPED_TRACE(testing::Message() << kernels << " conv1d=" << in_out_layout << " rows=" << rows);
        const std::vector<float> x = bf16_exact_values(rows * IN, 3);
        const Linear f32_layer{weights.data(), bias.data(), IN, OUT, in_out_layout};
        const std::vector<float> expected = run_f32(f32_layer, DType::F32, x, rows);
        for (DType dtype : {DType::BF16, DType::F16}) {
          const std::vector<uint8_t> stored = stored_as(weights, dtype);
          const std::vector<float> y =
              run_f32(Linear{stored.data(), bias.data(), IN, OUT, in_out_layout}, dtype, x, rows);
          EXPECT_EQ(std::memcmp(y.data(), expected.data(), y.size() * 4), 0) << dtype_name(dtype);
        }
        // and the sums are right: against a double-precision dot product
        double worst = 0;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t o = 0; o < OUT; ++o) {
            double sum = bias[size_t(o)];
            for (int64_t k = 0; k < IN; ++k)
              sum += double(x[size_t(r * IN + k)]) * weights[size_t(in_out_layout ? k * OUT + o : o * IN + k)];
            worst = std::max(worst, std::fabs(sum - expected[size_t(r * OUT + o)]));
          }
        EXPECT_LT(worst, 1e-3);
      }
    }
  }
}

// PyTorch's CPU bf16 linear: fp32 sum of exact bf16 products, plus the fp32 bias, rounded to bf16. The fp32
// accumulation order is the kernel's own, so the check allows fp32 summation error and one bf16 rounding.
void expect_bf16_linear(const std::vector<uint16_t>& y, const std::vector<float>& x, const std::vector<float>& w,
                        const std::vector<float>& bias, int64_t rows, bool in_out_layout) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < OUT; ++o) {
      double sum = bias[size_t(o)], magnitude = std::fabs(bias[size_t(o)]);
      for (int64_t k = 0; k < IN; ++k) {
        const double product = double(x[size_t(r * IN + k)]) * w[size_t(in_out_layout ? k * OUT + o : o * IN + k)];
        sum += product;
        magnitude += std::fabs(product);
      }
      const double got = bf16_to_f32(y[size_t(r * OUT + o)]);
      const double allowed = std::fabs(sum) * 0x1p-8 + magnitude * IN * 0x1p-24;
      ASSERT_LE(std::fabs(got - sum), allowed) << "row " << r << " output " << o;
    }
}

// Where the kernels compute rows on their own (linear_independent_rows > 0), a row's bits do not depend on the
// other rows of the call: calls of up to that many rows each give a row's bits alone, longer calls give the
// bits of their last 20 rows computed by themselves (blocks of rows fall differently).
template <class T, class Run>
void expect_rows_independent(const Linear& layer, DType act_dtype, const std::vector<T>& x, int64_t rows,
                             const std::vector<T>& y, Run run) {
  const int64_t bound = ops::cpu::linear_independent_rows(layer, act_dtype);
  if (bound == 0) return;
  const int64_t first = rows <= bound ? rows - 1 : rows - 20, count = rows <= bound ? 1 : 20;
  for (int64_t r = rows <= bound ? 0 : first; r <= first; ++r) {
    const std::vector<T> part(x.begin() + r * IN, x.begin() + (r + count) * IN);
    const std::vector<T> alone = run(part, count);
    EXPECT_EQ(std::memcmp(alone.data(), y.data() + r * OUT, alone.size() * sizeof(T)), 0) << "from row " << r;
  }
}

TEST_F(CpuLinear, Bf16ActivationsOnBothKernelPaths) {
  const std::vector<float> weights = bf16_exact_values(IN * OUT, 4), bias = bf16_exact_values(OUT, 5);
  const std::vector<uint8_t> stored = stored_as(weights, DType::BF16);
  for (const char* kernels : {"portable", "auto"}) {
    setenv("ACTCAP_CPU_KERNELS", kernels, 1);
    for (bool in_out_layout : {false, true}) {
      for (int64_t rows : {13, 40}) {  // dot products / packed kernel with partial blocks of rows
        SCOPED_TRACE(testing::Message() << kernels << " conv1d=" << in_out_layout << " rows=" << rows);
        const std::vector<float> x = bf16_exact_values(rows * IN, 6);
        std::vector<uint16_t> x16(x.size());
        convert_from_f32(x.data(), DType::BF16, x16.data(), x.size());
        const Linear layer{stored.data(), bias.data(), IN, OUT, in_out_layout};
        ThreadPool::set_global_threads(1);
        const std::vector<uint16_t> y = run_bf16(layer, x16, rows);
        expect_bf16_linear(y, x, weights, bias, rows, in_out_layout);
        for (int threads : {2, 3}) {
          ThreadPool::set_global_threads(threads);
          EXPECT_EQ(run_bf16(layer, x16, rows), y) << threads << " threads";
        }
        expect_rows_independent(layer, DType::BF16, x16, rows, y,
                                [&](const std::vector<uint16_t>& part, int64_t n) { return run_bf16(layer, part, n); });
      }
    }
  }
}

TEST_F(CpuLinear, Fp32ActivationsIndependentOfThreadsAndOtherRows) {
  const std::vector<float> weights = bf16_exact_values(IN * OUT, 7);
  const std::vector<uint8_t> stored = stored_as(weights, DType::BF16);
  for (const char* kernels : {"portable", "auto"}) {
    setenv("ACTCAP_CPU_KERNELS", kernels, 1);
    for (bool in_out_layout : {false, true}) {
      const Linear layer{stored.data(), nullptr, IN, OUT, in_out_layout};
      for (int64_t rows : {7, 70}) {
        SCOPED_TRACE(testing::Message() << kernels << " conv1d=" << in_out_layout << " rows=" << rows);
        const std::vector<float> x = bf16_exact_values(rows * IN, 8);
        ThreadPool::set_global_threads(1);
        const std::vector<float> y = run_f32(layer, DType::BF16, x, rows);
        for (int threads : {2, 3}) {
          ThreadPool::set_global_threads(threads);
          EXPECT_EQ(std::memcmp(run_f32(layer, DType::BF16, x, rows).data(), y.data(), y.size() * 4), 0) << threads;
        }
        expect_rows_independent(layer, DType::F32, x, rows, y, [&](const std::vector<float>& part, int64_t n) {
          return run_f32(layer, DType::BF16, part, n);
        });
      }
    }
  }
}

// Several layers of one input in one call (q/k/v, gate/up) give each layer the bits it gets alone, on every
// kernel path and thread count; the layers' widths end in partial tiles, so the job's tiles mix layers.
TEST_F(CpuLinear, SeveralLayersInOneCallGiveEachLayersOwnBits) {
  const int64_t widths[] = {OUT, 130, 257};
  const DType mixed[] = {DType::BF16, DType::F32, DType::F16};  // fp32 activations take any stored dtype
  const std::vector<float> bias = bf16_exact_values(OUT, 9);
  std::vector<std::vector<uint8_t>> as_bf16, as_mixed;
  std::vector<Linear> bf16_layers, mixed_layers;
  for (size_t i = 0; i < 3; ++i) {
    const std::vector<float> weights = bf16_exact_values(IN * widths[i], 10 + uint32_t(i));
    as_bf16.push_back(stored_as(weights, DType::BF16));
    as_mixed.push_back(stored_as(weights, mixed[i]));
  }
  for (size_t i = 0; i < 3; ++i) {
    const float* b = i == 1 ? bias.data() : nullptr;
    bf16_layers.push_back(Linear{as_bf16[i].data(), b, IN, widths[i]});
    mixed_layers.push_back(Linear{as_mixed[i].data(), b, IN, widths[i]});
  }
  for (const char* kernels : {"portable", "auto"}) {
    setenv("ACTCAP_CPU_KERNELS", kernels, 1);
    for (int64_t rows : {1, 7, 70}) {
      for (int threads : {1, 3}) {
        SCOPED_TRACE(testing::Message() << kernels << " rows=" << rows << " threads=" << threads);
        ThreadPool::set_global_threads(threads);
        const std::vector<float> x = bf16_exact_values(rows * IN, 13);
        std::vector<uint16_t> x16(x.size());
        convert_from_f32(x.data(), DType::BF16, x16.data(), x.size());
        std::vector<std::vector<float>> y32(3);
        std::vector<std::vector<uint16_t>> y16(3);
        std::vector<ops::cpu::LinearCall> calls32, calls16;
        for (size_t i = 0; i < 3; ++i) {
          y32[i].resize(size_t(rows * widths[i]));
          y16[i].resize(size_t(rows * widths[i]));
          calls32.push_back({&mixed_layers[i], mixed[i], y32[i].data()});
          calls16.push_back({&bf16_layers[i], DType::BF16, y16[i].data()});
        }
        ops::cpu::linear(calls32, DType::F32, x.data(), rows);
        ops::cpu::linear(calls16, DType::BF16, x16.data(), rows);
        for (size_t i = 0; i < 3; ++i) {
          const std::vector<float> alone = run_f32(mixed_layers[i], mixed[i], x, rows);
          EXPECT_EQ(std::memcmp(alone.data(), y32[i].data(), alone.size() * 4), 0) << "fp32, layer " << i;
          EXPECT_EQ(run_bf16(bf16_layers[i], x16, rows), y16[i]) << "bf16, layer " << i;
        }
      }
    }
  }
}

// Decode steps cut the columns of the dot-product kernels wherever the threads' claims fall, so an output's bits
// must not depend on the cut: every split of the columns in two gives the bits of the whole, for every row count
// that takes these kernels' row blocks (4, 3, 2, 1) and the one-row kernel's paired halves.
TEST_F(CpuLinear, DotKernelsGiveTheSameBitsWhereverTheColumnsAreCut) {
  if (!ops::cpu::use_avx512_kernels()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  const std::vector<float> weights = bf16_exact_values(IN * OUT, 14), bias = bf16_exact_values(OUT, 15);
  const std::vector<uint8_t> w16 = stored_as(weights, DType::BF16);
  const auto* w = reinterpret_cast<const uint16_t*>(w16.data());
  for (int64_t rows : {1, 2, 3, 7}) {
    const std::vector<float> x = bf16_exact_values(rows * IN, 16);
    std::vector<uint16_t> x16(x.size());
    convert_from_f32(x.data(), DType::BF16, x16.data(), x.size());
    std::vector<float> whole32(size_t(rows * OUT)), cut32(whole32.size());
    std::vector<uint16_t> whole16(whole32.size()), cut16(whole32.size());
    ops::cpu::f32_dot_avx512(x.data(), rows, w, DType::BF16, OUT, IN, bias.data(), whole32.data(), OUT);
    ops::cpu::bf16_dot_avx512(x16.data(), rows, w, OUT, IN, bias.data(), whole16.data(), OUT);
    for (int64_t cut = 1; cut < OUT; ++cut) {
      SCOPED_TRACE(testing::Message() << "rows=" << rows << " cut at column " << cut);
      for (const auto& [c0, n] : {std::pair{int64_t(0), cut}, std::pair{cut, OUT - cut}}) {
        ops::cpu::f32_dot_avx512(x.data(), rows, w + c0 * IN, DType::BF16, n, IN, bias.data() + c0,
                                 cut32.data() + c0, OUT);
        ops::cpu::bf16_dot_avx512(x16.data(), rows, w + c0 * IN, n, IN, bias.data() + c0, cut16.data() + c0, OUT);
      }
      ASSERT_EQ(std::memcmp(cut32.data(), whole32.data(), cut32.size() * 4), 0);
      ASSERT_EQ(cut16, whole16);
    }
  }
}

TEST_F(CpuLinear, UnknownKernelChoiceIsAnError) {
  setenv("ACTCAP_CPU_KERNELS", "fastest", 1);
  test::expect_one_line_error([] { ops::cpu::use_avx512_kernels(); }, {"ACTCAP_CPU_KERNELS=fastest", "portable"});
}

}  // namespace
}  // namespace actcap
