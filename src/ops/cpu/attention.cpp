// Eager causal attention, one (query row, head) pair at a time: the scores, softmax and weighted sum of one
// pair never depend on the other rows in the call, so a sequence gives the same bits alone or in a batch, in
// one prefill or step by step.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"

namespace actcap::ops::cpu {
namespace {

// A dot product in a fixed order: eight interleaved partial sums (vectorisable), then a fixed tree.
float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

}  // namespace

void attention(const AttentionShape& s, const float* q, int64_t rows, int64_t first_position, const float* keys,
               const float* values, float* z, float* pattern) {
  const int64_t H = s.heads, G = s.heads / s.kv_heads, hd = s.head_dim, total = first_position + rows;
  ThreadPool::global().parallel_for(0, rows * H, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> p(static_cast<size_t>(total));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / H, h = item % H, g = h / G, pos = first_position + r;
      const int64_t lo = s.sliding_window > 0 ? std::max<int64_t>(0, pos - s.sliding_window + 1) : 0;
      const float* qrow = q + (r * H + h) * hd;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t j = lo; j <= pos; ++j) {
        p[j] = dot(qrow, keys + (j * s.kv_heads + g) * hd, hd) * s.scale;
        for (float divisor : s.divisors)
          if (divisor > 0) p[j] /= divisor;
        if (s.softcap > 0) p[j] = std::tanh(p[j] / s.softcap) * s.softcap;
        max = std::max(max, p[j]);
      }
      float sum = 0;
      for (int64_t j = lo; j <= pos; ++j) {
        p[j] = std::exp(p[j] - max);
        sum += p[j];
      }
      const float inv = 1.0f / sum;
      float* zrow = z + r * H * hd + h * hd;
      std::fill(zrow, zrow + hd, 0.0f);
      for (int64_t j = lo; j <= pos; ++j) {
        p[j] *= inv;
        const float* v = values + (j * s.kv_heads + g) * hd;
        for (int64_t d = 0; d < hd; ++d) zrow[d] += p[j] * v[d];
      }
      if (pattern) {
        float* prow = pattern + (r * H + h) * total;
        std::fill(prow, prow + total, 0.0f);
        std::copy(p.begin() + lo, p.begin() + pos + 1, prow + lo);
      }
    }
  });
}

}  // namespace actcap::ops::cpu
