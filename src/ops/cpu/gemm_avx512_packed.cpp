// Packed GEMM kernels for AVX-512 CPUs (compiled for AVX512F/BW/VL/BF16 whatever the build's -march; callers
// check the CPU first). A column tile's weights are packed once per call into panels of PANEL outputs, k-major,
// the layout the microkernel streams; every row block of the call then reuses them. The microkernel keeps a
// block of up to 12 rows x 32 outputs in 24 registers and, for each k, broadcasts one activation per row
// against two panel vectors (an outer product): fp32 FMAs, or vdpbf16ps on (k, k + 1) pairs of bf16.
//
// Each output is one lane that adds its products in k order from zero, then the bias: its bits depend only
// on its own inputs and K, never on the other rows or columns of the call.
#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values, which -Wuninitialized reports at every
// use (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/dtype.h"
#include "ops/cpu/gemm.h"

#pragma GCC push_options
#pragma GCC target("avx512bf16,avx512bw,avx512vl,avx512f")

namespace actcap::ops::cpu {
namespace {

constexpr int BLOCK_ROWS = 12;

// fp32: panel [K][PANEL] floats; one k a step.
struct F32Packed {
  using X = float;
  using P = float;
  using Y = float;
  static constexpr int64_t K_STEP = 1;
  static __m512 broadcast(const X* x, int64_t k) { return _mm512_set1_ps(x[k]); }
  static __m512 broadcast_last(const X* x, int64_t k) { return broadcast(x, k); }
  static __m512 load(const P* panel) { return _mm512_loadu_ps(panel); }
  static __m512 accumulate(__m512 acc, __m512 a, __m512 b) { return _mm512_fmadd_ps(a, b, acc); }
  static Y output(float v) { return v; }
};

// bf16: panel [ceil(K/2)][PANEL][2] bf16 (pairs of consecutive k per output, the last one zero-padded); one
// pair a step.
struct Bf16Packed {
  using X = uint16_t;
  using P = uint16_t;
  using Y = uint16_t;
  static constexpr int64_t K_STEP = 2;
  static __m512 broadcast(const X* x, int64_t k) {
    uint32_t pair;
    std::memcpy(&pair, x + k, 4);
    return _mm512_castsi512_ps(_mm512_set1_epi32(int(pair)));
  }
  static __m512 broadcast_last(const X* x, int64_t k) {  // an odd K's last element, paired with zero
    return _mm512_castsi512_ps(_mm512_set1_epi32(int(x[k])));
  }
  static __m512 load(const P* panel) { return _mm512_castsi512_ps(_mm512_loadu_si512(panel)); }
  static __m512 accumulate(__m512 acc, __m512 a, __m512 b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_castps_si512(a), (__m512bh)_mm512_castps_si512(b));
  }
  static Y output(float v) { return f32_to_bf16(v); }
};

// y[r, c] for r < R, c < cols (<= PANEL) from one panel.
template <class Kernel, int R>
void block(const typename Kernel::X* x, int64_t K, const typename Kernel::P* panel, int64_t cols, const float* bias,
           typename Kernel::Y* y, int64_t ldy) {
  constexpr int64_t HALF = PANEL / 2 * Kernel::K_STEP;  // elements of one 16-output vector of the panel
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + Kernel::K_STEP <= K; k += Kernel::K_STEP, panel += PANEL * Kernel::K_STEP) {
    const __m512 b0 = Kernel::load(panel), b1 = Kernel::load(panel + HALF);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 a = Kernel::broadcast(x + r * K, k);
      acc[r][0] = Kernel::accumulate(acc[r][0], a, b0);
      acc[r][1] = Kernel::accumulate(acc[r][1], a, b1);
    }
  }
  if (k < K) {
    const __m512 b0 = Kernel::load(panel), b1 = Kernel::load(panel + HALF);
    for (int r = 0; r < R; ++r) {
      const __m512 a = Kernel::broadcast_last(x + r * K, k);
      acc[r][0] = Kernel::accumulate(acc[r][0], a, b0);
      acc[r][1] = Kernel::accumulate(acc[r][1], a, b1);
    }
  }
  for (int r = 0; r < R; ++r) {
    alignas(64) float sums[PANEL];
    _mm512_store_ps(sums, acc[r][0]);
    _mm512_store_ps(sums + 16, acc[r][1]);
    for (int64_t c = 0; c < cols; ++c) y[r * ldy + c] = Kernel::output(bias ? sums[c] + bias[c] : sums[c]);
  }
}

template <class Kernel, int R>
void block_rows(const typename Kernel::X* x, int64_t K, const typename Kernel::P* packed, int64_t cols,
                const float* bias, typename Kernel::Y* y, int64_t ldy) {
  const int64_t panel_elements = (K + Kernel::K_STEP - 1) / Kernel::K_STEP * Kernel::K_STEP * PANEL;
  for (int64_t c = 0; c < cols; c += PANEL)
    block<Kernel, R>(x, K, packed + c / PANEL * panel_elements, std::min<int64_t>(PANEL, cols - c),
                     bias ? bias + c : nullptr, y + c, ldy);
}

template <class Kernel, int R = BLOCK_ROWS>
void tail_rows(int64_t rows, const typename Kernel::X* x, int64_t K, const typename Kernel::P* packed, int64_t cols,
               const float* bias, typename Kernel::Y* y, int64_t ldy) {
  if constexpr (R > 0) {
    if (rows == R) return block_rows<Kernel, R>(x, K, packed, cols, bias, y, ldy);
    tail_rows<Kernel, R - 1>(rows, x, K, packed, cols, bias, y, ldy);
  }
}

