#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/config.h"
#include "ops/backend.h"

namespace actcap {

// The rotary inverse frequencies [dim / 2] for a rope configuration (default, linear, llama3) over `dim` rotated
// dims, computed on the host in fp32 the way transformers does, for every backend.
void rope_inverse_frequencies(const RopeConfig& rope, int64_t dim, float* inv_freq);

// int(head_dim * partial_rotary_factor), truncated as Python's int() does.
int64_t rotary_dims(const RopeConfig& rope, int64_t head_dim);
// Fails naming config.json's `key` unless the factor is in (0, 1] and rotates an even number (>= 2) of dims.
void check_partial_rotary(const RopeConfig& rope, int64_t head_dim, const std::string& origin, const char* key);

// Everything a model's rotary op needs, on the host (transformers' rotary embedding module at load time).
struct RotaryFrequencies {
  int64_t rotary_dims = 0;           // int(head_dim * partial_rotary_factor)
  std::vector<float> inv_freq;       // [rotary_dims / 2]; longrope: the short table
  std::vector<float> long_inv_freq;  // longrope only
  int64_t long_after = 0;            // longrope: original_max_position_embeddings
  float attention_scaling = 1.0f;
};
RotaryFrequencies rotary_frequencies(const RopeConfig& rope, int64_t head_dim);

// The tables in `backend`'s memory, as ops::Backend::rotary takes them (valid while the backend lives).
ops::RotaryTable upload_rotary(ops::Backend& backend, const RotaryFrequencies& frequencies);

}  // namespace actcap
