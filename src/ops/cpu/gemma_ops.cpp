// The ops Gemma adds: its RMSNorm (weights stored zero-centred, applied as 1 + w in fp32) and soft-capping.
#include <cmath>

#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"

namespace actcap::ops::cpu {

void gemma_rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y) {
  ThreadPool::global().parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* in = x + r * dim;
      float* out = y + r * dim;
      double sq = 0;
      for (int64_t i = 0; i < dim; ++i) sq += double(in[i]) * in[i];
      const float variance = float(sq / double(dim));
      const float rstd = float(1.0 / std::sqrt(double(variance + eps)));
      for (int64_t i = 0; i < dim; ++i) out[i] = (in[i] * rstd) * (1.0f + weight[i]);
    }
  });
}

void softcap(float* x, float cap, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] / cap) * cap;
}

}  // namespace actcap::ops::cpu
