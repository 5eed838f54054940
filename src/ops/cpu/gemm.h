#pragma once
// actcap's own GEMM kernels behind cpu::linear (linear.cpp), for AVX-512 CPUs (x86-64 builds only): dot products
// on the weights as stored (gemm_avx512.cpp) and outer products on packed weight panels (gemm_avx512_packed.cpp).
// y has row pitch ldy; the bias (cols values) may be null. Each output's bits depend only on its inputs and K.
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "ops/backend.h"

namespace actcap::ops::cpu {

// Whether the AVX-512 kernels run: the CPU has AVX512F/BW/VL/BF16 and ACTCAP_CPU_KERNELS is not "portable" (read
// at each call, so tests switch paths; a value other than auto/portable is an actcap::Error).
bool use_avx512_kernels();

// The dot-product kernels read W as [cols, K] rows (nn.Linear's layout).
// y = bf16(x W^T + bias): bf16 in and out, fp32 sums of exact bf16 products (vdpbf16ps).
void bf16_dot_avx512(const uint16_t* x, int64_t rows, const uint16_t* w, int64_t cols, int64_t K, const float* bias,
                     uint16_t* y, int64_t ldy);

// y = x W^T + bias in fp32, W (F32, BF16 or F16) widened exactly on the fly.
void f32_dot_avx512(const float* x, int64_t rows, const void* w, DType weight_dtype, int64_t cols, int64_t K,
                    const float* bias, float* y, int64_t ldy);

// The packed kernels: a column tile's weights packed once per call (any layout, any stored dtype) into panels
// of PANEL outputs, then every row of the call against them (gemm_avx512_packed.cpp).
constexpr int64_t PANEL = 32;
// Outputs [n0, n0 + n) of `layer` (weights stored as `dtype`), widened: ceil(n / PANEL) panels of [K][PANEL].
void pack_f32_panels(const Linear& layer, DType dtype, int64_t n0, int64_t n, std::vector<float>& packed);
// Outputs [n0, n0 + n) of `layer` (bf16 weights): panels of [ceil(K / 2)][PANEL][2], pairs of consecutive k.
void pack_bf16_panels(const Linear& layer, int64_t n0, int64_t n, std::vector<uint16_t>& packed);
// y[rows, cols] (row pitch ldy) = x[rows, K] W^T + bias from packed panels, fp32 / bf16 (vdpbf16ps).
void f32_gemm_avx512(const float* x, int64_t rows, const float* packed, int64_t cols, int64_t K, const float* bias,
                     float* y, int64_t ldy);
void bf16_gemm_avx512(const uint16_t* x, int64_t rows, const uint16_t* packed, int64_t cols, int64_t K,
                      const float* bias, uint16_t* y, int64_t ldy);

}  // namespace actcap::ops::cpu
