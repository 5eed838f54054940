#include "models/config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace actcap {
namespace {

using nlohmann::json;

// Larger sizes are no real model's and would overflow the products the engine forms from them.
constexpr int64_t kMaxSize = int64_t(1) << 31;

// Reads typed keys of one JSON object, naming the file in every error.
class Reader {
 public:
  Reader(const json& object, const std::string& origin) : object_(object), origin_(origin) {}

  bool has(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }

  template <typename T>
  T get(const char* key) const {
    if (!has(key)) fail("{}: missing \"{}\"", origin_, key);
    return convert<T>(key);
  }
  template <typename T>
  T get(const char* key, T fallback) const {
    return has(key) ? convert<T>(key) : fallback;
  }
  const json& at(const char* key) const { return object_.at(key); }
  const std::string& origin() const { return origin_; }

 private:
  template <typename T>
  T convert(const char* key) const {
    const json& v = object_.at(key);
    bool ok = std::is_same_v<T, bool>          ? v.is_boolean()
              : std::is_same_v<T, std::string> ? v.is_string()
              : std::is_integral_v<T>          ? v.is_number_integer()
                                               : v.is_number();
    if (!ok) fail("{}: \"{}\" has the wrong type ({})", origin_, key, v.dump());
    if constexpr (std::is_same_v<T, int64_t>)
      if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
        fail("{}: \"{}\" is too large ({})", origin_, key, v.dump());
    return v.get<T>();
  }
  const json& object_;
  std::string origin_;
};

Activation parse_activation(const std::string& name, const std::string& origin) {
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "gelu_new") return Activation::GeluNew;
  if (name == "gelu") return Activation::Gelu;
  if (name == "gelu_pytorch_tanh") return Activation::GeluPytorchTanh;
  if (name == "relu") return Activation::Relu;
  fail("{}: activation \"{}\" is not supported (silu, gelu_new, gelu, gelu_pytorch_tanh, relu)", origin, name);
}

// transformers 5 keeps everything in rope_parameters; transformers 4 has rope_theta plus an optional rope_scaling.
RopeConfig parse_rope(const Reader& config) {
  RopeConfig rope;
  const json* scaling = nullptr;
  if (config.has("rope_parameters")) {
    scaling = &config.at("rope_parameters");
  } else {
    rope.theta = config.get<double>("rope_theta", 10000.0);
    if (config.has("rope_scaling")) scaling = &config.at("rope_scaling");
  }
  if (!scaling) return rope;
  if (!scaling->is_object()) fail("{}: rope parameters must be an object, got {}", config.origin(), scaling->dump());
  Reader s(*scaling, config.origin());
  rope.theta = s.get<double>("rope_theta", rope.theta);
  rope.type = s.get<std::string>("rope_type", s.get<std::string>("type", "default"));
  if (rope.type == "default") return rope;
  if (rope.type != "linear" && rope.type != "llama3")
    fail("{}: rope type \"{}\" is not supported (default, linear, llama3)", config.origin(), rope.type);
  rope.factor = s.get<double>("factor");
  if (rope.type == "llama3") {
    rope.low_freq_factor = s.get<double>("low_freq_factor");
    rope.high_freq_factor = s.get<double>("high_freq_factor");
    rope.original_max_position_embeddings = s.get<int64_t>("original_max_position_embeddings");
  }
  return rope;
}

// Token ids are int32 everywhere in the engine: a larger (or negative) id is an error, never truncated.
int32_t parse_token_id(const json& v, const char* key, const std::string& origin) {
  if (!v.is_number_integer()) fail("{}: \"{}\" must hold integer token ids, got {}", origin, key, v.dump());
  if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(INT32_MAX) : v.get<int64_t>() < 0)
    fail("{}: \"{}\" holds {}, which is not a token id (0 to {})", origin, key, v.dump(), INT32_MAX);
  return v.get<int32_t>();
}

std::vector<int32_t> parse_token_ids(const json& value, const char* key, const std::string& origin) {
  std::vector<int32_t> ids;
  if (value.is_null()) return ids;
  if (!value.is_array()) return {parse_token_id(value, key, origin)};
  for (const auto& v : value) ids.push_back(parse_token_id(v, key, origin));
  return ids;
}

