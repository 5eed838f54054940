#pragma once
// Element types on the device: fp32 arithmetic inside every kernel, rounding to the storage type T where
// PyTorch rounds (rd<T> is the identity for fp32), and the dispatch from a runtime DType to a kernel template.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/dtype.h"
#include "ops/cuda/cuda_check.h"

namespace actcap::ops::cuda {

template <typename T>
struct Storage;
template <>
struct Storage<float> {
  static __device__ __forceinline__ float load(float v) { return v; }
  static __device__ __forceinline__ float store(float v) { return v; }
};
template <>
struct Storage<__nv_bfloat16> {
  static __device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};
template <>
struct Storage<__half> {
  static __device__ __forceinline__ float load(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half store(float v) { return __float2half_rn(v); }
};

template <typename T>
__device__ __forceinline__ float to_f(T v) {
  return Storage<T>::load(v);
}
template <typename T>
__device__ __forceinline__ T from_f(float v) {
  return Storage<T>::store(v);
}
// The value an fp32 result has once stored as T (round to nearest even).
template <typename T>
__device__ __forceinline__ float rd(float v) {
  return to_f<T>(from_f<T>(v));
}

// Calls fn(T{}) with T the storage type of `dtype`.
template <typename Fn>
void dispatch(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::F32:
      fn(float{});
      return;
    case DType::BF16:
      fn(__nv_bfloat16{});
      return;
    case DType::F16:
      fn(__half{});
      return;
    default:
      internal_error("the CUDA backend has no kernels for " + std::string(dtype_name(dtype)));
  }
}

inline unsigned blocks_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < 1 ? 1 : blocks > (int64_t(1) << 20) ? (int64_t(1) << 20) : blocks);
}

}  // namespace actcap::ops::cuda
