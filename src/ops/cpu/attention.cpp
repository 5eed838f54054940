// Eager causal attention. A work item is a key/value head and a few query rows: the queries of the heads that
// share that key/value head (grouped-query attention), against keys widened to fp32 and transposed a block at a
// time, so that one vector instruction advances the scores of a block of keys. Every score is accumulated in
// head-dimension order and every output in key order, whatever the item holds, so a sequence gives the same bits
// alone or in a batch, in one prefill or step by step, on any number of threads.
//
// In bf16 it rounds where HF's eager attention rounds, in the CUDA kernel's order (ops/cuda/attention.cu):
// rd(q·k), rd(· scale), rd(/ divisor); softmax in fp32, each probability rounded; the weighted sum of the values
// in fp32, rounded once.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__AVX512F__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values, which -Wuninitialized reports at every
// use (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/numeric.h"

namespace actcap::ops::cpu {
namespace {

constexpr int64_t KEY_BLOCK = 16;  // keys whose scores advance together: one AVX-512 vector
constexpr int64_t QUERY_ROWS = 8;  // query rows per work item, amortising the key blocks' widening
constexpr int64_t QUERY_CHAINS = 4;  // queries whose scores advance together
// The scores of a key block: a vector type (GCC and Clang), so that each step is one multiply-add of the block
// whatever the compiler's vectoriser makes of the loops around it.
using KeyScores = float __attribute__((vector_size(KEY_BLOCK * sizeof(float))));

#if defined(__AVX512F__)
// dst[c * 16 + r] = src[r * stride + c] for a 16 x 16 tile: rows interleaved in pairs, then quads, then 128-bit
// lanes gathered across the four quads.
void transpose16(const float* src, int64_t stride, float* dst) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * stride);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  auto pd = [](__m512 v) { return _mm512_castps_pd(v); };
  for (int i = 0; i < 16; i += 4) {  // r[i + m], lane L: column 4L + m of rows i..i+3
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[i]), pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[i]), pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[i + 1]), pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[i + 1]), pd(t[i + 3])));
  }
  for (int m = 0; m < 4; ++m) {
    const __m512 even_lo = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88);
    const __m512 odd_lo = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xDD);
    const __m512 even_hi = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
    const __m512 odd_hi = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xDD);
    _mm512_storeu_ps(dst + m * 16, _mm512_shuffle_f32x4(even_lo, even_hi, 0x88));
    _mm512_storeu_ps(dst + (8 + m) * 16, _mm512_shuffle_f32x4(even_lo, even_hi, 0xDD));
    _mm512_storeu_ps(dst + (4 + m) * 16, _mm512_shuffle_f32x4(odd_lo, odd_hi, 0x88));
    _mm512_storeu_ps(dst + (12 + m) * 16, _mm512_shuffle_f32x4(odd_lo, odd_hi, 0xDD));
  }
}
#endif

// block[d * KEY_BLOCK + j] = rows[j * hd + d]: KEY_BLOCK keys' rows to columns (exact moves; 16 x 16 tiles at a
// time where the build targets AVX-512).
void transpose_keys(const float* rows, int64_t hd, float* block) {
  int64_t d0 = 0;
#if defined(__AVX512F__)
  static_assert(KEY_BLOCK == 16);
  for (; d0 + 16 <= hd; d0 += 16) transpose16(rows + d0, hd, block + d0 * KEY_BLOCK);
#endif
  for (int64_t d = d0; d < hd; ++d)
    for (int64_t j = 0; j < KEY_BLOCK; ++j) block[d * KEY_BLOCK + j] = rows[j * hd + d];
}

// The cache lines of `count` elements from `row`. The rows of one head's keys and values lie a whole position
// apart in the cache (kv_heads * head_dim), too far apart for the hardware prefetchers, and a decode step's
// weights have streamed through the caches since the last step read them: without this, decode attention
// waits on each row in turn.
template <typename T>
void prefetch_row(const T* row, int64_t count) {
  const char* bytes = reinterpret_cast<const char*>(row);
  for (int64_t i = 0; i < count * int64_t(sizeof(T)); i += 64) __builtin_prefetch(bytes + i);
}
constexpr int64_t VALUES_AHEAD = 4;  // value rows read ahead of the weighted sums

