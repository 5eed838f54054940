#include "io/checkpoint.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace actcap {

namespace fs = std::filesystem;

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  fs::path single = fs::path(dir) / "model.safetensors";
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    paths_.push_back(single.string());
  } else if (fs::exists(index)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(index.string()));
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e999)
      fail("{}: malformed JSON ({})", index.string(), e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail("{}: no \"weight_map\" object", index.string());
    std::map<std::string, size_t> shard_of_file;
    std::map<std::string, std::string> wanted;  // tensor -> shard file name
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail("{}: weight_map entry \"{}\" is not a file name", index.string(), name);
      std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f == "..")
        fail("{}: weight_map entry \"{}\" points outside the folder: {}", index.string(), name, f);
      if (!shard_of_file.count(f)) {
        shard_of_file[f] = paths_.size();
        paths_.push_back((fs::path(dir) / f).string());
      }
      wanted[name] = f;
    }
    for (const auto& path : paths_) {
      if (!fs::exists(path)) fail("{}: shard listed in {} not found", path, index.string());
    }
    for (const auto& path : paths_) files_.push_back(std::make_unique<SafetensorsFile>(path));
    for (const auto& [name, f] : wanted) {
      size_t shard = shard_of_file[f];
      if (!files_[shard]->contains(name))
        fail("{}: tensor '{}' listed in {} is not in the file", paths_[shard], name, index.string());
      index_[name] = shard;
    }
    return;
  } else {
    fail("{}: no model.safetensors or model.safetensors.index.json in the model folder", dir);
  }
  files_.push_back(std::make_unique<SafetensorsFile>(paths_[0]));
  for (const auto& name : files_[0]->names()) index_[name] = 0;
}

std::string Checkpoint::describe() const {
  if (synthetic_) return dir_;
  return paths_.size() == 1 ? paths_[0] : (fs::path(dir_) / "model.safetensors.index.json").string();
}

std::unique_ptr<Checkpoint> Checkpoint::synthetic(uint64_t seed) {
  std::unique_ptr<Checkpoint> checkpoint(new Checkpoint());
  checkpoint->synthetic_ = true;
  checkpoint->seed_ = seed;
  checkpoint->dir_ = "<synthetic>";
  return checkpoint;
}

namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void fill_synthetic(const std::string& name, uint64_t seed, Tensor& t) {
  uint64_t state = seed;
  for (char ch : name) state = state * 1099511628211ull + uint8_t(ch);
  const bool vector = t.rank() == 1;
  const bool is_weight = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
  const float center = vector && is_weight ? 1.0f : 0.0f;
  const float half_width = vector ? 0.1f * 1.7320508f : 0.05f * 1.7320508f;  // uniform: std = width / sqrt(3)
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double u = double(splitmix64(state) >> 11) * 0x1.0p-53;  // [0, 1)
    p[i] = center + half_width * float(2 * u - 1);
  }
}

}  // namespace

TensorView Checkpoint::f32(const std::string& name, const Shape& expected) {
  TensorView stored = view(name, expected);
  if (stored.dtype == DType::F32) return stored;
  upcast_.push_back(Tensor::to_f32(stored));
  return upcast_.back().view();
}

TensorView Checkpoint::view(const std::string& name, const Shape& expected) {
  if (synthetic_) {
    upcast_.emplace_back(expected);
    fill_synthetic(name, seed_, upcast_.back());
    return upcast_.back().view();
  }
  auto it = index_.find(name);
  if (it == index_.end())
    fail("{}: missing tensor '{}' (expected shape {})", describe(), name, shape_string(expected));
  const SafetensorsFile& file = *files_[it->second];
  TensorView view = file.view(name);
  if (view.shape != expected)
    fail("{}: tensor '{}' has shape {}, expected {}", file.path(), name, shape_string(view.shape),
         shape_string(expected));
  if (view.dtype != DType::F32 && view.dtype != DType::F16 && view.dtype != DType::BF16 && view.dtype != DType::F64)
    fail("{}: tensor '{}' has dtype {}, expected F32, F16 or BF16", file.path(), name, dtype_name(view.dtype));
  if (reinterpret_cast<uintptr_t>(view.data) % dtype_size(view.dtype) != 0) {
    // A data section or offset that is not a multiple of the element size (the format does not forbid it):
    // typed loads from the map would be misaligned, so such a tensor is copied. Aligned ones stay zero-copy.
    upcast_.push_back(Tensor::copy_of(view));
    return upcast_.back().view();
  }
  return view;
}

}  // namespace actcap
