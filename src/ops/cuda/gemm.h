#pragma once
// Dense layers on cuBLAS, on the backend's compute stream with a fixed workspace (so cuBLAS never allocates
// one of its own and picks the same kernels every run: deterministic results).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/dtype.h"
#include "ops/backend.h"

namespace actcap::ops::cuda {

class Gemm {
 public:
  // fp32 GEMMs use TF32 tensor cores only with allow_tf32; 16-bit ones accumulate in fp32.
  Gemm(cudaStream_t stream, DType dtype, bool allow_tf32);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y[rows, out] = x[rows, in] W^T + b (row-major). The bias is added inside the GEMM (beta = 1 over y holding
  // the broadcast bias), so it is rounded once with the product, as PyTorch's addmm.
  void linear(const Linear& layer, const void* x, int64_t rows, void* y);

 private:
  cudaStream_t stream_;
  DType dtype_;
  cublasComputeType_t compute_;
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace actcap::ops::cuda
