#include "transform/transform_spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/loaded_array.h"
#include "io/safetensors.h"

namespace actcap {

namespace fs = std::filesystem;

namespace {

constexpr double kOrthogonalityTolerance = 1e-4;

std::string resolve(const std::string& spec_path, const std::string& key, const std::string& file) {
  if (fs::exists(file)) return file;
  const fs::path beside = fs::path(spec_path).parent_path() / file;
  if (fs::path(file).is_relative() && fs::exists(beside)) return beside.string();
  fail("{}: {} '{}' not found (looked in the current folder and the spec's)", spec_path, key, file);
}

// The one array a transform file holds (`preferred` when it holds several).
LoadedArray load_array(const std::string& path, const std::string& preferred) {
  std::vector<std::pair<std::string, LoadedArray>> arrays;
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".npy") {
    arrays.emplace_back("", read_npy(path));
  } else if (ext == ".pt" || ext == ".pth") {
    arrays = read_torch_tensors(path);
  } else if (ext == ".safetensors") {
    const SafetensorsFile file(path);
    for (const std::string& name : file.names()) {
      const TensorView view = file.view(name);
      arrays.emplace_back(name, LoadedArray{view.dtype, view.shape, widen_to_f64(view.data, view.dtype, size_t(view.numel()))});
    }
  } else {
    fail("{}: unknown transform file type '{}' (.npy, .pt or .safetensors)", path, ext);
  }
  if (arrays.size() == 1) return std::move(arrays[0].second);
  for (auto& [name, array] : arrays)
    if (name == preferred) return std::move(array);
  std::string names;
  for (const auto& [name, array] : arrays) names += (names.empty() ? "" : ", ") + name;
  fail("{}: holds {} tensors ({}): expected one, or one named {}", path, arrays.size(), names, preferred);
}

Eigen::MatrixXd read_rotation(const std::string& path, int64_t hidden) {
  const LoadedArray a = load_array(path, "linear_map");
  if (a.shape != Shape{hidden, hidden})
    fail("{}: rotation of shape {}, expected [{}, {}] (the model's hidden_size)", path, shape_string(a.shape), hidden,
         hidden);
  Eigen::MatrixXd r = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      a.values.data(), hidden, hidden);
  if (!r.allFinite()) fail("{}: the rotation holds NaN or infinite values", path);
  const double error = (r.transpose() * r - Eigen::MatrixXd::Identity(hidden, hidden)).cwiseAbs().maxCoeff();
  if (error > kOrthogonalityTolerance)
    fail("{}: not an orthogonal matrix (max |RᵀR - I| = {:.3g} > {:g})", path, error, kOrthogonalityTolerance);
  return r;
}

std::vector<int64_t> read_permutation(const std::string& path, const std::vector<int64_t>& allowed_lengths,
                                      const std::string& what) {
  const LoadedArray a = load_array(path, "permutation");
  if (a.shape.size() != 1 || std::find(allowed_lengths.begin(), allowed_lengths.end(), a.shape[0]) == allowed_lengths.end())
    fail("{}: {} permutation of shape {}, expected [{}]", path, what, shape_string(a.shape),
         allowed_lengths.size() == 1 ? std::to_string(allowed_lengths[0])
                                     : fmt::format("{}] or [{}", allowed_lengths[0], allowed_lengths[1]));
  std::vector<int64_t> p;
  std::vector<bool> seen(a.values.size(), false);
  for (double v : a.values) {
    if (v != std::floor(v) || v < 0 || v >= double(a.values.size()) || seen[size_t(v)])
      fail("{}: not a permutation of 0..{} ({} is out of range, repeated or not an integer)", path, a.values.size() - 1, v);
    seen[size_t(v)] = true;
    p.push_back(int64_t(v));
  }
  return p;
}

// Both the query-head and the key/value-head permutation from either one (see the header).
void set_head_permutation(LayerTransform& t, const std::vector<int64_t>& p, const ModelConfig& c, const std::string& path) {
  const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, group = H / Hkv;
  if (int64_t(p.size()) == H) {
    t.query_heads = p;
    for (int64_t j = 0; j < Hkv; ++j) {
      const int64_t old_group = p[size_t(j * group)] / group;
      for (int64_t r = 0; r < group; ++r)
        if (p[size_t(j * group + r)] / group != old_group)
          fail("{}: head permutation splits key/value group {} (query heads {}..{} share one key/value head and must "
               "move together)", path, old_group, old_group * group, old_group * group + group - 1);
      t.kv_heads.push_back(old_group);
    }
  } else {
    t.kv_heads = p;
    for (int64_t j = 0; j < Hkv; ++j)
      for (int64_t r = 0; r < group; ++r) t.query_heads.push_back(p[size_t(j)] * group + r);
  }
}

}  // namespace

TransformSpec read_transform_spec(const std::string& path, const ModelConfig& config, const std::string& model_dir) {
  nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("{}: not a JSON object", path);
  if (!j.contains("layers") || !j["layers"].is_array()) fail("{}: no \"layers\" list", path);
  TransformSpec spec{path, {}};
  static const std::regex layer_name(R"(model\.layers\.(\d+))");
  for (size_t i = 0; i < j["layers"].size(); ++i) {
    const nlohmann::json& entry = j["layers"][i];
    const std::string where = fmt::format("{}: layers[{}]", path, i);
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string())
      fail("{}: needs a \"name\" (model.layers.N)", where);
    for (const auto& [key, value] : entry.items())
      if (key != "name" && key != "rotation_path" && key != "head_permutation_path" &&
          key != "neuron_permutation_path" && key != "head_dim")
        fail("{}: unknown key \"{}\"", where, key);
    LayerTransform t;
    t.name = entry["name"].get<std::string>();
    std::smatch m;
    if (!std::regex_match(t.name, m, layer_name) || std::stoll(m[1]) >= config.num_hidden_layers)
      fail("{}: \"{}\" is not a layer of {} (model.layers.0 .. model.layers.{})", where, t.name, model_dir,
           config.num_hidden_layers - 1);
    t.layer = std::stoll(m[1]);
    for (const LayerTransform& other : spec.layers)
      if (other.layer == t.layer) fail("{}: {} appears twice", where, t.name);
    if (entry.contains("head_dim") && (!entry["head_dim"].is_number_integer() || entry["head_dim"] != config.head_dim))
      fail("{}: head_dim {} is not the model's ({})", where, entry["head_dim"].dump(), config.head_dim);
    auto file = [&](const char* key) -> std::string {
      if (!entry.contains(key)) return "";
      if (!entry[key].is_string()) fail("{}: \"{}\" is not a path", where, key);
      return resolve(path, key, entry[key].get<std::string>());
    };
    if (const std::string f = file("rotation_path"); !f.empty()) {
      t.rotation = read_rotation(f, config.hidden_size);
      t.rotation_path = f;
    }
    if (const std::string f = file("head_permutation_path"); !f.empty())
      set_head_permutation(t, read_permutation(f, {config.num_attention_heads, config.num_key_value_heads}, "head"),
                           config, f);
    if (const std::string f = file("neuron_permutation_path"); !f.empty())
      t.neurons = read_permutation(f, {config.intermediate_size}, "neuron");
    spec.layers.push_back(std::move(t));
  }
  std::sort(spec.layers.begin(), spec.layers.end(), [](const auto& a, const auto& b) { return a.layer < b.layer; });
  return spec;
}

}  // namespace actcap
