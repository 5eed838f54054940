#pragma once
// The parts of a Hugging Face config.json (and generation_config.json) that the engine needs, in one struct,
// whichever transformers version wrote the file (rope_scaling + rope_theta in transformers 4, rope_parameters
// in transformers 5).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ops/activation.h"

namespace actcap {

// Rotary position embedding: base frequency and the scaling that reshapes the inverse frequencies.
struct RopeConfig {
  double theta = 10000.0;
  std::string type = "default";  // default | linear | llama3 | longrope
  double factor = 1.0;           // longrope: the key, else max_position_embeddings / original_max_position_embeddings
  double low_freq_factor = 1.0, high_freq_factor = 4.0;   // llama3
  int64_t original_max_position_embeddings = 8192;       // llama3, longrope
  // Only the first int(head_dim * partial_rotary_factor) dims of a head rotate (gpt_neox rotary_pct, phi3).
  double partial_rotary_factor = 1.0;
  // longrope (phi3; "su" in older files): inverse frequencies divided by short_factor, or by long_factor for
  // sequences longer than original_max_position_embeddings; cos and sin times attention_factor (absent: derived
  // from factor).
  std::vector<double> short_factor, long_factor;
  std::optional<double> attention_factor;
  // The inverse frequencies are fp32, as transformers computes them at load time. A model cast with
  // model.to(torch.bfloat16) has them rounded to bf16 (a buffer cast); "bfloat16"/"float16" here reproduces that.
  std::string frequencies_dtype = "float32";
};

// The keys only one architecture reads live in its own model file, in a struct deriving from this one.
struct FamilyConfig {
  virtual ~FamilyConfig() = default;
};

struct ModelConfig {
  std::string model_type;
  std::string dtype = "float32";  // the checkpoint's dtype as config.json states it (dtype / torch_dtype)
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // explicit in config.json or hidden_size / num_attention_heads
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  double norm_eps = 1e-5;
  Activation activation = Activation::Silu;
  RopeConfig rope;
  bool attention_bias = false;   // q/k/v/o biases (llama family); qwen2 always has q/k/v biases
  bool mlp_bias = false;
  bool tie_word_embeddings = false;
  // Sliding-window attention (a key j is visible from query i when i - window < j <= i), kept as a rule rather
  // than one entry per layer, so that parsing allocates nothing sized by num_hidden_layers before the checkpoint
  // has confirmed that many layers.
  int64_t sliding_window = 0;          // 0 = none
  int64_t first_sliding_layer = 0;     // qwen2 / qwen3 max_window_layers (transformers 4)
  std::vector<bool> sliding_layers;    // layer_types (transformers 5), when given: one entry per layer
  // The architecture's own keys (null when it has none), read back with family_as<T>().
  std::shared_ptr<const FamilyConfig> family;
  // Generation stops at any of these (generation_config.json, else config.json).
  std::vector<int32_t> eos_token_ids;
  std::optional<int32_t> bos_token_id;  // config.json's

  // The window of layer `layer` (0 = full causal attention).
  int64_t sliding_window_at(int64_t layer) const;
  template <typename T>
  const T& family_as() const {
    return dynamic_cast<const T&>(*family);
  }

  // Reads DIR/config.json and DIR/generation_config.json (optional); the architecture's registry row
  // (models/registry.h) parses its own keys. Throws actcap::Error naming the file.
  static ModelConfig load(const std::string& dir);
  // Parses config.json text (generation_config.json text may be ""); `origin` names the file in errors.
  static ModelConfig parse(const std::string& config_json, const std::string& generation_config_json,
                           const std::string& origin);
};

}  // namespace actcap
