// Qwen2: biases on q/k/v (never on o_proj); sliding window on layers >= max_window_layers when enabled.
#include "models/architectures.h"
#include "models/llama_family.h"

namespace actcap {

std::unique_ptr<Model> make_qwen2(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  const LlamaFamilyOptions options = LlamaFamilyOptions{true, false, false};
  return std::make_unique<LlamaFamilyModel>(source, std::move(config), load, options);
}

}  // namespace actcap
