// clamp: torch.clamp_(x, -limit, limit) as OLMo applies clip_qkv. Comparisons only, so no rounding: a value
// outside the range becomes the bound (an exact bf16/fp16 value for the clip_qkv of real checkpoints), and NaN
// stays NaN as in PyTorch (fminf / fmaxf would drop it).
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/kernels.h"
#include "ops/cuda/numeric.cuh"

namespace actcap::ops::cuda {
namespace {

constexpr int THREADS = 256;

template <typename T>
__global__ void clamp_kernel(T* x, float limit, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const float v = to_f(x[e]);
    if (v < -limit) x[e] = from_f<T>(-limit);
    if (v > limit) x[e] = from_f<T>(limit);
  }
}

}  // namespace

void launch_clamp(DType dtype, void* x, float limit, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    clamp_kernel<T><<<blocks_for(n, THREADS), THREADS, 0, stream>>>(static_cast<T*>(x), limit, n);
  });
  ACTCAP_CUDA_LAUNCHED("clamp");
}

}  // namespace actcap::ops::cuda
