// Row-wise and element-wise kernels: embeddings, norms, rotary, activations, residual adds. Each output is
// computed by one thread from its own inputs, and row statistics are reduced in a fixed order (in double, as
// ops/cpu does), so results are bit-identical across runs and batch compositions.
#include <string>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/kernels.h"
#include "ops/cuda/numeric.cuh"
#include "ops/cuda/row_reduce.cuh"

namespace actcap::ops::cuda {
namespace {

constexpr int ELEMENT_THREADS = 256;

template <typename T>
__global__ void gather_rows_kernel(const T* table, int64_t dim, const int32_t* index, int64_t offset, T* out) {
  const int64_t r = blockIdx.x;
  const T* src = table + (int64_t(index[r]) + offset) * dim;
  T* dst = out + r * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
}

template <typename T>
__global__ void broadcast_rows_kernel(const T* bias, int64_t rows, int64_t width, T* y) {
  const int64_t n = rows * width;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
    y[e] = bias[e % width];
}

template <typename T>
__global__ void layer_norm_kernel(const T* x, int64_t dim, const T* weight, const T* bias, float eps, T* y) {
  __shared__ double partial[32];
  const T* in = x + int64_t(blockIdx.x) * dim;
  T* out = y + int64_t(blockIdx.x) * dim;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) sum += to_f(in[i]);
  const double mean = block_sum(sum, partial) / double(dim);
  double sq = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const double d = double(to_f(in[i])) - mean;
    sq += d * d;
  }
  const float rstd = float(1.0 / sqrt(block_sum(sq, partial) / double(dim) + double(eps)));
  const float m = float(mean);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = __fmul_rn(__fmul_rn(__fsub_rn(to_f(in[i]), m), rstd), to_f(weight[i]));
    out[i] = from_f<T>(bias ? __fadd_rn(v, to_f(bias[i])) : v);
  }
}

// HF: weight * (x_f32 * rsqrt(mean(x_f32^2) + eps)).to(dtype): the normalised value is rounded before the
// weight multiplies it. y may alias x: each element is read and written by the same thread.
template <typename T>
__global__ void rms_norm_kernel(const T* x, int64_t dim, const T* weight, float eps, T* y) {
  __shared__ double partial[32];
  const T* in = x + int64_t(blockIdx.x) * dim;
  T* out = y + int64_t(blockIdx.x) * dim;
  double sq = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const double v = to_f(in[i]);
    sq += v * v;
  }
  const float variance = float(block_sum(sq, partial) / double(dim));
  const float rstd = float(1.0 / sqrt(double(__fadd_rn(variance, eps))));
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
    out[i] = from_f<T>(__fmul_rn(to_f(weight[i]), rd<T>(__fmul_rn(to_f(in[i]), rstd))));
}

// HF: cos/sin of position * inv_freq in fp32, times attention_scaling, rounded to the dtype; x*cos and
// rotate_half(x)*sin rounded, then their sum. Only the first 2 * half dims of each head rotate.
template <typename T>
__global__ void rotary_kernel(T* x, int64_t heads, int64_t head_dim, int64_t half, const float* inv_freq,
                              float attention_scaling, const int32_t* positions) {
  extern __shared__ float table[];  // cos [half], sin [half]
  const int64_t r = blockIdx.x;
  const float position = float(positions[r]);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = __fmul_rn(position, inv_freq[i]);
    table[i] = rd<T>(__fmul_rn(cosf(angle), attention_scaling));
    table[half + i] = rd<T>(__fmul_rn(sinf(angle), attention_scaling));
  }
  __syncthreads();
  T* row = x + r * heads * head_dim;
  for (int64_t e = threadIdx.x; e < heads * half; e += blockDim.x) {
    const int64_t h = e / half, i = e % half;
    T* v = row + h * head_dim;
    const float a = to_f(v[i]), b = to_f(v[i + half]), c = table[i], s = table[half + i];
    v[i] = from_f<T>(__fadd_rn(rd<T>(__fmul_rn(a, c)), -rd<T>(__fmul_rn(b, s))));
    v[i + half] = from_f<T>(__fadd_rn(rd<T>(__fmul_rn(b, c)), rd<T>(__fmul_rn(a, s))));
  }
}

