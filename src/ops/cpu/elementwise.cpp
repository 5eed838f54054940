// Row-wise and element-wise operations: norms, rotary embeddings, activations, residual adds, in fp32 or bf16
// storage. Arithmetic is fp32 (statistics in double, in a fixed order), rounded to the storage type where HF's
// PyTorch code rounds a tensor; each row or element is computed by one thread, so the bits never depend on the
// thread count or the rows in the call.
#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <type_traits>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/kernels.h"
#include "ops/cpu/numeric.h"

namespace actcap::ops::cpu {
namespace {

constexpr int64_t ROW_GRAIN = 16;
constexpr int64_t ELEMENT_GRAIN = 1 << 16;
// Activations call libm for every element (tens of nanoseconds), so even a decode step's few thousand gate values
// are worth sharing between threads.
constexpr int64_t ACTIVATION_GRAIN = 1024;

void for_rows(int64_t rows, const std::function<void(int64_t)>& fn) {
  ThreadPool::global().parallel_for(0, rows, ROW_GRAIN, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) fn(r);
  });
}

void for_elements(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = ELEMENT_GRAIN) {
  ThreadPool::global().parallel_for(0, n, grain, fn);
}

template <typename T>
void layer_norm_rows(const T* x, int64_t rows, int64_t dim, const float* weight, const float* bias, float eps, T* y) {
  for_rows(rows, [&](int64_t r) {
    const T* in = x + r * dim;
    T* out = y + r * dim;
    double sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += to_f(in[i]);
    const double mean = sum / double(dim);
    double sq = 0;
    for (int64_t i = 0; i < dim; ++i) {
      const double d = double(to_f(in[i])) - mean;
      sq += d * d;
    }
    const float rstd = float(1.0 / std::sqrt(sq / double(dim) + double(eps)));
    const float m = float(mean);
    for (int64_t i = 0; i < dim; ++i) {
      const float v = (to_f(in[i]) - m) * rstd * weight[i];
      out[i] = from_f<T>(bias ? v + bias[i] : v);
    }
  });
}

// HF: weight * (x_f32 * rsqrt(mean(x_f32^2) + eps)).to(dtype): the normalised value is rounded before the
// weight multiplies it; OLMo 2 (round_before_weight false) multiplies in fp32 and rounds the product once.
template <typename T, bool round_before_weight>
void rms_norm_rows(const T* x, int64_t rows, int64_t dim, const float* weight, float eps, T* y) {
  for_rows(rows, [&](int64_t r) {
    const T* in = x + r * dim;
    T* out = y + r * dim;
    double sq = 0;
    for (int64_t i = 0; i < dim; ++i) sq += double(to_f(in[i])) * to_f(in[i]);
    const float variance = float(sq / double(dim));
    const float rstd = float(1.0 / std::sqrt(double(variance + eps)));
    for (int64_t i = 0; i < dim; ++i) {
      const float normalised = to_f(in[i]) * rstd;
      out[i] = from_f<T>(weight[i] * (round_before_weight ? rd<T>(normalised) : normalised));
    }
  });
}

// HF: cos/sin of position * inv_freq in fp32, times attention_scaling (LongRoPE), cast to the dtype; x*cos and
// rotate_half(x)*sin rounded, then their sum. Only the first rotary_dims of a head turn (partial rotary).
template <typename T>
void rotary_rows(T* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t first_position, int64_t rotary_dims,
                 const float* inv_freq, float attention_scaling) {
  const int64_t half = rotary_dims / 2;
  for_rows(rows, [&](int64_t r) {
    std::vector<float> table(size_t(2 * half));
    float* cos = table.data();
    float* sin = cos + half;
    const float position = float(first_position + r);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = position * inv_freq[i];
      cos[i] = rd<T>(std::cos(angle) * attention_scaling);
      sin[i] = rd<T>(std::sin(angle) * attention_scaling);
    }
    for (int64_t h = 0; h < heads; ++h) {
      T* v = x + (r * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = to_f(v[i]), b = to_f(v[i + half]);
        v[i] = from_f<T>(rd<T>(a * cos[i]) - rd<T>(b * sin[i]));
        v[i + half] = from_f<T>(rd<T>(b * cos[i]) + rd<T>(a * sin[i]));
      }
    }
  });
}

// OLMo 2 in transformers 5: (x_f32 * cos + rotate_half(x_f32) * sin).to(dtype) with fp32 cos/sin, every head
// dimension rotated: only the sum is rounded. The products go through a buffer so that no fused multiply-add
// (which rounds once) replaces PyTorch's separate product and sum.
template <typename T>
void rotary_fp32_tables_rows(T* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t first_position,
                             const float* inv_freq) {
  const int64_t half = head_dim / 2;
  for_rows(rows, [&](int64_t r) {
    std::vector<float> buffer(size_t(6 * half));
    float* cos = buffer.data();
    float* sin = cos + half;
    float* products = sin + half;  // a*cos, b*sin, b*cos, a*sin
    const float position = float(first_position + r);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = position * inv_freq[i];
      cos[i] = std::cos(angle);
      sin[i] = std::sin(angle);
    }
    for (int64_t h = 0; h < heads; ++h) {
      T* v = x + (r * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = to_f(v[i]), b = to_f(v[i + half]);
        products[i] = a * cos[i];
        products[half + i] = b * sin[i];
        products[2 * half + i] = b * cos[i];
        products[3 * half + i] = a * sin[i];
      }
      for (int64_t i = 0; i < half; ++i) {
        v[i] = from_f<T>(products[i] - products[half + i]);
        v[i + half] = from_f<T>(products[2 * half + i] + products[3 * half + i]);
      }
    }
  });
}

