// Llama: the plain pre-norm decoder; attention_bias adds biases to q/k/v/o, mlp_bias to the MLP.
#include "models/config_reader.h"
#include "models/llama_family.h"
#include "models/registry.h"

namespace actcap {
namespace {

void parse_llama_config(const ConfigReader& c, ModelConfig& m) {
  parse_llama_family_config(c, m);
  parse_sliding_window(c);  // validated; LlamaModel ignores it
}

std::unique_ptr<Model> make_llama_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  const LlamaFamilyOptions options{config.attention_bias, config.attention_bias, false};
  return std::make_unique<LlamaFamilyModel>(source, std::move(config), load, options);
}

}  // namespace

const Architecture& llama_architecture() {
  static const Architecture row{"llama", parse_llama_config, make_llama_model, ArchitectureTraits{.llama_layout = true}};
  return row;
}

}  // namespace actcap