// The activation of one value as HF computes it in dtype T, returned as the stored (rounded) value. gelu_new is
// a chain of tensor operations in HF, each rounded; the others are single PyTorch kernels (fp32 inside).
template <typename T>
__device__ float activation_value(Activation activation, float x) {
  switch (activation) {
    case Activation::Silu:
      return rd<T>(__fdiv_rn(x, __fadd_rn(1.0f, expf(-x))));
    case Activation::GeluNew: {
      const float k = float(0.7978845608028654);  // sqrt(2 / pi)
      float c = rd<T>(__fmul_rn(__fmul_rn(x, x), x));
      c = rd<T>(__fmul_rn(0.044715f, c));
      c = rd<T>(__fadd_rn(x, c));
      c = rd<T>(__fmul_rn(k, c));
      c = rd<T>(tanhf(c));
      c = rd<T>(__fadd_rn(1.0f, c));
      return rd<T>(__fmul_rn(rd<T>(__fmul_rn(0.5f, x)), c));
    }
    case Activation::GeluPytorchTanh: {
      const float k = float(0.7978845608028654);
      const float inner = __fmul_rn(k, __fadd_rn(x, __fmul_rn(0.044715f, __fmul_rn(__fmul_rn(x, x), x))));
      return rd<T>(__fmul_rn(__fmul_rn(0.5f, x), __fadd_rn(1.0f, tanhf(inner))));
    }
    case Activation::Gelu:
      return rd<T>(__fmul_rn(__fmul_rn(0.5f, x), __fadd_rn(1.0f, erff(__fmul_rn(x, float(0.7071067811865476))))));
    case Activation::Relu:
      return x > 0.0f ? x : 0.0f;
  }
  return x;
}

template <typename T>
__global__ void activate_kernel(Activation activation, T* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_f<T>(activation_value<T>(activation, to_f(x[i])));
}

template <typename T>
__global__ void gated_activate_kernel(Activation activation, const T* gate, const T* up, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f<T>(__fmul_rn(activation_value<T>(activation, to_f(gate[i])), to_f(up[i])));
}

template <typename T>
__global__ void add_kernel(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f<T>(__fadd_rn(to_f(a[i]), to_f(b[i])));
}

template <typename T>
__global__ void scale_kernel(T* x, float factor, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_f<T>(__fmul_rn(to_f(x[i]), factor));
}

// HF Gemma: (x_f32 * rsqrt(mean(x_f32^2) + eps)) * (1 + weight_f32), rounded once at the end. y may alias x.
template <typename T>
__global__ void gemma_rms_norm_kernel(const T* x, int64_t dim, const T* weight, float eps, T* y) {
  __shared__ double partial[32];
  const T* in = x + int64_t(blockIdx.x) * dim;
  T* out = y + int64_t(blockIdx.x) * dim;
  double sq = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const double v = to_f(in[i]);
    sq += v * v;
  }
  const float variance = float(block_sum(sq, partial) / double(dim));
  const float rstd = float(1.0 / sqrt(double(__fadd_rn(variance, eps))));
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
    out[i] = from_f<T>(__fmul_rn(__fmul_rn(to_f(in[i]), rstd), __fadd_rn(1.0f, to_f(weight[i]))));
}

// tanh(x / cap) * cap, rounded after each step as PyTorch's three ops are.
template <typename T>
__global__ void softcap_kernel(T* x, float cap, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_f<T>(__fmul_rn(rd<T>(tanhf(rd<T>(__fdiv_rn(to_f(x[i]), cap)))), cap));
}

template <typename T>
__global__ void to_f32_kernel(const T* src, float* dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = to_f(src[i]);
}

}  // namespace

void launch_embed(DType dtype, const void* table, int64_t dim, const DeviceBatch& batch, void* out,
                  cudaStream_t stream) {
  if (batch.rows == 0) return;
  check_grid(batch.rows, "embed");
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    gather_rows_kernel<T><<<unsigned(batch.rows), row_threads(dim), 0, stream>>>(
        static_cast<const T*>(table), dim, batch.token_ids, 0, static_cast<T*>(out));
  });
  ACTCAP_CUDA_LAUNCHED("embed");
}

void launch_embed_positions(DType dtype, const void* table, int64_t dim, int64_t offset, const DeviceBatch& batch,
                            void* out, cudaStream_t stream) {
  if (batch.rows == 0) return;
  check_grid(batch.rows, "embed_positions");
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    gather_rows_kernel<T><<<unsigned(batch.rows), row_threads(dim), 0, stream>>>(
        static_cast<const T*>(table), dim, batch.positions, offset, static_cast<T*>(out));
  });
  ACTCAP_CUDA_LAUNCHED("embed_positions");
}

void launch_broadcast_rows(DType dtype, const void* bias, int64_t rows, int64_t width, void* y,
                           cudaStream_t stream) {
  if (rows * width == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    broadcast_rows_kernel<T><<<blocks_for(rows * width, ELEMENT_THREADS), ELEMENT_THREADS, 0, stream>>>(
        static_cast<const T*>(bias), rows, width, static_cast<T*>(y));
  });
  ACTCAP_CUDA_LAUNCHED("linear bias");
}

