#pragma once
// The CPU backend's kernels, on host buffers (row-major).
//
// Determinism: every output element is computed by arithmetic that depends only on its own inputs and the
// call's shape, never on the thread count or how the work is split, so results are bit-identical across runs
// and thread counts; callers keep them independent of batch composition (linear: linear_independent_rows).
#include <cstdint>
#include <span>

#include "ops/backend.h"

namespace actcap::ops::cpu {

// y[rows, out] = x[rows, in] W^T + b. W holds weight_dtype elements (F32, BF16 or F16), x and y act_dtype ones
// (F32 or BF16), the bias (may be null) is fp32.
// F32 activations: W is widened to fp32 (exactly) and accumulated in fp32, so the results are the bits the same
// weights stored in fp32 give. BF16 activations (W must be BF16), as PyTorch's CPU bf16 linear: fp32 sums of
// the exact bf16 products, plus the bias in fp32, rounded to bf16 (nearest even); AVX512-BF16 dot products
// where the CPU has them. fp32 activations also use AVX-512 kernels (fp32 FMAs, weights widened exactly) there;
// ACTCAP_CPU_KERNELS=portable forces the portable paths (OpenBLAS sgemm).
void linear(const Linear& layer, DType weight_dtype, DType act_dtype, const void* x, int64_t rows, void* y);
// Several layers of the same input x, as one parallel job; each output is what linear() gives it.
struct LinearCall {
  const Linear* layer = nullptr;
  DType weight_dtype = DType::F32;
  void* y = nullptr;
};
void linear(std::span<const LinearCall> calls, DType act_dtype, const void* x, int64_t rows);
// linear() computes calls of up to this many rows (0: none) with kernels under which a row's bits do not
// depend on the other rows of the call: a caller may then pass the rows of several sequences in one call,
// and the weights stream once for all of them (decode steps of a batch).
int64_t linear_independent_rows(const Linear& layer, DType act_dtype);

// The ops below work on activations of `dtype` (F32, or BF16 rounded where PyTorch rounds: see ops/backend.h);
// norm weights and biases are fp32.

// HF LayerNorm / RMSNorm over the last dimension (bias may be null); y may alias x.
void layer_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, const float* bias,
                float eps, void* y);
void rms_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, float eps, void* y);

// Rotates the first rotary_dims of each head of x [rows, heads, head_dim] in place (rotate_half convention) by
// position * inv_freq, cos and sin times attention_scaling; row r sits at position first_position + r.
void apply_rotary(DType dtype, void* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t first_position,
                  int64_t rotary_dims, const float* inv_freq, float attention_scaling);

// Causal attention of `rows` new queries at positions [first_position, first_position + rows) over the keys and
// values of positions [0, first_position + rows): q [rows, heads, head_dim]; keys/values
// [>= first_position + rows, kv_heads, head_dim]; z [rows, heads * head_dim]; pattern (may be null)
// [rows, heads, first_position + rows].
void attention(DType dtype, const AttentionShape& shape, const void* q, int64_t rows, int64_t first_position,
               const void* keys, const void* values, void* z, void* pattern);

// In place: x = act(x).
void activate(DType dtype, Activation activation, void* x, int64_t n);
// out = act(gate) * up
void gated_activate(DType dtype, Activation activation, const void* gate, const void* up, void* out, int64_t n);
// out = a + b (out may alias a or b)
void add(DType dtype, const void* a, const void* b, void* out, int64_t n);
void scale(DType dtype, void* x, float factor, int64_t n);

// OLMo 2's RMSNorm and rotary: the ops above with the weight product / cos, sin and the products in fp32, each
// output rounded once (ops/backend.h rms_norm_fp32_weight, rotary_fp32_tables); y may alias x.
void rms_norm_fp32_weight(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, float eps,
                          void* y);
void apply_rotary_fp32_tables(DType dtype, void* x, int64_t rows, int64_t heads, int64_t head_dim,
                              int64_t first_position, const float* inv_freq);
// x = min(max(x, -limit), limit) in place; NaN stays NaN.
void clamp(DType dtype, void* x, float limit, int64_t n);

// Gemma's RMSNorm: (x * rsqrt(mean(x^2) + eps)) * (1 + weight), rounded once; y may alias x.
void gemma_rms_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, float eps, void* y);
// x = tanh(x / cap) * cap, each step rounded
void softcap(DType dtype, void* x, float cap, int64_t n);

// dst[i, :] = src[rows[i], :]
void gather_rows(DType dtype, const void* src, int64_t width, std::span<const int32_t> rows, void* dst);
// dst[rows[i], :] += src[i, :] * weights[i], in order of i; the product and the sum each rounded
void scatter_add_rows(DType dtype, const void* src, int64_t width, std::span<const int32_t> rows,
                      std::span<const float> weights, void* dst);

}  // namespace actcap::ops::cpu
