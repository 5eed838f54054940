// Mixture-of-experts row movement on the device: gathering one expert's rows and adding its weighted output back.
#include "ops/cuda/kernels.h"
#include "ops/cuda/numeric.cuh"

namespace actcap::ops::cuda {
namespace {

constexpr int ROW_THREADS = 256;

template <typename T>
__global__ void gather_rows_kernel(const T* src, int64_t width, const int32_t* rows, int64_t count, T* dst) {
  const int64_t n = count * width;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = src[int64_t(rows[i / width]) * width + i % width];
}

// Rows are distinct, so no two threads write the same element.
template <typename T>
__global__ void scatter_add_rows_kernel(const T* src, int64_t width, const int32_t* rows, const float* weights,
                                        int64_t count, T* dst) {
  const int64_t n = count * width;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / width;
    T& out = dst[int64_t(rows[r]) * width + i % width];
    const float weighted = rd<T>(__fmul_rn(to_f(src[i]), weights[r]));
    out = from_f<T>(__fadd_rn(to_f(out), weighted));
  }
}

}  // namespace

void launch_gather_rows(DType dtype, const void* src, int64_t width, const int32_t* rows, int64_t count, void* dst,
                        cudaStream_t stream) {
  if (count == 0 || width == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    gather_rows_kernel<T><<<blocks_for(count * width, ROW_THREADS), ROW_THREADS, 0, stream>>>(
        static_cast<const T*>(src), width, rows, count, static_cast<T*>(dst));
  });
  ACTCAP_CUDA_LAUNCHED("gather_rows");
}

void launch_scatter_add_rows(DType dtype, const void* src, int64_t width, const int32_t* rows, const float* weights,
                             int64_t count, void* dst, cudaStream_t stream) {
  if (count == 0 || width == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    scatter_add_rows_kernel<T><<<blocks_for(count * width, ROW_THREADS), ROW_THREADS, 0, stream>>>(
        static_cast<const T*>(src), width, rows, weights, count, static_cast<T*>(dst));
  });
  ACTCAP_CUDA_LAUNCHED("scatter_add_rows");
}

}  // namespace actcap::ops::cuda
