#pragma once
// The architectures the registry in model.cpp knows, one factory per model_type.
#include <memory>
#include <string>

#include "models/model.h"

namespace actcap {

std::unique_ptr<Model> make_gpt2(const ModelSource& source, ModelConfig config, const LoadOptions& load);
std::unique_ptr<Model> make_llama(const ModelSource& source, ModelConfig config, const LoadOptions& load);
std::unique_ptr<Model> make_mistral(const ModelSource& source, ModelConfig config, const LoadOptions& load);
std::unique_ptr<Model> make_qwen2(const ModelSource& source, ModelConfig config, const LoadOptions& load);
std::unique_ptr<Model> make_qwen3(const ModelSource& source, ModelConfig config, const LoadOptions& load);
std::unique_ptr<Model> make_opt(const ModelSource& source, ModelConfig config, const LoadOptions& load);

}  // namespace actcap
