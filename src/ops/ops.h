#pragma once
// The operations the models are written in: one interface, implemented for the CPU in ops/cpu/ (a CUDA
// implementation can provide the same functions later). All buffers are fp32, row-major.
//
// Determinism: every output element is computed by arithmetic that depends only on its own inputs, never on
// the number of rows in the call, the thread count or how the work is split, so results are bit-identical
// across runs, thread counts and batch compositions.
#include <cstdint>

#include "models/config.h"

namespace actcap::ops {

// A dense layer y = x W^T + b. HF's nn.Linear stores W as [out, in]; GPT-2's Conv1D stores it as [in, out].
struct Linear {
  const float* weight = nullptr;
  const float* bias = nullptr;  // may be null
  int64_t in = 0, out = 0;
  bool in_out_layout = false;   // true for Conv1D
};

// y[rows, out] = x[rows, in] W^T + b
void linear(const Linear& layer, const float* x, int64_t rows, float* y);

// HF LayerNorm / RMSNorm over the last dimension (bias may be null).
void layer_norm(const float* x, int64_t rows, int64_t dim, const float* weight, const float* bias, float eps,
                float* y);
void rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps, float* y);

// The rotary inverse frequencies [head_dim / 2] for a rope configuration (default, linear, llama3), computed in
// fp32 the way transformers does.
void rope_inverse_frequencies(const RopeConfig& rope, int64_t head_dim, float* inv_freq);
// Rotates x [rows, heads, head_dim] in place (rotate_half convention); row r sits at position first_position + r.
void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t first_position,
                  const float* inv_freq);

// Causal attention of `rows` new queries at positions [first_position, first_position + rows) over the keys and
// values of positions [0, first_position + rows).
struct AttentionShape {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 1.0f;
  int64_t sliding_window = 0;  // 0 = none; else key j is visible from query i when i - window < j <= i
};
// q [rows, heads, head_dim]; keys/values [>= first_position + rows, kv_heads, head_dim];
// z [rows, heads * head_dim]; pattern (may be null) [rows, heads, first_position + rows].
void attention(const AttentionShape& shape, const float* q, int64_t rows, int64_t first_position, const float* keys,
               const float* values, float* z, float* pattern);

// In place: x = act(x).
void activate(Activation activation, float* x, int64_t n);
// out = act(gate) * up
void gated_activate(Activation activation, const float* gate, const float* up, float* out, int64_t n);
// out = a + b (out may alias a or b)
void add(const float* a, const float* b, float* out, int64_t n);

}  // namespace actcap::ops
