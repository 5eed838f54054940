#pragma once
// CUDA and cuBLAS failures as one-line actcap::Error messages naming the call. This header is included by .cu
// files, which cannot include core/error.h (nvcc's front end rejects fmt's constexpr code), so the throwing
// functions live in cuda_check.cpp.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

namespace actcap::ops::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call);
// An actcap::Error "internal error: <what>" (a broken invariant of the backend, not a user mistake).
[[noreturn]] void internal_error(const std::string& what);

inline void check_cuda(cudaError_t status, const char* call) {
  if (status != cudaSuccess) throw_cuda_error(status, call);
}

inline void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call);
}

}  // namespace actcap::ops::cuda

#define ACTCAP_CUDA(call) ::actcap::ops::cuda::check_cuda((call), #call)
#define ACTCAP_CUBLAS(call) ::actcap::ops::cuda::check_cublas((call), #call)
// After a kernel launch: reports a bad configuration at once (execution errors surface at the next sync).
#define ACTCAP_CUDA_LAUNCHED(kernel) ::actcap::ops::cuda::check_cuda(cudaGetLastError(), kernel " launch")
