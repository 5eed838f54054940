#pragma once
// The CPU backend's kernels, on host buffers (row-major).
//
// Determinism: every output element is computed by arithmetic that depends only on its own inputs, never on
// the number of rows in the call, the thread count or how the work is split, so results are bit-identical
// across runs, thread counts and batch compositions.
#include <cstdint>

#include "ops/backend.h"

namespace actcap::ops::cpu {

// y[rows, out] = x[rows, in] W^T + b, with fp32 weights.
void linear(const Linear& layer, const float* x, int64_t rows, float* y);

// The ops below work on activations of `dtype` (F32, or BF16 rounded where PyTorch rounds: see ops/backend.h);
// norm weights and biases are fp32.

// HF LayerNorm / RMSNorm over the last dimension (bias may be null); y may alias x.
void layer_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, const float* bias,
                float eps, void* y);
void rms_norm(DType dtype, const void* x, int64_t rows, int64_t dim, const float* weight, float eps, void* y);

// Rotates x [rows, heads, head_dim] in place (rotate_half convention); row r sits at position first_position + r.
void apply_rotary(DType dtype, void* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t first_position,
                  const float* inv_freq);

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

}  // namespace actcap::ops::cpu
