// Eager causal attention, one (query row, head) pair at a time: the scores, softmax and weighted sum of one
// pair never depend on the other rows in the call, so a sequence gives the same bits alone or in a batch, in
// one prefill or step by step. In bf16 it rounds where HF's eager attention rounds, in the CUDA kernel's order
// (ops/cuda/attention.cu): rd(q·k), rd(· scale), rd(/ divisor); softmax in fp32, each probability rounded; the
// weighted sum of the values in fp32, rounded once.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/numeric.h"

namespace actcap::ops::cpu {
namespace {

// A dot product in a fixed order: eight interleaved partial sums (vectorisable), then a fixed tree.
template <typename T>
float dot(const float* a, const T* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * to_f(b[i + l]);
  for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * to_f(b[i]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

template <typename T>
void attend(const AttentionShape& s, const T* q, int64_t rows, int64_t first_position, const T* keys, const T* values,
            T* z, T* pattern) {
  const int64_t H = s.heads, G = s.heads / s.kv_heads, hd = s.head_dim, total = first_position + rows;
  ThreadPool::global().parallel_for(0, rows * H, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> p(static_cast<size_t>(total)), query(static_cast<size_t>(hd)), sum(static_cast<size_t>(hd));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / H, h = item % H, g = h / G, pos = first_position + r;
      const int64_t lo = s.sliding_window > 0 ? std::max<int64_t>(0, pos - s.sliding_window + 1) : 0;
      const T* qrow = q + (r * H + h) * hd;
      for (int64_t d = 0; d < hd; ++d) query[size_t(d)] = to_f(qrow[d]);
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t j = lo; j <= pos; ++j) {
        float score = rd<T>(rd<T>(dot(query.data(), keys + (j * s.kv_heads + g) * hd, hd)) * s.scale);
        for (float divisor : s.divisors)
          if (divisor > 0) score = rd<T>(score / divisor);
        p[j] = score;
        max = std::max(max, score);
      }
      float denominator = 0;
      for (int64_t j = lo; j <= pos; ++j) {
        p[j] = std::exp(p[j] - max);
        denominator += p[j];
      }
      const float inv = 1.0f / denominator;
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (int64_t j = lo; j <= pos; ++j) {
        p[j] = rd<T>(p[j] * inv);
        const T* v = values + (j * s.kv_heads + g) * hd;
        for (int64_t d = 0; d < hd; ++d) sum[size_t(d)] += p[j] * to_f(v[d]);
      }
      T* zrow = z + r * H * hd + h * hd;
      for (int64_t d = 0; d < hd; ++d) zrow[d] = from_f<T>(sum[size_t(d)]);
      if (pattern) {
        T* prow = pattern + (r * H + h) * total;
        std::fill(prow, prow + total, from_f<T>(0.0f));
        for (int64_t j = lo; j <= pos; ++j) prow[j] = from_f<T>(p[j]);
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
