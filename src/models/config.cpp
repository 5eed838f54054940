#include "models/config.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <vector>

#include <fmt/ranges.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "models/config_reader.h"
#include "models/registry.h"

namespace actcap {
namespace {

using nlohmann::json;

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
  ConfigReader c(j, origin);
  ModelConfig m;
  m.model_type = c.get<std::string>("model_type");
  const Architecture* architecture = find_architecture(m.model_type);
  if (!architecture)
    fail("{}: model_type \"{}\" is not supported ({})", origin, m.model_type,
         fmt::join(architecture_names(), ", "));
  m.vocab_size = c.get<int64_t>("vocab_size");
  check_sizes(origin, {{"vocab_size", m.vocab_size}});
  m.dtype = c.get<std::string>("dtype", c.get<std::string>("torch_dtype", "float32"));
  architecture->parse_config(c, m);
  if (m.max_position_embeddings < 0 || m.max_position_embeddings > kMaxConfigSize)
    fail("{}: \"max_position_embeddings\" must be between 0 and {}, got {}", origin, kMaxConfigSize,
         m.max_position_embeddings);
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
