// Qwen3: RMSNorm over head_dim on q and k (q_norm / k_norm) before rotary; attention_bias like Llama.
#include "models/config_reader.h"
#include "models/llama_family.h"
#include "models/registry.h"

namespace actcap {
namespace {

void parse_qwen3_config(const ConfigReader& c, ModelConfig& m) {
  parse_llama_family_config(c, m);
  parse_qwen_sliding_window(c, m);
}

std::unique_ptr<Model> make_qwen3_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  const LlamaFamilyOptions options{config.attention_bias, config.attention_bias, true};
  return std::make_unique<LlamaFamilyModel>(source, std::move(config), load, options);
}

}  // namespace

const Architecture& qwen3_architecture() {
  static const Architecture row{"qwen3", parse_qwen3_config, make_qwen3_model, ArchitectureTraits{.llama_layout = true}};
  return row;
}

}  // namespace actcap
