#include "ops/cuda/cuda_check.h"

#include "core/error.h"

namespace actcap::ops::cuda {

void throw_cuda_error(cudaError_t status, const char* call) {
  // Clears a sticky-free error so that the next call does not report it again.
  cudaGetLastError();
  fail("CUDA: {}: {}", call, cudaGetErrorString(status));
}

void throw_cublas_error(cublasStatus_t status, const char* call) {
  fail("cuBLAS: {}: {}", call, cublasGetStatusString(status));
}

void internal_error(const std::string& what) { fail("internal error: {}", what); }

}  // namespace actcap::ops::cuda
