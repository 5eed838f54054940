// Mistral: the Llama decoder without biases, with sliding-window attention on every layer when configured.
#include "models/config_reader.h"
#include "models/llama_family.h"
#include "models/registry.h"

namespace actcap {
namespace {

void parse_mistral_config(const ConfigReader& c, ModelConfig& m) {
  parse_llama_family_config(c, m);
  m.sliding_window = parse_sliding_window(c);
}

std::unique_ptr<Model> make_mistral_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<LlamaFamilyModel>(source, std::move(config), load, LlamaFamilyOptions{});
}

}  // namespace

const Architecture& mistral_architecture() {
  static const Architecture row{"mistral", parse_mistral_config, make_mistral_model, ArchitectureTraits{.llama_layout = true}};
  return row;
}

}  // namespace actcap