// The activation of one value as HF computes it in storage type T, returned rounded to T. gelu_new is a chain
// of tensor operations in HF, each rounded; the others are single PyTorch kernels (fp32 inside).
template <typename T>
float activation_value(Activation activation, float x) {
  switch (activation) {
    case Activation::Silu:
      return rd<T>(x / (1.0f + std::exp(-x)));
    case Activation::GeluNew: {
      const float k = float(std::sqrt(2.0 / std::numbers::pi));
      float c = rd<T>(x * x * x);
      c = rd<T>(0.044715f * c);
      c = rd<T>(x + c);
      c = rd<T>(k * c);
      c = rd<T>(std::tanh(c));
      c = rd<T>(1.0f + c);
      return rd<T>(rd<T>(0.5f * x) * c);
    }
    case Activation::GeluPytorchTanh: {
      const float k = float(std::sqrt(2.0 / std::numbers::pi));
      return rd<T>(0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * (x * x * x)))));
    }
    case Activation::Gelu:
      return rd<T>(0.5f * x * (1.0f + std::erf(x * float(1.0 / std::numbers::sqrt2))));
    case Activation::Relu:
      return x > 0 ? x : 0.0f;
  }
  return x;
}

// In bf16, activations go through fp32 buffers a chunk at a time: the conversions from and to bf16 run in loops
// of their own, which vectorise, while the loop of the activation calls libm and stays scalar.
constexpr int64_t ACTIVATION_CHUNK = 256;

template <typename T>
void widen(const T* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = to_f(x[i]);
}

// out = act(gate) * up, or act(gate) where up is null.
template <typename T>
void activate_elements(Activation activation, const T* gate, const T* up, T* out, int64_t n) {
  for_elements(n, [&](int64_t b, int64_t e) {
    if constexpr (std::is_same_v<T, float>) {
      for (int64_t i = b; i < e; ++i)
        out[i] = up ? activation_value<T>(activation, gate[i]) * up[i] : activation_value<T>(activation, gate[i]);
    } else {
      float g[ACTIVATION_CHUNK], u[ACTIVATION_CHUNK];
      for (int64_t c = b; c < e; c += ACTIVATION_CHUNK) {
        const int64_t m = std::min(ACTIVATION_CHUNK, e - c);
        widen(gate + c, g, m);
        for (int64_t i = 0; i < m; ++i) g[i] = activation_value<T>(activation, g[i]);
        if (up) {
          widen(up + c, u, m);
          for (int64_t i = 0; i < m; ++i) out[c + i] = from_f<T>(g[i] * u[i]);
        } else {
          for (int64_t i = 0; i < m; ++i) out[c + i] = from_f<T>(g[i]);
        }
      }
    }
  }, ACTIVATION_GRAIN);
}

}  // namespace

void layer_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, const float* bias,
                float eps, void* y) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    layer_norm_rows(static_cast<const T*>(x), rows, dim, weight, bias, eps, static_cast<T*>(y));
  });
}

void rms_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, float eps, void* y) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    rms_norm_rows<T, true>(static_cast<const T*>(x), rows, dim, weight, eps, static_cast<T*>(y));
  });
}

void rms_norm_fp32_weight(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, float eps,
                          void* y) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    rms_norm_rows<T, false>(static_cast<const T*>(x), rows, dim, weight, eps, static_cast<T*>(y));
  });
}

void apply_rotary(DType dtype, void* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t first_position,
                  int64_t rotary_dims, const float* inv_freq, float attention_scaling) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    rotary_rows(static_cast<T*>(x), rows, heads, head_dim, first_position, rotary_dims, inv_freq, attention_scaling);
  });
}

// fp32 rounds nothing in between: apply_rotary's bits (its fp32 sums may be fused multiply-adds).
void apply_rotary_fp32_tables(DType dtype, void* x, int64_t rows, int64_t heads, int64_t head_dim,
                              int64_t first_position, const float* inv_freq) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float>)
      rotary_rows(static_cast<float*>(x), rows, heads, head_dim, first_position, head_dim, inv_freq, 1.0f);
    else
      rotary_fp32_tables_rows(static_cast<T*>(x), rows, heads, head_dim, first_position, inv_freq);
  });
}

void activate(DType dtype, Activation activation, void* x, int64_t n) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    activate_elements<T>(activation, static_cast<const T*>(x), nullptr, static_cast<T*>(x), n);
  });
}

void gated_activate(DType dtype, Activation activation, const void* gate, const void* up, void* out, int64_t n) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    activate_elements<T>(activation, static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(out), n);
  });
}

void add(DType dtype, const void* a, const void* b, void* out, int64_t n) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(a);
    const T* y = static_cast<const T*>(b);
    T* o = static_cast<T*>(out);
    for (int64_t i = 0; i < n; ++i) o[i] = from_f<T>(to_f(x[i]) + to_f(y[i]));
  });
}

void scale(DType dtype, void* x, float factor, int64_t n) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* v = static_cast<T*>(x);
    for (int64_t i = 0; i < n; ++i) v[i] = from_f<T>(to_f(v[i]) * factor);
  });
}

// Comparisons only: a value outside the range becomes the bound (rounded to T, an exact bf16 value for real
// checkpoints' clip_qkv), NaN compares false and stays.
void clamp(DType dtype, void* x, float limit, int64_t n) {
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* v = static_cast<T*>(x);
    const T low = from_f<T>(-limit), high = from_f<T>(limit);
    for (int64_t i = 0; i < n; ++i) {
      const float value = to_f(v[i]);
      if (value < -limit) v[i] = low;
      if (value > limit) v[i] = high;
    }
  });
}

}  // namespace actcap::ops::cpu