void launch_layer_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const void* weight, const void* bias,
                       float eps, void* y, cudaStream_t stream) {
  if (rows == 0) return;
  check_grid(rows, "layer_norm");
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    layer_norm_kernel<T><<<unsigned(rows), row_threads(dim), 0, stream>>>(
        static_cast<const T*>(x), dim, static_cast<const T*>(weight), static_cast<const T*>(bias), eps,
        static_cast<T*>(y));
  });
  ACTCAP_CUDA_LAUNCHED("layer_norm");
}

void launch_rms_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const void* weight, float eps, void* y,
                     cudaStream_t stream) {
  if (rows == 0) return;
  check_grid(rows, "rms_norm");
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    rms_norm_kernel<T><<<unsigned(rows), row_threads(dim), 0, stream>>>(
        static_cast<const T*>(x), dim, static_cast<const T*>(weight), eps, static_cast<T*>(y));
  });
  ACTCAP_CUDA_LAUNCHED("rms_norm");
}

void launch_rotary(DType dtype, void* x, int64_t heads, int64_t head_dim, int64_t rotary_dims,
                   const float* inv_freq, float attention_scaling, const DeviceBatch& batch, cudaStream_t stream) {
  if (batch.rows == 0 || rotary_dims == 0) return;
  if (rotary_dims % 2 != 0 || rotary_dims > head_dim)
    internal_error("rotary over " + std::to_string(rotary_dims) + " of head_dim " + std::to_string(head_dim));
  check_grid(batch.rows, "rotary");
  const int64_t half = rotary_dims / 2;
  const size_t table_bytes = size_t(2 * half) * sizeof(float);
  if (table_bytes > 48 * 1024) internal_error("rotary head_dim " + std::to_string(head_dim) + " is too large");
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    rotary_kernel<T><<<unsigned(batch.rows), row_threads(heads * half), table_bytes, stream>>>(
        static_cast<T*>(x), heads, head_dim, half, inv_freq, attention_scaling, batch.positions);
  });
  ACTCAP_CUDA_LAUNCHED("rotary");
}

void launch_activate(DType dtype, Activation activation, void* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    activate_kernel<T><<<blocks_for(n, ELEMENT_THREADS), ELEMENT_THREADS, 0, stream>>>(activation,
                                                                                       static_cast<T*>(x), n);
  });
  ACTCAP_CUDA_LAUNCHED("activate");
}

void launch_gated_activate(DType dtype, Activation activation, const void* gate, const void* up, void* out, int64_t n,
                           cudaStream_t stream) {
  if (n == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    gated_activate_kernel<T><<<blocks_for(n, ELEMENT_THREADS), ELEMENT_THREADS, 0, stream>>>(
        activation, static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(out), n);
  });
  ACTCAP_CUDA_LAUNCHED("gated_activate");
}

void launch_add(DType dtype, const void* a, const void* b, void* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    add_kernel<T><<<blocks_for(n, ELEMENT_THREADS), ELEMENT_THREADS, 0, stream>>>(
        static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), n);
  });
  ACTCAP_CUDA_LAUNCHED("add");
}

void launch_scale(DType dtype, void* x, float factor, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    scale_kernel<T><<<blocks_for(n, ELEMENT_THREADS), ELEMENT_THREADS, 0, stream>>>(static_cast<T*>(x), factor, n);
  });
  ACTCAP_CUDA_LAUNCHED("scale");
}

void launch_gemma_rms_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const void* weight, float eps,
                           void* y, cudaStream_t stream) {
  if (rows == 0) return;
  check_grid(rows, "gemma_rms_norm");
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    gemma_rms_norm_kernel<T><<<unsigned(rows), row_threads(dim), 0, stream>>>(
        static_cast<const T*>(x), dim, static_cast<const T*>(weight), eps, static_cast<T*>(y));
  });
  ACTCAP_CUDA_LAUNCHED("gemma_rms_norm");
}

void launch_softcap(DType dtype, void* x, float cap, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    softcap_kernel<T><<<blocks_for(n, ELEMENT_THREADS), ELEMENT_THREADS, 0, stream>>>(static_cast<T*>(x), cap, n);
  });
  ACTCAP_CUDA_LAUNCHED("softcap");
}

void launch_to_f32(DType dtype, const void* src, float* dst, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    to_f32_kernel<T><<<blocks_for(n, ELEMENT_THREADS), ELEMENT_THREADS, 0, stream>>>(static_cast<const T*>(src), dst,
                                                                                     n);
  });
  ACTCAP_CUDA_LAUNCHED("capture snapshot");
}

}  // namespace actcap::ops::cuda
