// The ops Gemma adds: its RMSNorm (weights stored zero-centred, applied as 1 + w in fp32) and soft-capping, in
// fp32 or bf16 storage (ops/cuda/kernels_elementwise.cu rounds at the same steps).
#include <cmath>

#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/numeric.h"

namespace actcap::ops::cpu {
namespace {

// HF GemmaRMSNorm: (x_f32 * rsqrt(mean(x_f32^2) + eps)) * (1 + w_f32), cast to the dtype only at the end.
template <typename T>
void gemma_rms_norm_rows(const T* x, int64_t rows, int64_t dim, const float* weight, float eps, T* y) {
  ThreadPool::global().parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* in = x + r * dim;
      T* out = y + r * dim;
      double sq = 0;
      for (int64_t i = 0; i < dim; ++i) sq += double(to_f(in[i])) * to_f(in[i]);
      const float variance = float(sq / double(dim));
      const float rstd = float(1.0 / std::sqrt(double(variance + eps)));
      for (int64_t i = 0; i < dim; ++i) out[i] = from_f<T>((to_f(in[i]) * rstd) * (1.0f + weight[i]));
    }
  });
}

}  // namespace

void gemma_rms_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, float eps, void* y) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    gemma_rms_norm_rows(static_cast<const T*>(x), rows, dim, weight, eps, static_cast<T*>(y));
  });
}

// PyTorch's three ops (divide, tanh, multiply), each output rounded.
void softcap(DType dtype, void* x, float cap, int64_t n) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* v = static_cast<T*>(x);
    for (int64_t i = 0; i < n; ++i) v[i] = from_f<T>(rd<T>(std::tanh(rd<T>(to_f(v[i]) / cap))) * cap);
  });
}

}  // namespace actcap::ops::cpu
