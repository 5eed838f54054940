// Matches transformers' ROPE_INIT_FUNCTIONS (default, linear, llama3, longrope) in fp32.
#include "models/rope_frequencies.h"

#include <cmath>
#include <numbers>

#include "core/dtype.h"
#include "core/error.h"

namespace actcap {
namespace {

DType frequencies_dtype(const RopeConfig& rope) {
  return rope.frequencies_dtype == "bfloat16" ? DType::BF16
         : rope.frequencies_dtype == "float16" ? DType::F16
                                                : DType::F32;
}

// base ** (2i / dim) as torch computes it: an fp32 exponent, an fp32 power.
float base_power(const RopeConfig& rope, int64_t i, int64_t dim) {
  return std::pow(float(rope.theta), float(2 * i) / float(dim));
}

// _compute_longrope_parameters: 1 / (ext_factor * base ** (2i / dim)) in fp32, ext_factor rounded to fp32.
std::vector<float> longrope_table(const RopeConfig& rope, const std::vector<double>& ext_factors, int64_t dim) {
  std::vector<float> table(size_t(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float divisor = float(ext_factors[size_t(i)]) * base_power(rope, i, dim);
    table[size_t(i)] = round_to(frequencies_dtype(rope), 1.0f / divisor);
  }
  return table;
}

}  // namespace

void rope_inverse_frequencies(const RopeConfig& rope, int64_t dim, float* inv_freq) {
  const int64_t half = dim / 2;
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = 1.0f / base_power(rope, i, dim);
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
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = round_to(frequencies_dtype(rope), inv_freq[i]);
}

int64_t rotary_dims(const RopeConfig& rope, int64_t head_dim) {
  return int64_t(double(head_dim) * rope.partial_rotary_factor);
}

void check_partial_rotary(const RopeConfig& rope, int64_t head_dim, const std::string& origin, const char* key) {
  const double factor = rope.partial_rotary_factor;
  const int64_t dims = factor > 0 && factor <= 1 ? rotary_dims(rope, head_dim) : 0;
  if (dims < 2 || dims % 2 != 0)
    fail("{}: \"{}\" {} must be in (0, 1] and rotate an even number of head_dim {}'s dims (it rotates {})", origin,
         key, factor, head_dim, dims);
}

RotaryFrequencies rotary_frequencies(const RopeConfig& rope, int64_t head_dim) {
  RotaryFrequencies f;
  f.rotary_dims = rotary_dims(rope, head_dim);
  if (rope.type != "longrope") {
    f.inv_freq.resize(size_t(f.rotary_dims / 2));
    rope_inverse_frequencies(rope, f.rotary_dims, f.inv_freq.data());
    return f;
  }
  f.inv_freq = longrope_table(rope, rope.short_factor, f.rotary_dims);
  f.long_inv_freq = longrope_table(rope, rope.long_factor, f.rotary_dims);
  f.long_after = rope.original_max_position_embeddings;
  const double original = double(rope.original_max_position_embeddings);
  f.attention_scaling = float(rope.attention_factor.value_or(
      rope.factor <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(rope.factor) / std::log(original))));
  return f;
}

ops::RotaryTable upload_rotary(ops::Backend& backend, const RotaryFrequencies& f) {
  ops::RotaryTable table{f.rotary_dims, backend.f32_constant(f.inv_freq), nullptr, f.long_after, f.attention_scaling};
  if (!f.long_inv_freq.empty()) table.long_inv_freq = backend.f32_constant(f.long_inv_freq);
  return table;
}

}  // namespace actcap
