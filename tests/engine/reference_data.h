#pragma once
// Reading the Hugging Face reference data (tests/data/reference, tests/data/extra; layout in
// tests/data/reference/README.md): its folders, cases and token ids, the load options that reproduce how the
// references were computed, and the error measure the comparisons use.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "models/config.h"
#include "models/model.h"

namespace actcap::testing {

// Every folder under tests/data/{reference,extra} holding reference.safetensors and config.json, sorted.
inline std::vector<std::string> reference_folders() {
  namespace fs = std::filesystem;
  std::vector<std::string> folders;
  for (const char* root : {"reference", "extra"}) {
    const fs::path dir = fs::path(ACTCAP_TEST_DATA) / root;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir))
      if (fs::exists(entry.path() / "reference.safetensors") && fs::exists(entry.path() / "config.json"))
        folders.push_back(entry.path().string());
  }
  std::sort(folders.begin(), folders.end());
  return folders;
}

// The reference generators save a bf16/fp16 checkpoint by casting the model (model.to(dtype)) and cast it back
// to fp32 to compute the references, which rounds the rotary inverse frequencies (a buffer) to that dtype; the
// engine reproduces that cast on request. transformers' from_pretrained keeps them fp32, the engine's default.
inline LoadOptions reference_load_options(const std::string& folder) {
  const ModelConfig config = ModelConfig::load(folder);
  LoadOptions options;
  options.rope_frequencies_in_checkpoint_dtype = config.dtype == "bfloat16" || config.dtype == "float16";
  return options;
}

// The int64 token ids stored under `name`.
inline std::vector<int32_t> reference_ids(const SafetensorsFile& file, const std::string& name) {
  const Tensor t = Tensor::copy_of(file.view(name));
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t.numel(); ++i) ids.push_back(int32_t(static_cast<const int64_t*>(t.data())[i]));
  return ids;
}

// The cases: prefixes "<case>/input_ids", other than generation ("gen") and the bf16 runs ("bf16.*").
inline std::vector<std::string> reference_cases(const SafetensorsFile& file) {
  std::vector<std::string> cases;
  const std::string suffix = "/input_ids";
  for (const auto& name : file.names())
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      std::string c = name.substr(0, name.size() - suffix.size());
      if (c != "gen" && !c.starts_with("bf16.")) cases.push_back(c);
    }
  return cases;
}

// The sites stored for `case_name`: (site, key) for every "<case>/<site>" but its input ids.
inline std::vector<std::pair<std::string, std::string>> reference_sites(const SafetensorsFile& file,
                                                                       const std::string& case_name) {
  std::vector<std::pair<std::string, std::string>> sites;
  const std::string prefix = case_name + "/";
  for (const auto& name : file.names())
    if (name.starts_with(prefix) && name != prefix + "input_ids") sites.emplace_back(name.substr(prefix.size()), name);
  return sites;
}

// How far `got` is from `expected` (same shape, F32): the largest absolute difference and the largest
// |expected|, the scale every comparison is relative to.
struct Deviation {
  double max_error = 0, max_reference = 0;
  double relative() const { return max_reference > 0 ? max_error / max_reference : max_error; }
};

inline Deviation deviation(const Tensor& got, const Tensor& expected) {
  Deviation d;
  const float* g = got.f32();
  const float* e = expected.f32();
  for (int64_t i = 0; i < expected.numel(); ++i) {
    d.max_reference = std::max(d.max_reference, double(std::fabs(e[i])));
    d.max_error = std::max(d.max_error, std::fabs(double(e[i]) - double(g[i])));
  }
  return d;
}

}  // namespace actcap::testing
