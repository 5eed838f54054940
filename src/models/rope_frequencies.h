#pragma once
#include <cstdint>

#include "models/config.h"

namespace actcap {

// The rotary inverse frequencies [head_dim / 2] for a rope configuration (default, linear, llama3), computed on
// the host in fp32 the way transformers does, for every backend.
void rope_inverse_frequencies(const RopeConfig& rope, int64_t head_dim, float* inv_freq);

}  // namespace actcap
