// rms_norm and rotary as OLMo 2 computes them in transformers 5: the weight multiplies the normalised fp32
// value, and the rotation uses fp32 cos/sin on the upcast q/k, so each output is rounded to the dtype once.
// The statistics and angles are the same bits as kernels_elementwise.cu's, only the roundings differ.
#include "ops/cuda/kernels.h"
#include "ops/cuda/numeric.cuh"
#include "ops/cuda/row_reduce.cuh"

namespace actcap::ops::cuda {
namespace {

// HF Olmo2RMSNorm: (weight * (x_f32 * rsqrt(mean(x_f32^2) + eps))).to(dtype). y may alias x.
template <typename T>
__global__ void rms_norm_fp32_weight_kernel(const T* x, int64_t dim, const T* weight, float eps, T* y) {
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
    out[i] = from_f<T>(__fmul_rn(to_f(weight[i]), __fmul_rn(to_f(in[i]), rstd)));
}

// HF (olmo2 apply_rotary_pos_emb): (x * cos + rotate_half(x) * sin).to(dtype) with fp32 cos/sin, so x is
// promoted to fp32 and only the sum is rounded.
template <typename T>
__global__ void rotary_fp32_tables_kernel(T* x, int64_t heads, int64_t half, const float* inv_freq,
                                          const int32_t* positions) {
  extern __shared__ float table[];  // cos [half], sin [half]
  const int64_t r = blockIdx.x;
  const float position = float(positions[r]);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = __fmul_rn(position, inv_freq[i]);
    table[i] = cosf(angle);
    table[half + i] = sinf(angle);
  }
  __syncthreads();
  T* row = x + r * heads * 2 * half;
  for (int64_t e = threadIdx.x; e < heads * half; e += blockDim.x) {
    const int64_t h = e / half, i = e % half;
    T* v = row + h * 2 * half;
    const float a = to_f(v[i]), b = to_f(v[i + half]), c = table[i], s = table[half + i];
    v[i] = from_f<T>(__fadd_rn(__fmul_rn(a, c), -__fmul_rn(b, s)));
    v[i + half] = from_f<T>(__fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s)));
  }
}

}  // namespace

void launch_rms_norm_fp32_weight(DType dtype, const void* x, int64_t rows, int64_t dim, const void* weight, float eps,
                                 void* y, cudaStream_t stream) {
  if (rows == 0) return;
  check_grid(rows, "rms_norm_fp32_weight");
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    rms_norm_fp32_weight_kernel<T><<<unsigned(rows), row_threads(dim), 0, stream>>>(
        static_cast<const T*>(x), dim, static_cast<const T*>(weight), eps, static_cast<T*>(y));
  });
  ACTCAP_CUDA_LAUNCHED("rms_norm_fp32_weight");
}

void launch_rotary_fp32_tables(DType dtype, void* x, int64_t heads, int64_t head_dim, const float* inv_freq,
                               const DeviceBatch& batch, cudaStream_t stream) {
  if (batch.rows == 0) return;
  if (head_dim % 2 != 0) internal_error("rotary over an odd head_dim " + std::to_string(head_dim));
  check_grid(batch.rows, "rotary_fp32_tables");
  const int64_t half = head_dim / 2;
  const size_t table_bytes = size_t(2 * half) * sizeof(float);
  if (table_bytes > 48 * 1024) internal_error("rotary head_dim " + std::to_string(head_dim) + " is too large");
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    rotary_fp32_tables_kernel<T><<<unsigned(batch.rows), row_threads(heads * half), table_bytes, stream>>>(
        static_cast<T*>(x), heads, half, inv_freq, batch.positions);
  });
  ACTCAP_CUDA_LAUNCHED("rotary_fp32_tables");
}

}  // namespace actcap::ops::cuda
