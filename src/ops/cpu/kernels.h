#pragma once
// The CPU backend's kernels, on host fp32 buffers (row-major).
//
// Determinism: every output element is computed by arithmetic that depends only on its own inputs, never on
// the number of rows in the call, the thread count or how the work is split, so results are bit-identical
// across runs, thread counts and batch compositions.
#include <cstdint>

#include "ops/backend.h"

namespace actcap::ops::cpu {

// y[rows, out] = x[rows, in] W^T + b, with fp32 weights.
void linear(const Linear& layer, const float* x, int64_t rows, float* y);

// HF LayerNorm / RMSNorm over the last dimension (bias may be null).
void layer_norm(const float* x, int64_t rows, int64_t dim, const float* weight, const float* bias, float eps,
                float* y);
void rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y);

// Rotates the first rotary_dims of each head of x [rows, heads, head_dim] in place (rotate_half convention) by
// position * inv_freq, cos and sin times attention_scaling; row r sits at position first_position + r.
void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t first_position,
                  int64_t rotary_dims, const float* inv_freq, float attention_scaling);

// Causal attention of `rows` new queries at positions [first_position, first_position + rows) over the keys and
// values of positions [0, first_position + rows): q [rows, heads, head_dim]; keys/values
// [>= first_position + rows, kv_heads, head_dim]; z [rows, heads * head_dim]; pattern (may be null)
// [rows, heads, first_position + rows].
void attention(const AttentionShape& shape, const float* q, int64_t rows, int64_t first_position, const float* keys,
               const float* values, float* z, float* pattern);

// In place: x = act(x).
void activate(Activation activation, float* x, int64_t n);
// out = act(gate) * up
void gated_activate(Activation activation, const float* gate, const float* up, float* out, int64_t n);
// out = a + b (out may alias a or b)
void add(const float* a, const float* b, float* out, int64_t n);
void scale(float* x, float factor, int64_t n);

}  // namespace actcap::ops::cpu
