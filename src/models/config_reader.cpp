#include "models/config_reader.h"

#include <cmath>

namespace actcap {

using nlohmann::json;

Activation parse_activation(const std::string& name, const std::string& origin) {
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "gelu_new") return Activation::GeluNew;
  if (name == "gelu") return Activation::Gelu;
  if (name == "gelu_pytorch_tanh") return Activation::GeluPytorchTanh;
  if (name == "relu") return Activation::Relu;
  fail("{}: activation \"{}\" is not supported (silu, gelu_new, gelu, gelu_pytorch_tanh, relu)", origin, name);
}

namespace {

void check_rope(const RopeConfig& r, const std::string& origin) {
  if (!std::isfinite(r.theta) || r.theta <= 0) fail("{}: \"rope_theta\" must be positive, got {}", origin, r.theta);
  if (r.type == "default") return;
  // transformers: "factor field must be a float >= 1"
  if (!std::isfinite(r.factor) || r.factor < 1) fail("{}: rope \"factor\" must be >= 1, got {}", origin, r.factor);
  if (r.type != "llama3") return;
  if (!(r.low_freq_factor > 0) || !std::isfinite(r.high_freq_factor) || r.high_freq_factor <= r.low_freq_factor)
    fail("{}: rope \"high_freq_factor\" ({}) must be greater than \"low_freq_factor\" ({}), both positive", origin,
         r.high_freq_factor, r.low_freq_factor);
  if (r.original_max_position_embeddings <= 0)
    fail("{}: rope \"original_max_position_embeddings\" must be positive, got {}", origin,
         r.original_max_position_embeddings);
}

}  // namespace

RopeConfig parse_rope(const ConfigReader& config) {
  RopeConfig rope;
  const json* scaling = nullptr;
  if (config.has("rope_parameters")) {
    scaling = &config.at("rope_parameters");
  } else {
    rope.theta = config.get<double>("rope_theta", 10000.0);
    if (config.has("rope_scaling")) scaling = &config.at("rope_scaling");
  }
  if (scaling) {
    if (!scaling->is_object())
      fail("{}: rope parameters must be an object, got {}", config.origin(), scaling->dump());
    ConfigReader s(*scaling, config.origin());
    rope.theta = s.get<double>("rope_theta", rope.theta);
    rope.type = s.get<std::string>("rope_type", s.get<std::string>("type", "default"));
    if (rope.type != "default" && rope.type != "linear" && rope.type != "llama3")
      fail("{}: rope type \"{}\" is not supported (default, linear, llama3)", config.origin(), rope.type);
    if (rope.type != "default") rope.factor = s.get<double>("factor");
    if (rope.type == "llama3") {
      rope.low_freq_factor = s.get<double>("low_freq_factor");
      rope.high_freq_factor = s.get<double>("high_freq_factor");
      rope.original_max_position_embeddings = s.get<int64_t>("original_max_position_embeddings");
    }
  }
  check_rope(rope, config.origin());
  return rope;
}

std::vector<bool> parse_layer_types(const ConfigReader& config, int64_t num_hidden_layers) {
  std::vector<bool> sliding;
  if (!config.has("layer_types")) return sliding;
  const json& types = config.at("layer_types");
  if (!types.is_array() || int64_t(types.size()) != num_hidden_layers)
    fail("{}: \"layer_types\" must list one type per layer", config.origin());
  for (const json& type : types) {
    if (type != "sliding_attention" && type != "full_attention")
      fail("{}: \"layer_types\" holds {} (full_attention or sliding_attention)", config.origin(), type.dump());
    sliding.push_back(type == "sliding_attention");
  }
  return sliding;
}

void check_sizes(const std::string& origin, std::initializer_list<std::pair<const char*, int64_t>> sizes) {
  for (auto [name, value] : sizes) {
    if (value <= 0) fail("{}: \"{}\" must be positive, got {}", origin, name, value);
    if (value > kMaxConfigSize)
      fail("{}: \"{}\" is {}, above the supported maximum {}", origin, name, value, kMaxConfigSize);
  }
}

void check_rotary_decoder(const ModelConfig& m, const std::string& origin, const char* eps_key) {
  check_sizes(origin, {{"hidden_size", m.hidden_size},
                       {"num_hidden_layers", m.num_hidden_layers},
                       {"num_attention_heads", m.num_attention_heads},
                       {"num_key_value_heads", m.num_key_value_heads},
                       {"head_dim", m.head_dim},
                       {"intermediate_size", m.intermediate_size}});
  if (m.num_attention_heads % m.num_key_value_heads != 0)
    fail("{}: \"num_attention_heads\" ({}) is not a multiple of \"num_key_value_heads\" ({})", origin,
         m.num_attention_heads, m.num_key_value_heads);
  if (m.head_dim % 2 != 0) fail("{}: \"head_dim\" {} must be even for rotary embeddings", origin, m.head_dim);
  if (!std::isfinite(m.norm_eps) || m.norm_eps < 0)
    fail("{}: \"{}\" must be a non-negative number, got {}", origin, eps_key, m.norm_eps);
}

}  // namespace actcap