// Llama, Mistral, Qwen2, Qwen3 share one set of keys.
void parse_llama_family(const Reader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.intermediate_size = c.get<int64_t>("intermediate_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = c.get<int64_t>("num_key_value_heads", m.num_attention_heads);
  if (m.num_attention_heads > 0) m.head_dim = c.get<int64_t>("head_dim", m.hidden_size / m.num_attention_heads);
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings", 0);
  m.norm_eps = c.get<double>("rms_norm_eps", 1e-6);
  m.activation = parse_activation(c.get<std::string>("hidden_act", "silu"), c.origin());
  m.rope = parse_rope(c);
  m.attention_bias = c.get<bool>("attention_bias", m.model_type == "qwen2");
  m.mlp_bias = c.get<bool>("mlp_bias", false);
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", false);

  const int64_t window = c.get<int64_t>("sliding_window", 0);
  if (window < 0) fail("{}: \"sliding_window\" must be positive or null, got {}", c.origin(), window);
  if (m.model_type == "llama" || window == 0) return;
  if (m.model_type == "mistral") {
    m.sliding_window = window;
    return;
  }
  // qwen2 / qwen3: layer_types (transformers 5) or use_sliding_window + max_window_layers (transformers 4)
  if (c.has("layer_types")) {
    const json& types = c.at("layer_types");
    if (!types.is_array() || int64_t(types.size()) != m.num_hidden_layers)
      fail("{}: \"layer_types\" must list one type per layer", c.origin());
    for (const json& type : types) {
      if (type != "sliding_attention" && type != "full_attention")
        fail("{}: \"layer_types\" holds {} (full_attention or sliding_attention)", c.origin(), type.dump());
      m.sliding_layers.push_back(type == "sliding_attention");
    }
    if (c.get<bool>("use_sliding_window", true)) m.sliding_window = window;
  } else if (c.get<bool>("use_sliding_window", false)) {
    m.sliding_window = window;
    // As transformers: layer i slides when i >= max_window_layers, so a negative value means every layer.
    m.first_sliding_layer = std::max<int64_t>(0, c.get<int64_t>("max_window_layers", 0));
  }
}

void parse_gpt2(const Reader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("n_embd");
  m.num_hidden_layers = c.get<int64_t>("n_layer");
  m.num_attention_heads = c.get<int64_t>("n_head");
  m.num_key_value_heads = m.num_attention_heads;
  if (m.num_attention_heads > 0) m.head_dim = m.hidden_size / m.num_attention_heads;
  m.intermediate_size = c.has("n_inner") ? c.get<int64_t>("n_inner") : 4 * std::clamp<int64_t>(m.hidden_size, 0, kMaxSize);
  m.max_position_embeddings = c.get<int64_t>("n_positions");
  m.norm_eps = c.get<double>("layer_norm_epsilon", 1e-5);
  m.activation = parse_activation(c.get<std::string>("activation_function", "gelu_new"), c.origin());
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", true);
  m.scale_attn_weights = c.get<bool>("scale_attn_weights", true);
  m.scale_attn_by_inverse_layer_idx = c.get<bool>("scale_attn_by_inverse_layer_idx", false);
}

void parse_opt(const Reader& c, ModelConfig& m) {
  m.hidden_size = c.get<int64_t>("hidden_size");
  m.num_hidden_layers = c.get<int64_t>("num_hidden_layers");
  m.num_attention_heads = c.get<int64_t>("num_attention_heads");
  m.num_key_value_heads = m.num_attention_heads;
  if (m.num_attention_heads > 0) m.head_dim = m.hidden_size / m.num_attention_heads;
  m.intermediate_size = c.get<int64_t>("ffn_dim");
  m.max_position_embeddings = c.get<int64_t>("max_position_embeddings");
  m.norm_eps = 1e-5;  // OPT's LayerNorms use torch's default
  m.activation = parse_activation(c.get<std::string>("activation_function", "relu"), c.origin());
  m.tie_word_embeddings = c.get<bool>("tie_word_embeddings", true);
  m.do_layer_norm_before = c.get<bool>("do_layer_norm_before", true);
  m.final_layer_norm = m.do_layer_norm_before && !c.get<bool>("_remove_final_layer_norm", false);
  m.word_embed_proj_dim = c.get<int64_t>("word_embed_proj_dim", m.hidden_size);
  m.enable_bias = c.get<bool>("enable_bias", true);
  if (!c.get<bool>("layer_norm_elementwise_affine", true))
    fail("{}: layer_norm_elementwise_affine=false is not supported", c.origin());
}

// What transformers rejects (or turns into NaN / out-of-range indexing), with the config.json key named.
void validate(const ModelConfig& m, const std::string& origin) {
  const bool gpt2 = m.model_type == "gpt2", opt = m.model_type == "opt";
  const auto key = [&](const char* llama_name, const char* gpt2_name, const char* opt_name) {
    return gpt2 ? gpt2_name : opt ? opt_name : llama_name;
  };
  std::vector<std::pair<const char*, int64_t>> sizes = {
      {"vocab_size", m.vocab_size},
      {key("hidden_size", "n_embd", "hidden_size"), m.hidden_size},
      {key("num_hidden_layers", "n_layer", "num_hidden_layers"), m.num_hidden_layers},
      {key("num_attention_heads", "n_head", "num_attention_heads"), m.num_attention_heads},
      {"num_key_value_heads", m.num_key_value_heads},
      {"head_dim", m.head_dim},
      {key("intermediate_size", "n_inner", "ffn_dim"), m.intermediate_size}};
  if (opt) sizes.emplace_back("word_embed_proj_dim", m.word_embed_proj_dim);
  // Learned position tables need a size; for rotary models 0 (absent) means no limit.
  if (gpt2 || opt) sizes.emplace_back(key("", "n_positions", "max_position_embeddings"), m.max_position_embeddings);
  for (auto [name, value] : sizes) {
    if (value <= 0) fail("{}: \"{}\" must be positive, got {}", origin, name, value);
    if (value > kMaxSize) fail("{}: \"{}\" is {}, above the supported maximum {}", origin, name, value, kMaxSize);
  }
  if (m.max_position_embeddings < 0 || m.max_position_embeddings > kMaxSize)
    fail("{}: \"max_position_embeddings\" must be between 0 and {}, got {}", origin, kMaxSize,
         m.max_position_embeddings);
  if ((gpt2 || opt) && m.hidden_size % m.num_attention_heads != 0)
    fail("{}: \"{}\" ({}) is not divisible by \"{}\" ({})", origin, key("", "n_embd", "hidden_size"),
         m.hidden_size, key("", "n_head", "num_attention_heads"), m.num_attention_heads);
  if (m.num_attention_heads % m.num_key_value_heads != 0)
    fail("{}: \"num_attention_heads\" ({}) is not a multiple of \"num_key_value_heads\" ({})", origin,
         m.num_attention_heads, m.num_key_value_heads);
  if (!gpt2 && !opt && m.head_dim % 2 != 0)
    fail("{}: \"head_dim\" {} must be even for rotary embeddings", origin, m.head_dim);
  if (!std::isfinite(m.norm_eps) || m.norm_eps < 0)
    fail("{}: \"{}\" must be a non-negative number, got {}", origin,
         key("rms_norm_eps", "layer_norm_epsilon", "layer_norm_epsilon"), m.norm_eps);
  if (gpt2 || opt) return;
  const RopeConfig& r = m.rope;
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

json parse_json(const std::string& text, const std::string& origin) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) fail("{}: expected a JSON object", origin);
    return j;
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    fail("{}: malformed JSON ({})", origin, e.what());
  }
}

}  // namespace

