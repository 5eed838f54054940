// Mistral: the Llama decoder without biases, with sliding-window attention on every layer when configured.
#include "models/architectures.h"
#include "models/llama_family.h"

namespace actcap {

std::unique_ptr<Model> make_mistral(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  const LlamaFamilyOptions options = LlamaFamilyOptions{false, false, false};
  return std::make_unique<LlamaFamilyModel>(source, std::move(config), load, options);
}

}  // namespace actcap
