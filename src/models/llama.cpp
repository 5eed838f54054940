// Llama: the plain pre-norm decoder; attention_bias adds biases to q/k/v/o, mlp_bias to the MLP.
#include "models/architectures.h"
#include "models/llama_family.h"

namespace actcap {

std::unique_ptr<Model> make_llama(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  const LlamaFamilyOptions options = LlamaFamilyOptions{config.attention_bias, config.attention_bias, false};
  return std::make_unique<LlamaFamilyModel>(source, std::move(config), load, options);
}

}  // namespace actcap
