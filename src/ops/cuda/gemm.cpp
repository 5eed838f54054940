#include "ops/cuda/gemm.h"

#include <climits>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/kernels.h"

namespace actcap::ops::cuda {
namespace {

constexpr size_t WORKSPACE_BYTES = size_t(32) << 20;  // cuBLAS's recommendation for Hopper

cudaDataType_t cuda_type(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::BF16:
      return CUDA_R_16BF;
    case DType::F16:
      return CUDA_R_16F;
    default:
      fail("internal error: no cuBLAS type for {}", dtype_name(dtype));
  }
}

}  // namespace

Gemm::Gemm(cudaStream_t stream, DType dtype, bool allow_tf32)
    : stream_(stream),
      dtype_(dtype),
      compute_(dtype == DType::F32 && allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) {
  cuda_type(dtype);  // rejects other dtypes before anything is allocated
  ACTCAP_CUBLAS(cublasCreate(&handle_));
  try {
    ACTCAP_CUBLAS(cublasSetStream(handle_, stream_));
    ACTCAP_CUDA(cudaMalloc(&workspace_, WORKSPACE_BYTES));
    ACTCAP_CUBLAS(cublasSetWorkspace(handle_, workspace_, WORKSPACE_BYTES));
    // 16-bit GEMMs keep split-K partial sums in fp32 too (cuBLAS may otherwise reduce them in the dtype).
    const cublasMath_t math = dtype == DType::F32 ? (allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH)
                                                  : cublasMath_t(CUBLAS_DEFAULT_MATH |
                                                                 CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    ACTCAP_CUBLAS(cublasSetMathMode(handle_, math));
    ACTCAP_CUBLAS(cublasSetAtomicsMode(handle_, CUBLAS_ATOMICS_NOT_ALLOWED));
  } catch (...) {
    if (workspace_) cudaFree(workspace_);
    cublasDestroy(handle_);
    throw;
  }
}

Gemm::~Gemm() {
  cublasDestroy(handle_);
  cudaFree(workspace_);
}

void Gemm::linear(const Linear& layer, const void* x, int64_t rows, void* y) {
  if (rows == 0 || layer.out == 0) return;
  if (rows > INT_MAX || layer.in > INT_MAX || layer.out > INT_MAX)
    fail("internal error: linear of {} rows, {} -> {} exceeds cuBLAS's int sizes", rows, layer.in, layer.out);
  const int m = int(layer.out), n = int(rows), k = int(layer.in);
  const float alpha = 1.0f, beta = layer.bias ? 1.0f : 0.0f;
  if (layer.bias) launch_broadcast_rows(dtype_, layer.bias, rows, layer.out, y, stream_);
  // Column-major view: y^T [out, rows] = W' [out, in] x^T [in, rows], with x^T being x as stored. An [out, in]
  // weight read column-major is [in, out], hence the transpose; a Conv1D [in, out] weight is W' as stored.
  const cudaDataType_t type = cuda_type(dtype_);
  const cublasOperation_t op_w = layer.in_out_layout ? CUBLAS_OP_N : CUBLAS_OP_T;
  const int ld_w = layer.in_out_layout ? m : k;
  ACTCAP_CUBLAS(cublasGemmEx(handle_, op_w, CUBLAS_OP_N, m, n, k, &alpha, layer.weight, type, ld_w, x, type, k,
                             &beta, y, type, m, compute_, CUBLAS_GEMM_DEFAULT));
}

}  // namespace actcap::ops::cuda
