// Dense layers. The output is cut into column tiles of TILE_COLS outputs that depend only on the matrix sizes; a
// pool thread takes one and computes every row of the call against it, so a tile's arithmetic is the same
// whatever the thread count (results are bit-reproducible). Several layers of one input (q/k/v, gate/up) make
// one job over all their tiles: one hand-over to the pool and one uneven finish instead of one per layer. On
// AVX-512 CPUs the tile's weights are packed once (widened, or paired for bf16 dot products) for the packed
// kernels, or, for the few rows of decode steps, read in place by the dot-product kernels; every output is then
// computed on its own, so decode steps hand the threads runs of columns cut wherever they finish together.
// Elsewhere (or with ACTCAP_CPU_KERNELS=portable) the tile is widened to fp32 once and each 64-row tile is one
// single-threaded OpenBLAS sgemm call.
#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <limits>
#include <mutex>
#include <span>
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
constexpr int64_t DOT_COLS = 16;  // columns handed out together to the dot-product kernels

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

using ColumnFn = std::function<void(const LinearCall&, int64_t n0, int64_t n)>;

// fn(layer, n0, n) over every column of every layer of the call, as one parallel job. The columns are numbered
// in units of `width` across the layers; each range of units the pool hands a thread (one unit from
// parallel_for, runs from parallel_for_balanced) gives every layer it spans its part.
void for_each_column_unit(std::span<const LinearCall> calls, int64_t width, bool balanced, const ColumnFn& fn) {
  std::vector<int64_t> first_unit(calls.size() + 1, 0);  // of each layer, in the job's unit numbering
  for (size_t i = 0; i < calls.size(); ++i)
    first_unit[i + 1] = first_unit[i] + (calls[i].layer->out + width - 1) / width;
  const auto range = [&](int64_t begin, int64_t end) {
    const auto first = std::upper_bound(first_unit.begin(), first_unit.end(), begin) - 1;
    for (size_t i = size_t(first - first_unit.begin()); i < calls.size() && first_unit[i] < end; ++i) {
      const int64_t n0 = (std::max(begin, first_unit[i]) - first_unit[i]) * width;
      const int64_t n1 = std::min(calls[i].layer->out, (std::min(end, first_unit[i + 1]) - first_unit[i]) * width);
      fn(calls[i], n0, n1 - n0);
    }
  };
  if (balanced)
    ThreadPool::global().parallel_for_balanced(0, first_unit.back(), 1, range);
  else
    ThreadPool::global().parallel_for(0, first_unit.back(), 1, range);
}

// One column tile of TILE_COLS at a time: tiles depend only on the matrix sizes.
void for_each_column_tile(std::span<const LinearCall> calls, const ColumnFn& fn) {
  for_each_column_unit(calls, TILE_COLS, false, fn);
}

// Runs of whole groups of DOT_COLS that the threads claim as they go: for the dot-product kernels only, whose
// outputs do not depend on where the columns are cut. A decode step's threads then finish each call together,
// where whole tiles left one waiting for the other's last tile.
void for_each_column_run(std::span<const LinearCall> calls, const ColumnFn& fn) {
  for_each_column_unit(calls, DOT_COLS, true, fn);
}

