// Row-wise and element-wise operations: norms, activations. Each row is computed by one
// thread in a fixed order; statistics are accumulated in double.
#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>

#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"

namespace actcap::ops::cpu {
namespace {

constexpr int64_t ROW_GRAIN = 16;
constexpr int64_t ELEMENT_GRAIN = 1 << 16;

void for_rows(int64_t rows, const std::function<void(int64_t)>& fn) {
  ThreadPool::global().parallel_for(0, rows, ROW_GRAIN, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) fn(r);
  });
}

void for_elements(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  ThreadPool::global().parallel_for(0, n, ELEMENT_GRAIN, fn);
}

}  // namespace

void layer_norm(const float* x, int64_t rows, int64_t dim, const float* weight, const float* bias, float eps,
                float* y) {
  for_rows(rows, [&](int64_t r) {
    const float* in = x + r * dim;
    float* out = y + r * dim;
    double sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += in[i];
    const double mean = sum / double(dim);
    double sq = 0;
    for (int64_t i = 0; i < dim; ++i) sq += (in[i] - mean) * (in[i] - mean);
    const float rstd = float(1.0 / std::sqrt(sq / double(dim) + double(eps)));
    const float m = float(mean);
    for (int64_t i = 0; i < dim; ++i) {
      float v = (in[i] - m) * rstd * weight[i];
      out[i] = bias ? v + bias[i] : v;
    }
  });
}

void rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y) {
  for_rows(rows, [&](int64_t r) {
    const float* in = x + r * dim;
    float* out = y + r * dim;
    double sq = 0;
    for (int64_t i = 0; i < dim; ++i) sq += double(in[i]) * in[i];
    const float variance = float(sq / double(dim));
    const float rstd = float(1.0 / std::sqrt(double(variance + eps)));
    for (int64_t i = 0; i < dim; ++i) out[i] = weight[i] * (in[i] * rstd);
  });
}

namespace {

float activation_value(Activation activation, float x) {
  switch (activation) {
    case Activation::Silu:
      return x / (1.0f + std::exp(-x));
    case Activation::GeluNew:
    case Activation::GeluPytorchTanh: {
      const float k = float(std::sqrt(2.0 / std::numbers::pi));
      return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * (x * x * x))));
    }
    case Activation::Gelu:
      return 0.5f * x * (1.0f + std::erf(x * float(1.0 / std::numbers::sqrt2)));
    case Activation::Relu:
      return x > 0 ? x : 0.0f;
  }
  return x;
}

}  // namespace

void activate(Activation activation, float* x, int64_t n) {
  for_elements(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] = activation_value(activation, x[i]);
  });
}

void gated_activate(Activation activation, const float* gate, const float* up, float* out, int64_t n) {
  for_elements(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = activation_value(activation, gate[i]) * up[i];
  });
}

void add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void scale(float* x, float factor, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

}  // namespace actcap::ops::cpu