int64_t ModelConfig::sliding_window_at(int64_t layer) const {
  if (!sliding_layers.empty()) return sliding_layers[size_t(layer)] ? sliding_window : 0;
  return layer >= first_sliding_layer ? sliding_window : 0;
}

ModelConfig ModelConfig::parse(const std::string& config_json, const std::string& generation_config_json,
                               const std::string& origin) {
  json j = parse_json(config_json, origin);
  Reader c(j, origin);
  ModelConfig m;
  m.model_type = c.get<std::string>("model_type");
  m.vocab_size = c.get<int64_t>("vocab_size");
  m.dtype = c.get<std::string>("dtype", c.get<std::string>("torch_dtype", "float32"));
  if (m.model_type == "gpt2") {
    parse_gpt2(c, m);
  } else if (m.model_type == "opt") {
    parse_opt(c, m);
  } else if (m.model_type == "llama" || m.model_type == "mistral" || m.model_type == "qwen2" ||
             m.model_type == "qwen3") {
    parse_llama_family(c, m);
  } else {
    fail("{}: model_type \"{}\" is not supported (gpt2, llama, mistral, opt, qwen2, qwen3)", origin, m.model_type);
  }
  validate(m, origin);
  if (j.contains("eos_token_id")) m.eos_token_ids = parse_token_ids(j["eos_token_id"], "eos_token_id", origin);
  if (j.contains("bos_token_id") && !j["bos_token_id"].is_null())
    m.bos_token_id = parse_token_id(j["bos_token_id"], "bos_token_id", origin);
  if (!generation_config_json.empty()) {
    std::string gen_origin =
        (std::filesystem::path(origin).parent_path() / "generation_config.json").string();
    json g = parse_json(generation_config_json, gen_origin);
    if (g.contains("eos_token_id") && !g["eos_token_id"].is_null())
      m.eos_token_ids = parse_token_ids(g["eos_token_id"], "eos_token_id", gen_origin);
    if (g.contains("bos_token_id") && !g["bos_token_id"].is_null())
      parse_token_id(g["bos_token_id"], "bos_token_id", gen_origin);
  }
  return m;
}

ModelConfig ModelConfig::load(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path config_path = fs::path(dir) / "config.json";
  if (!fs::is_directory(dir)) fail("{}: model folder not found", dir);
  if (!fs::exists(config_path)) fail("{}: file not found (not a Hugging Face model folder?)", config_path.string());
  std::string generation;
  fs::path generation_path = fs::path(dir) / "generation_config.json";
  if (fs::exists(generation_path)) generation = read_file(generation_path.string());
  return parse(read_file(config_path.string()), generation, config_path.string());
}

}  // namespace actcap