void linear_f32(std::span<const LinearCall> calls, const float* x, int64_t rows) {
  for_each_column_tile(calls, [&](const LinearCall& call, int64_t n0, int64_t n) {
    const Linear& layer = *call.layer;
    const int64_t K = layer.in, N = layer.out;
    const float* bias = static_cast<const float*>(layer.bias);
    float* y = static_cast<float*>(call.y);
    thread_local std::vector<float> buffer;
    int64_t ldw = 0;
    const float* w = fp32_weight_tile(layer, call.weight_dtype, n0, n, buffer, &ldw);
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
void linear_bf16_portable(std::span<const LinearCall> calls, const uint16_t* x, int64_t rows) {
  const int64_t K = calls[0].layer->in;
  std::vector<float> wide_x(size_t(rows * K));
  convert_to_f32(x, DType::BF16, wide_x.data(), wide_x.size());
  for_each_column_tile(calls, [&](const LinearCall& call, int64_t n0, int64_t n) {
    const Linear& layer = *call.layer;
    const int64_t N = layer.out;
    const float* bias = static_cast<const float*>(layer.bias);
    uint16_t* y = static_cast<uint16_t*>(call.y);
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
// tiles are transposed first), in balanced runs when every layer of the call takes them; more rows take the
// packed kernels, tile by tile.

// Whether every layer of the call takes the dot-product kernels for this many rows.
bool dot_kernels(std::span<const LinearCall> calls, DType act_dtype, int64_t rows) {
  return std::all_of(calls.begin(), calls.end(),
                     [&](const LinearCall& call) { return rows <= dot_rows(*call.layer, act_dtype); });
}

const float* bias_from(const Linear& layer, int64_t n0) {
  return layer.bias ? static_cast<const float*>(layer.bias) + n0 : nullptr;
}

void linear_f32_avx512(std::span<const LinearCall> calls, const float* x, int64_t rows) {
  const auto dot = [&](const LinearCall& call, int64_t n0, int64_t n) {
    const Linear& layer = *call.layer;
    f32_dot_avx512(x, rows, bytes_at(layer.weight, n0 * layer.in, call.weight_dtype), call.weight_dtype, n, layer.in,
                   bias_from(layer, n0), static_cast<float*>(call.y) + n0, layer.out);
  };
  if (dot_kernels(calls, DType::F32, rows)) return for_each_column_run(calls, dot);
  for_each_column_tile(calls, [&](const LinearCall& call, int64_t n0, int64_t n) {
    const Linear& layer = *call.layer;
    if (rows <= dot_rows(layer, DType::F32)) return dot(call, n0, n);
    thread_local std::vector<float> packed;
    pack_f32_panels(layer, call.weight_dtype, n0, n, packed);
    f32_gemm_avx512(x, rows, packed.data(), n, layer.in, bias_from(layer, n0), static_cast<float*>(call.y) + n0,
                    layer.out);
  });
}

void linear_bf16_avx512(std::span<const LinearCall> calls, const uint16_t* x, int64_t rows) {
  const auto dot = [&](const LinearCall& call, int64_t n0, int64_t n) {
    const Linear& layer = *call.layer;
    const int64_t K = layer.in, N = layer.out;
    const uint16_t* weight = static_cast<const uint16_t*>(layer.weight);
    uint16_t* y = static_cast<uint16_t*>(call.y);
    if (!layer.in_out_layout) return bf16_dot_avx512(x, rows, weight + n0 * K, n, K, bias_from(layer, n0), y + n0, N);
    thread_local std::vector<uint16_t> transposed;
    for (int64_t c0 = n0; c0 < n0 + n; c0 += TILE_COLS) {  // Conv1D's [in, out] weights, a tile at a time
      const int64_t c = std::min(TILE_COLS, n0 + n - c0);
      transposed.resize(size_t(c * K));
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < c; ++j) transposed[j * K + k] = weight[k * N + c0 + j];
      bf16_dot_avx512(x, rows, transposed.data(), c, K, bias_from(layer, c0), y + c0, N);
    }
  };
  if (dot_kernels(calls, DType::BF16, rows)) return for_each_column_run(calls, dot);
  for_each_column_tile(calls, [&](const LinearCall& call, int64_t n0, int64_t n) {
    const Linear& layer = *call.layer;
    if (rows <= dot_rows(layer, DType::BF16)) return dot(call, n0, n);
    thread_local std::vector<uint16_t> packed;
    pack_bf16_panels(layer, n0, n, packed);
    bf16_gemm_avx512(x, rows, packed.data(), n, layer.in, bias_from(layer, n0), static_cast<uint16_t*>(call.y) + n0,
                     layer.out);
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
  const LinearCall call{&layer, weight_dtype, y};
  linear({&call, 1}, act_dtype, x, rows);
}

void linear(std::span<const LinearCall> calls, DType act_dtype, const void* x, int64_t rows) {
  if (calls.empty()) return;
  single_threaded_blas();
  for (const LinearCall& call : calls) {
    if (call.weight_dtype != DType::F32 && call.weight_dtype != DType::BF16 && call.weight_dtype != DType::F16)
      fail("internal error: linear with {} weights", dtype_name(call.weight_dtype));
    if (call.layer->in != calls[0].layer->in) fail("internal error: linears of different input widths");
    if (act_dtype != DType::F32 && (act_dtype != DType::BF16 || call.weight_dtype != DType::BF16))
      fail("internal error: linear with {} activations and {} weights", dtype_name(act_dtype),
           dtype_name(call.weight_dtype));
  }
  if (act_dtype == DType::F32) {
    const auto* x32 = static_cast<const float*>(x);
#if defined(__x86_64__)
    if (use_avx512_kernels()) return linear_f32_avx512(calls, x32, rows);
#endif
    return linear_f32(calls, x32, rows);
  }
  const auto* x16 = static_cast<const uint16_t*>(x);
#if defined(__x86_64__)
  if (use_avx512_kernels()) return linear_bf16_avx512(calls, x16, rows);
#endif
  linear_bf16_portable(calls, x16, rows);
}

}  // namespace actcap::ops::cpu
