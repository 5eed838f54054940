#pragma once
// The GEMM kernels behind cpu::linear (linear.cpp) beyond OpenBLAS: dot-product kernels for AVX-512 CPUs
// (gemm_avx512.cpp, x86-64 builds only). Weights are [cols, K] rows (nn.Linear's layout), y has row pitch ldy,
// bias (cols values) may be null. Each output's bits depend only on its inputs and K.
#include <cstdint>

#include "core/dtype.h"

namespace actcap::ops::cpu {

// Whether the AVX-512 kernels run: the CPU has AVX512F/BW/VL/BF16 and ACTCAP_CPU_KERNELS is not "portable" (read
// at each call, so tests switch paths; a value other than auto/portable is an actcap::Error).
bool use_avx512_kernels();

// y = bf16(x W^T + bias): bf16 in and out, fp32 sums of exact bf16 products (vdpbf16ps).
void bf16_dot_avx512(const uint16_t* x, int64_t rows, const uint16_t* w, int64_t cols, int64_t K, const float* bias,
                     uint16_t* y, int64_t ldy);

// y = x W^T + bias in fp32, W (F32, BF16 or F16) widened exactly on the fly.
void f32_dot_avx512(const float* x, int64_t rows, const void* w, DType weight_dtype, int64_t cols, int64_t K,
                    const float* bias, float* y, int64_t ldy);

}  // namespace actcap::ops::cpu