template <class Kernel>
void gemm(const typename Kernel::X* x, int64_t rows, const typename Kernel::P* packed, int64_t cols, int64_t K,
          const float* bias, typename Kernel::Y* y, int64_t ldy) {
  int64_t r = 0;
  for (; r + BLOCK_ROWS <= rows; r += BLOCK_ROWS)
    block_rows<Kernel, BLOCK_ROWS>(x + r * K, K, packed, cols, bias, y + r * ldy, ldy);
  if (r < rows) tail_rows<Kernel>(rows - r, x + r * K, K, packed, cols, bias, y + r * ldy, ldy);
}

// In place: r[i] lane j <- r[j] lane i.
void transpose16(__m512 r[16]) {
  __m512 t[16], u[16], v[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 4; ++i) {
      v[8 * h + i] = _mm512_shuffle_f32x4(u[8 * h + i], u[8 * h + 4 + i], 0x88);
      v[8 * h + 4 + i] = _mm512_shuffle_f32x4(u[8 * h + i], u[8 * h + 4 + i], 0xDD);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(v[i], v[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(v[i], v[8 + i], 0xDD);
  }
}

// Up to 16 elements of a weight row from element k, widened to fp32 (the rest zero).
__m512 widened(const void* row, DType dtype, int64_t k, __mmask16 mask) {
  if (dtype == DType::F32) return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(row) + k);
  const __m256i half = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(row) + k);
  if (dtype == DType::BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
  return _mm512_cvtph_ps(half);
}

}  // namespace

// nn.Linear's [out, in] rows become k-major panels through 16 x 16 transposes; Conv1D's [in, out] rows are
// k-major already.
void pack_f32_panels(const Linear& layer, DType dtype, int64_t n0, int64_t n, std::vector<float>& packed) {
  const int64_t K = layer.in, N = layer.out, panels = (n + PANEL - 1) / PANEL;
  packed.resize(size_t(panels * K * PANEL));
  const size_t element = dtype_size(dtype);
  const char* weight = static_cast<const char*>(layer.weight);
  if (layer.in_out_layout) {
    for (int64_t p = 0; p < panels; ++p)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t g = 0; g < PANEL; g += 16) {
          const int64_t outputs = std::clamp<int64_t>(n - p * PANEL - g, 0, 16);
          const __m512 v =
              widened(weight + (k * N + n0 + p * PANEL + g) * element, dtype, 0, __mmask16((1u << outputs) - 1));
          _mm512_storeu_ps(&packed[size_t((p * K + k) * PANEL + g)], v);
        }
    return;
  }
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t g = 0; g < PANEL; g += 16)
      for (int64_t k = 0; k < K; k += 16) {
        const int64_t ks = std::min<int64_t>(16, K - k);
        __m512 r[16];
        for (int64_t i = 0; i < 16; ++i) {
          const int64_t o = p * PANEL + g + i;
          r[i] = o < n ? widened(weight + (n0 + o) * K * element, dtype, k, __mmask16((1u << ks) - 1))
                       : _mm512_setzero_ps();
        }
        transpose16(r);
        for (int64_t j = 0; j < ks; ++j) _mm512_storeu_ps(&packed[size_t((p * K + k + j) * PANEL + g)], r[j]);
      }
}

// Pairs of consecutive k of one output are one 32-bit element: nn.Linear's rows are transposed as 32-bit lanes
// (the last pair of an odd K loaded with its upper half zero); Conv1D's pairs come from two rows, one by one.
void pack_bf16_panels(const Linear& layer, int64_t n0, int64_t n, std::vector<uint16_t>& packed) {
  const int64_t K = layer.in, N = layer.out, pairs = (K + 1) / 2, panels = (n + PANEL - 1) / PANEL;
  packed.resize(size_t(panels * pairs * PANEL * 2));
  const auto* weight = static_cast<const uint16_t*>(layer.weight);
  if (layer.in_out_layout) {
    std::fill(packed.begin(), packed.end(), uint16_t(0));
    for (int64_t o = 0; o < n; ++o)
      for (int64_t k = 0; k < K; ++k)
        packed[size_t((((o / PANEL) * pairs + k / 2) * PANEL + o % PANEL) * 2 + k % 2)] = weight[k * N + n0 + o];
    return;
  }
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t g = 0; g < PANEL; g += 16)
      for (int64_t k = 0; k < K; k += 32) {  // 16 pairs
        const int64_t elements = std::min<int64_t>(32, K - k), ks = (elements + 1) / 2;
        const __mmask32 mask = _cvtu32_mask32(elements == 32 ? ~0u : (1u << elements) - 1);
        __m512 r[16];
        for (int64_t i = 0; i < 16; ++i) {
          const int64_t o = p * PANEL + g + i;
          r[i] = o < n ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, weight + (n0 + o) * K + k))
                       : _mm512_setzero_ps();
        }
        transpose16(r);
        for (int64_t j = 0; j < ks; ++j)
          _mm512_storeu_ps(reinterpret_cast<float*>(&packed[size_t(((p * pairs + k / 2 + j) * PANEL + g) * 2)]), r[j]);
      }
}

void f32_gemm_avx512(const float* x, int64_t rows, const float* packed, int64_t cols, int64_t K, const float* bias,
                     float* y, int64_t ldy) {
  gemm<F32Packed>(x, rows, packed, cols, K, bias, y, ldy);
}

void bf16_gemm_avx512(const uint16_t* x, int64_t rows, const uint16_t* packed, int64_t cols, int64_t K,
                      const float* bias, uint16_t* y, int64_t ldy) {
  gemm<Bf16Packed>(x, rows, packed, cols, K, bias, y, ldy);
}

}  // namespace actcap::ops::cpu

#pragma GCC pop_options
#endif  // __x86_64__
