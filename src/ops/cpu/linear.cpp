// Dense layers. The output is cut into column tiles of TILE_COLS outputs that depend only on the matrix sizes; a
// pool thread takes one and computes every row of the call against it, so a tile's arithmetic is the same
// whatever the thread count (results are bit-reproducible). On AVX-512 CPUs the tile's weights are packed once
// (widened, or paired for bf16 dot products) for the packed kernels, or, for the few rows of decode steps, read
// in place by the dot-product kernels; every output is then computed on its own. Elsewhere (or with
// ACTCAP_CPU_KERNELS=portable) the tile is widened to fp32 once and each 64-row tile is one single-threaded
// OpenBLAS sgemm call.
#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <limits>
#include <mutex>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/kernels.h"

namespace actcap::ops::cpu {
namespace {

constexpr int64_t TILE_ROWS = 64;
constexpr int64_t TILE_COLS = 128;
// On AVX-512 CPUs, calls of at most this many rows (decode steps) take the dot-product kernels, which read the
// stored weights once as they are instead of packing them.
constexpr int64_t DOT_ROWS = 16;

// How many rows at most take the dot-product kernels (0: none; fp32 ones read [out, in] rows only).
int64_t dot_rows(const Linear& layer, DType act_dtype) {
  return act_dtype == DType::BF16 || !layer.in_out_layout ? DOT_ROWS : 0;
}

void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

const char* bytes_at(const void* p, int64_t elements, DType dtype) {
  return static_cast<const char*>(p) + elements * int64_t(dtype_size(dtype));
}

// The weights of outputs [n0, n0 + n) as fp32, laid out as sgemm reads them with leading dimension *ld: the
// stored fp32 matrix itself, or `buffer` holding the widened tile ([n, K] for nn.Linear, [K, n] for Conv1D).
const float* fp32_weight_tile(const Linear& layer, DType dtype, int64_t n0, int64_t n, std::vector<float>& buffer,
                              int64_t* ld) {
  const int64_t K = layer.in, N = layer.out;
  if (dtype == DType::F32) {
    *ld = layer.in_out_layout ? N : K;
    return static_cast<const float*>(layer.weight) + (layer.in_out_layout ? n0 : n0 * K);
  }
  buffer.resize(size_t(n * K));
  if (layer.in_out_layout) {
    for (int64_t k = 0; k < K; ++k) convert_to_f32(bytes_at(layer.weight, k * N + n0, dtype), dtype, &buffer[k * n], n);
    *ld = n;
  } else {
    convert_to_f32(bytes_at(layer.weight, n0 * K, dtype), dtype, buffer.data(), size_t(n * K));
    *ld = K;
  }
  return buffer.data();
}

// out[m, n] (row pitch ldo) = x[m, K] W_tile^T, fp32.
void sgemm_tile(const Linear& layer, const float* x, int64_t m, const float* w, int64_t ldw, int64_t n, float* out,
                int64_t ldo) {
  const int K = int(layer.in);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, layer.in_out_layout ? CblasNoTrans : CblasTrans, int(m), int(n), K, 1.0f, x,
              K, w, int(ldw), 0.0f, out, int(ldo));
}

void for_each_column_tile(int64_t N, const std::function<void(int64_t n0, int64_t n)>& fn) {
  const int64_t col_tiles = (N + TILE_COLS - 1) / TILE_COLS;
  ThreadPool::global().parallel_for(0, col_tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) fn(t * TILE_COLS, std::min(TILE_COLS, N - t * TILE_COLS));
  });
}

void linear_f32(const Linear& layer, DType weight_dtype, const float* x, int64_t rows, float* y) {
  const int64_t K = layer.in, N = layer.out;
  const float* bias = static_cast<const float*>(layer.bias);
  for_each_column_tile(N, [&](int64_t n0, int64_t n) {
    thread_local std::vector<float> buffer;
    int64_t ldw = 0;
    const float* w = fp32_weight_tile(layer, weight_dtype, n0, n, buffer, &ldw);
    for (int64_t m0 = 0; m0 < rows; m0 += TILE_ROWS) {
      const int64_t m = std::min(TILE_ROWS, rows - m0);
      float* out = y + m0 * N + n0;
      sgemm_tile(layer, x + m0 * K, m, w, ldw, n, out, N);
      if (bias) {
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) out[i * N + j] += bias[n0 + j];
      }
    }
  });
}

// bf16 products are exact in fp32, so widening both sides and running sgemm gives fp32 sums of bf16 products.
void linear_bf16_portable(const Linear& layer, const uint16_t* x, int64_t rows, uint16_t* y) {
  const int64_t K = layer.in, N = layer.out;
  const float* bias = static_cast<const float*>(layer.bias);
  std::vector<float> wide_x(size_t(rows * K));
  convert_to_f32(x, DType::BF16, wide_x.data(), wide_x.size());
  for_each_column_tile(N, [&](int64_t n0, int64_t n) {
    thread_local std::vector<float> buffer, out;
    int64_t ldw = 0;
    const float* w = fp32_weight_tile(layer, DType::BF16, n0, n, buffer, &ldw);
    out.resize(size_t(TILE_ROWS * n));
    for (int64_t m0 = 0; m0 < rows; m0 += TILE_ROWS) {
      const int64_t m = std::min(TILE_ROWS, rows - m0);
      sgemm_tile(layer, wide_x.data() + m0 * K, m, w, ldw, n, out.data(), n);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j)
          y[(m0 + i) * N + n0 + j] = f32_to_bf16(bias ? out[i * n + j] + bias[n0 + j] : out[i * n + j]);
    }
  });
}

