// Dot-product kernels for AVX-512 CPUs, compiled for AVX512F/BW/VL/BF16 whatever the build's -march (callers
// check the CPU first). An output is the dot product of an activation row and a weight row ([out, in] layout),
// accumulated in 16 fp32 lanes over steps of the vector width, in two chains (even and odd steps, so that one
// output's adds are not a single chain of dependent instructions: with one chain, a decode step's kernel waits on
// the adds' latency rather than on memory), which are added lane by lane and then summed across lanes at the end.
// Outputs are computed in blocks of up to 4 rows x 3 columns: 24 accumulators stay in registers, each weight
// vector loaded serves 4 rows and each activation vector 3 columns.
//
// Every output gets the same sequence of steps (the tail zero-filled) whatever the block it falls in, so its
// bits depend only on its own inputs and K: never on the other rows or columns of the call.
#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values, which -Wuninitialized reports at every
// use (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <type_traits>

#include "core/dtype.h"
#include "ops/cpu/gemm.h"

#pragma GCC push_options
#pragma GCC target("avx512bf16,avx512bw,avx512vl,avx512f")

namespace actcap::ops::cpu {
namespace {

constexpr int BLOCK_ROWS = 4, BLOCK_COLS = 3, CHAINS = 2;

// The 16 lanes summed pairwise in a fixed order.
float sum_lanes(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  for (int width = 8; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) lanes[i] += lanes[i + width];
  return lanes[0];
}

// bf16 activations and weights: vdpbf16ps adds pairs of exact bf16 products into fp32 lanes, 32 elements a step;
// the output is rounded to bf16 (nearest even).
struct Bf16Dot {
  using X = uint16_t;
  using W = uint16_t;
  using Y = uint16_t;
  using Loaded = __m512bh;
  static constexpr int STEP = 32;
  static __mmask32 mask(int64_t left) { return _cvtu32_mask32((1u << left) - 1); }  // left < STEP
  static Loaded load(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
  static Loaded load(const uint16_t* p, __mmask32 m) { return (__m512bh)_mm512_maskz_loadu_epi16(m, p); }
  static Loaded load_x(const X* p, auto... m) { return load(p, m...); }
  static Loaded load_w(const W* p, auto... m) { return load(p, m...); }
  static __m512 accumulate(__m512 acc, Loaded x, Loaded w) { return _mm512_dpbf16_ps(acc, x, w); }
  static Y output(float sum) { return f32_to_bf16(sum); }
};

// fp32 activations, weights widened exactly from their stored dtype, fused multiply-adds 16 elements a step.
template <DType WEIGHTS>
struct F32Fma {
  using X = float;
  using W = std::conditional_t<WEIGHTS == DType::F32, float, uint16_t>;
  using Y = float;
  using Loaded = __m512;
  static constexpr int STEP = 16;
  static __mmask16 mask(int64_t left) { return __mmask16((1u << left) - 1); }  // left < STEP
  static __m512 load_x(const X* p) { return _mm512_loadu_ps(p); }
  static __m512 load_x(const X* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static __m512 load_w(const W* p, auto... m) {
    if constexpr (WEIGHTS == DType::F32) {
      return load_x(p, m...);
    } else {
      __m256i half;
      if constexpr (sizeof...(m) > 0)
        half = _mm256_maskz_loadu_epi16(m..., p);
      else
        half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      if constexpr (WEIGHTS == DType::BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
      else
        return _mm512_cvtph_ps(half);
    }
  }
  static __m512 accumulate(__m512 acc, Loaded x, Loaded w) { return _mm512_fmadd_ps(x, w, acc); }
  static Y output(float sum) { return sum; }
};

// The block's C weight rows are col_step rows apart (its outputs col_step columns apart). Weight rows are read
// once per call (for one row of activations, once per decode step) straight from memory, so each step also
// prefetches what each row's stream reads `ahead` elements later (the next block's rows; nothing at or past
// `end`), keeping the next loads in flight while this block computes: the hardware prefetchers start late on rows
// of a few kilobytes. Non-temporal: the weights are used once per call, so they should not push the activations
// and the KV cache out of the outer caches (measured 3-8% faster than prefetcht0 on bench/gemm_bench 2 1 5 28).
template <class Kernel, int R, int C>
void dot_block(const typename Kernel::X* x, const typename Kernel::W* w, int64_t K, int64_t col_step,
               const float* bias, typename Kernel::Y* y, int64_t ldy, int64_t ahead, const void* end) {
  constexpr int64_t STEP_BYTES = Kernel::STEP * int64_t(sizeof(typename Kernel::W));
  __m512 acc[CHAINS][R][C];
#pragma GCC unroll 8
  for (int chain = 0; chain < CHAINS; ++chain)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[chain][r][c] = _mm512_setzero_ps();
  // Step k / STEP adds into chain (k / STEP) % 2; no mask: a whole step.
  auto step = [&](auto chain, int64_t k, auto... mask) {
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const auto* later = reinterpret_cast<const char*>(w + c * col_step * K + k + ahead);
      for (int64_t i = 0; i < STEP_BYTES && later + i < end; i += 64) _mm_prefetch(later + i, _MM_HINT_NTA);
    }
    typename Kernel::Loaded wv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) wv[c] = Kernel::load_w(w + c * col_step * K + k, mask...);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const typename Kernel::Loaded xv = Kernel::load_x(x + r * K + k, mask...);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[chain][r][c] = Kernel::accumulate(acc[chain][r][c], xv, wv[c]);
    }
  };
  constexpr std::integral_constant<int, 0> EVEN;
  constexpr std::integral_constant<int, 1> ODD;
  constexpr int64_t STEP = Kernel::STEP;
  int64_t k = 0;
  for (; k + 2 * STEP <= K; k += 2 * STEP) {
    step(EVEN, k);
    step(ODD, k + STEP);
  }
  if (k + STEP <= K) {
    step(EVEN, k);
    k += STEP;
    if (k < K) step(ODD, k, Kernel::mask(K - k));
  } else if (k < K) {
    step(EVEN, k, Kernel::mask(K - k));
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float sum = sum_lanes(_mm512_add_ps(acc[0][r][c], acc[1][r][c]));
      if (bias) sum += bias[c * col_step];
      y[r * ldy + c * col_step] = Kernel::output(sum);
    }
}

template <class Kernel, int R>
void dot_rows(const typename Kernel::X* x, const typename Kernel::W* w, int64_t cols, int64_t K, const float* bias,
              typename Kernel::Y* y, int64_t ldy) {
  // One row (decode) streams the weights fastest as two sequential reads, the tile's first and second halves
  // row after row: 2 to 16 adjacent rows side by side measured 4-34% slower on the 28-layer stream of
  // bench/gemm_bench, the two halves 5-8% faster than one stream in a decode step on a machine whose memory
  // outpaces one core.
  constexpr int WIDE = R == 1 ? 1 : BLOCK_COLS;
  const auto* end = w + cols * K;
  auto block = [&](auto width, int64_t c) {
    dot_block<Kernel, R, width>(x, w + c * K, K, 1, bias ? bias + c : nullptr, y + c, ldy, width * K, end);
  };
  int64_t c = 0;
  if constexpr (R == 1) {  // columns c and c + half together: two sequential streams
    const int64_t half = cols / 2;
    for (; c < half; ++c)
      dot_block<Kernel, R, 2>(x, w + c * K, K, half, bias ? bias + c : nullptr, y + c, ldy, K, end);
    c = 2 * half;
  }
  for (; c + WIDE <= cols; c += WIDE) block(std::integral_constant<int, WIDE>{}, c);
  for (; c + BLOCK_COLS <= cols; c += BLOCK_COLS) block(std::integral_constant<int, BLOCK_COLS>{}, c);
  switch (cols - c) {
    case 2:
      block(std::integral_constant<int, 2>{}, c);
      break;
    case 1:
      block(std::integral_constant<int, 1>{}, c);
      break;
    default:
      break;
  }
}

template <class Kernel>
void dot(const typename Kernel::X* x, int64_t rows, const typename Kernel::W* w, int64_t cols, int64_t K,
         const float* bias, typename Kernel::Y* y, int64_t ldy) {
  int64_t r = 0;
  for (; r + BLOCK_ROWS <= rows; r += BLOCK_ROWS)
    dot_rows<Kernel, BLOCK_ROWS>(x + r * K, w, cols, K, bias, y + r * ldy, ldy);
  const auto* xt = x + r * K;
  auto* yt = y + r * ldy;
  switch (rows - r) {
    case 3:
      dot_rows<Kernel, 3>(xt, w, cols, K, bias, yt, ldy);
      break;
    case 2:
      dot_rows<Kernel, 2>(xt, w, cols, K, bias, yt, ldy);
      break;
    case 1:
      dot_rows<Kernel, 1>(xt, w, cols, K, bias, yt, ldy);
      break;
    default:
      break;
  }
}

}  // namespace

void bf16_dot_avx512(const uint16_t* x, int64_t rows, const uint16_t* w, int64_t cols, int64_t K, const float* bias,
                     uint16_t* y, int64_t ldy) {
  dot<Bf16Dot>(x, rows, w, cols, K, bias, y, ldy);
}

void f32_dot_avx512(const float* x, int64_t rows, const void* w, DType weight_dtype, int64_t cols, int64_t K,
                    const float* bias, float* y, int64_t ldy) {
  switch (weight_dtype) {
    case DType::F32:
      return dot<F32Fma<DType::F32>>(x, rows, static_cast<const float*>(w), cols, K, bias, y, ldy);
    case DType::BF16:
      return dot<F32Fma<DType::BF16>>(x, rows, static_cast<const uint16_t*>(w), cols, K, bias, y, ldy);
    default:
      return dot<F32Fma<DType::F16>>(x, rows, static_cast<const uint16_t*>(w), cols, K, bias, y, ldy);
  }
}

}  // namespace actcap::ops::cpu

#pragma GCC pop_options
#endif  // __x86_64__
