// Matches transformers' ROPE_INIT_FUNCTIONS (default, linear, llama3) in fp32.
#include "models/rope_frequencies.h"

#include <cmath>
#include <numbers>

#include "core/dtype.h"
#include "core/error.h"

namespace actcap {

void rope_inverse_frequencies(const RopeConfig& rope, int64_t head_dim, float* inv_freq) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    float exponent = float(2 * i) / float(head_dim);
    inv_freq[i] = 1.0f / std::pow(float(rope.theta), exponent);
  }
  if (rope.type == "linear") {
    for (int64_t i = 0; i < half; ++i) inv_freq[i] /= float(rope.factor);
  } else if (rope.type == "llama3") {
    const double old_context = double(rope.original_max_position_embeddings);
    const double low_wavelen = old_context / rope.low_freq_factor;
    const double high_wavelen = old_context / rope.high_freq_factor;
    const float factor = float(rope.factor);
    for (int64_t i = 0; i < half; ++i) {
      const float f = inv_freq[i];
      const float wavelen = float(2 * std::numbers::pi) / f;
      float scaled = wavelen > low_wavelen ? f / factor : f;
      const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      if (medium) {
        const float smooth = float((old_context / wavelen - rope.low_freq_factor) /
                                   (rope.high_freq_factor - rope.low_freq_factor));
        scaled = (1 - smooth) * scaled / factor + smooth * scaled;
      }
      inv_freq[i] = scaled;
    }
  } else if (rope.type != "default") {
    fail("internal error: rope type {}", rope.type);
  }
  const DType held = rope.frequencies_dtype == "bfloat16" ? DType::BF16
                     : rope.frequencies_dtype == "float16" ? DType::F16
                                                            : DType::F32;
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = round_to(held, inv_freq[i]);
}

}  // namespace actcap