#if defined(__x86_64__)
// The AVX-512 paths: few rows take the dot-product kernels on the stored weights ([out, in] rows; Conv1D's bf16
// tiles are transposed first), more rows the packed kernels.
void linear_f32_avx512(const Linear& layer, DType weight_dtype, const float* x, int64_t rows, float* y) {
  const int64_t K = layer.in, N = layer.out;
  const float* bias = static_cast<const float*>(layer.bias);
  const bool dot = rows <= dot_rows(layer, DType::F32);
  for_each_column_tile(N, [&](int64_t n0, int64_t n) {
    const float* tile_bias = bias ? bias + n0 : nullptr;
    if (dot)
      return f32_dot_avx512(x, rows, bytes_at(layer.weight, n0 * K, weight_dtype), weight_dtype, n, K, tile_bias,
                            y + n0, N);
    thread_local std::vector<float> packed;
    pack_f32_panels(layer, weight_dtype, n0, n, packed);
    f32_gemm_avx512(x, rows, packed.data(), n, K, tile_bias, y + n0, N);
  });
}

void linear_bf16_avx512(const Linear& layer, const uint16_t* x, int64_t rows, uint16_t* y) {
  const int64_t K = layer.in, N = layer.out;
  const float* bias = static_cast<const float*>(layer.bias);
  const uint16_t* weight = static_cast<const uint16_t*>(layer.weight);
  const bool dot = rows <= dot_rows(layer, DType::BF16);
  for_each_column_tile(N, [&](int64_t n0, int64_t n) {
    const float* tile_bias = bias ? bias + n0 : nullptr;
    thread_local std::vector<uint16_t> packed;
    if (!dot) {
      pack_bf16_panels(layer, n0, n, packed);
      return bf16_gemm_avx512(x, rows, packed.data(), n, K, tile_bias, y + n0, N);
    }
    const uint16_t* w = weight + n0 * K;
    if (layer.in_out_layout) {  // transposed to [n, K]
      packed.resize(size_t(n * K));
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < n; ++j) packed[j * K + k] = weight[k * N + n0 + j];
      w = packed.data();
    }
    bf16_dot_avx512(x, rows, w, n, K, tile_bias, y + n0, N);
  });
}
#endif

}  // namespace

bool use_avx512_kernels() {
#if defined(__x86_64__)
  static const bool cpu_has = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                              __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512f");
#else
  constexpr bool cpu_has = false;
#endif
  const char* forced = std::getenv("ACTCAP_CPU_KERNELS");
  const std::string_view choice = forced ? forced : "";
  if (choice == "portable") return false;
  if (!choice.empty() && choice != "auto")
    fail("ACTCAP_CPU_KERNELS={}: expected auto (the fastest the CPU has) or portable", choice);
  return cpu_has;
}

// Every AVX-512 kernel computes rows on their own, but a call's row count picks dot or packed kernels.
int64_t linear_independent_rows(const Linear& layer, DType act_dtype) {
  if (!use_avx512_kernels()) return 0;
  const int64_t dot = dot_rows(layer, act_dtype);
  return dot > 0 ? dot : std::numeric_limits<int64_t>::max();
}

void linear(const Linear& layer, DType weight_dtype, DType act_dtype, const void* x, int64_t rows, void* y) {
  single_threaded_blas();
  if (weight_dtype != DType::F32 && weight_dtype != DType::BF16 && weight_dtype != DType::F16)
    fail("internal error: linear with {} weights", dtype_name(weight_dtype));
  if (act_dtype == DType::F32) {
    const auto* x32 = static_cast<const float*>(x);
    auto* y32 = static_cast<float*>(y);
#if defined(__x86_64__)
    if (use_avx512_kernels()) return linear_f32_avx512(layer, weight_dtype, x32, rows, y32);
#endif
    return linear_f32(layer, weight_dtype, x32, rows, y32);
  }
  if (act_dtype != DType::BF16 || weight_dtype != DType::BF16)
    fail("internal error: linear with {} activations and {} weights", dtype_name(act_dtype), dtype_name(weight_dtype));
  const auto* x16 = static_cast<const uint16_t*>(x);
  auto* y16 = static_cast<uint16_t*>(y);
#if defined(__x86_64__)
  if (use_avx512_kernels()) return linear_bf16_avx512(layer, x16, rows, y16);
#endif
  linear_bf16_portable(layer, x16, rows, y16);
}

}  // namespace actcap::ops::cpu
