#pragma once
// Reading one architecture's keys from config.json: typed values whose errors name the file and the key, and the
// parsers several families share (activation, rotary parameters, per-layer attention types, size checks).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "models/config.h"

namespace actcap {

class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& object, const std::string& origin) : object_(object), origin_(origin) {}

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
  const nlohmann::json& at(const char* key) const { return object_.at(key); }
  const nlohmann::json& json() const { return object_; }
  // The file errors name: config.json's path, or "<synthetic config>".
  const std::string& origin() const { return origin_; }

 private:
  template <typename T>
  T convert(const char* key) const {
    const nlohmann::json& v = object_.at(key);
    const bool ok = std::is_same_v<T, bool>          ? v.is_boolean()
                    : std::is_same_v<T, std::string> ? v.is_string()
                    : std::is_integral_v<T>          ? v.is_number_integer()
                                                     : v.is_number();
    if (!ok) fail("{}: \"{}\" has the wrong type ({})", origin_, key, v.dump());
    if constexpr (std::is_same_v<T, int64_t>)
      if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
        fail("{}: \"{}\" is too large ({})", origin_, key, v.dump());
    return v.get<T>();
  }
  const nlohmann::json& object_;
  std::string origin_;
};

// Larger sizes are no real model's and would overflow the products the engine forms from them.
inline constexpr int64_t kMaxConfigSize = int64_t(1) << 31;

Activation parse_activation(const std::string& name, const std::string& origin);
// rope_parameters (transformers 5) or rope_theta + rope_scaling (transformers 4), then validated.
RopeConfig parse_rope(const ConfigReader& config);
// `layer_types` when config.json has it: one bool per layer, true for "sliding_attention"; fails unless it lists
// exactly num_hidden_layers entries of full_attention / sliding_attention.
std::vector<bool> parse_layer_types(const ConfigReader& config, int64_t num_hidden_layers);
// Each size positive and at most kMaxConfigSize, named by config.json's own key in errors.
void check_sizes(const std::string& origin, std::initializer_list<std::pair<const char*, int64_t>> sizes);
// What every decoder with rotary attention needs: heads divide into kv heads, head_dim even, eps usable.
void check_rotary_decoder(const ModelConfig& m, const std::string& origin, const char* eps_key);

}  // namespace actcap
