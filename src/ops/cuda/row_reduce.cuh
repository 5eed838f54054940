#pragma once
// What the row-wise kernels share: threads per row, the grid-size check and a block sum in a fixed order (so a
// row's statistics are the same bits in every run and batch composition).
#include <cstdint>
#include <string>

#include "ops/cuda/cuda_check.h"

namespace actcap::ops::cuda {

// Threads per row for a row-wise kernel: a warp for short rows (head-sized norms), more for long ones.
inline int row_threads(int64_t dim) { return dim >= 2048 ? 256 : dim >= 512 ? 128 : dim >= 128 ? 64 : 32; }

inline void check_grid(int64_t rows, const char* op) {
  if (rows > int64_t(0x7fffffff)) internal_error(std::string(op) + " over " + std::to_string(rows) + " rows exceeds a CUDA grid");
}

// Sum over the block in a fixed order: warp butterflies, then the warps' partials in index order.
__device__ inline double block_sum(double v, double* partial) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  __syncthreads();  // `partial` may still be read from a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < warps; ++w) total += partial[w];
  return total;
}

}  // namespace actcap::ops::cuda
