#pragma once
// The architectures the engine knows: one row per HF model_type, each defined in its own model file (its config
// keys, weights and sites) and listed once in registry.cpp. Commands that depend on a family's layout ask the row's
// traits; none keeps its own list of model types.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/model.h"

namespace actcap {

class ConfigReader;

struct ArchitectureTraits {
  // Llama-style decoder layers: RMSNorm, q/k/v/o_proj and SwiGLU gate/up/down_proj under model.layers.N, which
  // zkLLM's circuits model and `actcap fold` rewrites.
  bool llama_layout = false;
};

struct Architecture {
  const char* model_type;
  // Fills `config` from config.json's keys (everything but model_type, vocab_size, dtype and the eos/bos ids,
  // which are common) and validates them, naming the file and the key in errors.
  void (*parse_config)(const ConfigReader& json, ModelConfig& config);
  std::unique_ptr<Model> (*make)(const ModelSource& source, ModelConfig config, const LoadOptions& load);
  ArchitectureTraits traits;
};

// The row for `model_type`, or null.
const Architecture* find_architecture(std::string_view model_type);
// Every known model_type, sorted.
std::vector<std::string> architecture_names();
// The model_types whose traits have `trait` set, sorted (e.g. &ArchitectureTraits::llama_layout).
std::vector<std::string> model_types_with(bool ArchitectureTraits::*trait);

}  // namespace actcap