// sum[0, 16 * NV) = Σ p[j] * values[j * stride + d] over keys lo..hi in key order, the sums held in registers.
template <int NV, typename T>
void weighted_sum(const float* p, int64_t lo, int64_t hi, const T* values, int64_t stride, float* sum) {
  KeyScores acc[NV] = {};
  for (int64_t j = lo; j <= hi; ++j) {
    const T* row = values + j * stride;
    if (j + VALUES_AHEAD <= hi) prefetch_row(row + VALUES_AHEAD * stride, NV * KEY_BLOCK);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      float wide[KEY_BLOCK];
      for (int64_t e = 0; e < KEY_BLOCK; ++e) wide[e] = to_f(row[v * KEY_BLOCK + e]);
      KeyScores x;
      std::memcpy(&x, wide, sizeof x);
      acc[v] += p[j] * x;
    }
  }
  std::memcpy(sum, acc, sizeof acc);
}

template <typename T>
void attend(const AttentionShape& s, const T* q, int64_t rows, int64_t first_position, const T* keys, const T* values,
            T* z, T* pattern) {
  const int64_t H = s.heads, KV = s.kv_heads, G = H / KV, hd = s.head_dim, total = first_position + rows;
  const int64_t row_blocks = (rows + QUERY_ROWS - 1) / QUERY_ROWS;
  // The first key visible from position `pos`.
  auto first_visible = [&](int64_t pos) {
    return s.sliding_window > 0 ? std::max<int64_t>(0, pos - s.sliding_window + 1) : int64_t(0);
  };
  ThreadPool::global().parallel_for(0, KV * row_blocks, 1, [&](int64_t begin, int64_t end) {
    // Queries in an item, rounded up to whole chains (the spare ones are zeros whose scores are dropped).
    const size_t most = size_t((QUERY_ROWS * G + QUERY_CHAINS - 1) / QUERY_CHAINS * QUERY_CHAINS);
    thread_local std::vector<float> key_rows, key_block, queries, scores, sums;
    key_rows.resize(size_t(hd * KEY_BLOCK));
    key_block.resize(size_t(hd * KEY_BLOCK));
    queries.assign(most * size_t(hd), 0.0f);
    scores.resize(most * size_t(total));
    sums.resize(most * size_t(hd));
    for (int64_t item = begin; item < end; ++item) {
      // Query i of the item: row r0 + i / G, head g * G + i % G.
      const int64_t g = item / row_blocks, r0 = (item % row_blocks) * QUERY_ROWS;
      const int64_t n = (std::min(rows, r0 + QUERY_ROWS) - r0) * G;
      auto row_of = [&](int64_t i) { return r0 + i / G; };
      auto head_of = [&](int64_t i) { return g * G + i % G; };
      for (int64_t i = 0; i < n; ++i)
        for (int64_t d = 0; d < hd; ++d)
          queries[size_t(i * hd + d)] = to_f(q[(row_of(i) * H + head_of(i)) * hd + d]);
      const int64_t key_begin = first_visible(first_position + r0), key_end = first_position + row_of(n - 1) + 1;

      // q·k for every query of the item and every key any of them sees: the block's keys are widened row by row,
      // then transposed, and QUERY_CHAINS queries advance together (independent chains hide the add latency).
      for (int64_t j0 = key_begin; j0 < key_end; j0 += KEY_BLOCK) {
        const int64_t width = std::min(KEY_BLOCK, key_end - j0);
        std::fill(key_rows.begin() + width * hd, key_rows.end(), 0.0f);
        for (int64_t jj = 0; jj < width; ++jj) {
          const T* key = keys + ((j0 + jj) * KV + g) * hd;
          if (j0 + KEY_BLOCK + jj < key_end) prefetch_row(key + KEY_BLOCK * KV * hd, hd);  // the next block's
          for (int64_t d = 0; d < hd; ++d) key_rows[size_t(jj * hd + d)] = to_f(key[d]);
        }
        transpose_keys(key_rows.data(), hd, key_block.data());
        for (int64_t i0 = 0; i0 < n; i0 += QUERY_CHAINS) {
          const int64_t chains = std::min(QUERY_CHAINS, n - i0);
          KeyScores acc[QUERY_CHAINS] = {};
          for (int64_t d = 0; d < hd; ++d) {
            KeyScores column;
            std::memcpy(&column, key_block.data() + d * KEY_BLOCK, sizeof column);
            for (int64_t c = 0; c < QUERY_CHAINS; ++c) acc[c] += queries[size_t((i0 + c) * hd + d)] * column;
          }
          for (int64_t c = 0; c < chains; ++c) {
            float out[KEY_BLOCK];
            std::memcpy(out, &acc[c], sizeof out);
            std::copy(out, out + width, scores.begin() + (i0 + c) * total + j0);
          }
        }
      }

      // Softmax over each query's visible keys: the scores become probabilities.
      for (int64_t i = 0; i < n; ++i) {
        const int64_t pos = first_position + row_of(i), lo = first_visible(pos);
        float* p = scores.data() + i * total;
        float max = -std::numeric_limits<float>::infinity();
        for (int64_t j = lo; j <= pos; ++j) {
          float score = rd<T>(rd<T>(p[j]) * s.scale);
          for (float divisor : s.divisors)
            if (divisor > 0) score = rd<T>(score / divisor);
          if (s.softcap > 0) score = rd<T>(rd<T>(std::tanh(rd<T>(score / s.softcap))) * s.softcap);  // Gemma 2
          p[j] = score;
          max = std::max(max, score);
        }
        float denominator = 0;
        for (int64_t j = lo; j <= pos; ++j) {
          p[j] = std::exp(p[j] - max);
          denominator += p[j];
        }
        const float inv = 1.0f / denominator;
        for (int64_t j = lo; j <= pos; ++j) p[j] = rd<T>(p[j] * inv);
      }

      // The weighted sums of the values over each query's visible keys, 128 or 16 dimensions at a time.
      for (int64_t i = 0; i < n; ++i) {
        const int64_t pos = first_position + row_of(i), lo = first_visible(pos);
        const float* p = scores.data() + i * total;
        const T* head_values = values + g * hd;
        float* sum = sums.data() + i * hd;
        int64_t d = 0;
        for (; d + 8 * KEY_BLOCK <= hd; d += 8 * KEY_BLOCK)
          weighted_sum<8>(p, lo, pos, head_values + d, KV * hd, sum + d);
        for (; d + KEY_BLOCK <= hd; d += KEY_BLOCK) weighted_sum<1>(p, lo, pos, head_values + d, KV * hd, sum + d);
        for (; d < hd; ++d) {
          float total_d = 0.0f;
          for (int64_t j = lo; j <= pos; ++j) total_d += p[j] * to_f(head_values[j * KV * hd + d]);
          sum[d] = total_d;
        }
      }

      for (int64_t i = 0; i < n; ++i) {
        const int64_t r = row_of(i), h = head_of(i), pos = first_position + r, lo = first_visible(pos);
        T* zrow = z + (r * H + h) * hd;
        for (int64_t d = 0; d < hd; ++d) zrow[d] = from_f<T>(sums[size_t(i * hd + d)]);
        if (pattern) {
          T* prow = pattern + (r * H + h) * total;
          std::fill(prow, prow + total, from_f<T>(0.0f));
          for (int64_t j = lo; j <= pos; ++j) prow[j] = from_f<T>(scores[size_t(i * total + j)]);
        }
      }
    }
  });
}

}  // namespace

void attention(DType dtype, const AttentionShape& shape, const void* q, int64_t rows, int64_t first_position,
               const void* keys, const void* values, void* z, void* pattern) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    attend(shape, static_cast<const T*>(q), rows, first_position, static_cast<const T*>(keys),
           static_cast<const T*>(values), static_cast<T*>(z), static_cast<T*>(pattern));
  });
}

}  // namespace actcap::ops::cpu
