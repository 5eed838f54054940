// Qwen3: RMSNorm over head_dim on q and k (q_norm / k_norm) before rotary; attention_bias like Llama.
#include "models/architectures.h"
#include "models/llama_family.h"

namespace actcap {

std::unique_ptr<Model> make_qwen3(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  const LlamaFamilyOptions options = LlamaFamilyOptions{config.attention_bias, config.attention_bias, true};
  return std::make_unique<LlamaFamilyModel>(source, std::move(config), load, options);
}

}  // namespace actcap
