// Qwen2: biases on q/k/v (never on o_proj); sliding window on layers >= max_window_layers when enabled.
#include "models/config_reader.h"
#include "models/llama_family.h"
#include "models/registry.h"

namespace actcap {
namespace {

void parse_qwen2_config(const ConfigReader& c, ModelConfig& m) {
  parse_llama_family_config(c, m);
  m.attention_bias = c.get<bool>("attention_bias", true);  // Qwen2's q/k/v always have biases
  parse_qwen_sliding_window(c, m);
}

std::unique_ptr<Model> make_qwen2_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<LlamaFamilyModel>(source, std::move(config), load, LlamaFamilyOptions{true, false, false});
}

}  // namespace

const Architecture& qwen2_architecture() {
  static const Architecture row{"qwen2", parse_qwen2_config, make_qwen2_model, ArchitectureTraits{.llama_layout = true}};
  return row;
}

}  // namespace actcap
