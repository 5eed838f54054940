#include "models/registry.h"

#include <algorithm>

namespace actcap {

// One row per architecture: X(model_type), whose model file defines <model_type>_architecture().
#define ACTCAP_ARCHITECTURES(X) \
  X(gemma2)                     \
  X(gemma3)                     \
  X(gemma3_text)                \
  X(gpt2)                       \
  X(gpt_neox)                   \
  X(llama)                      \
  X(mistral)                    \
  X(mixtral)                    \
  X(olmo)                       \
  X(olmo2)                      \
  X(opt)                        \
  X(phi3)                       \
  X(qwen2)                      \
  X(qwen3)                      \
  X(qwen3_moe)

#define ACTCAP_DECLARE_ARCHITECTURE(name) const Architecture& name##_architecture();
ACTCAP_ARCHITECTURES(ACTCAP_DECLARE_ARCHITECTURE)
#undef ACTCAP_DECLARE_ARCHITECTURE

namespace {

const std::vector<const Architecture*>& rows() {
#define ACTCAP_ROW(name) &name##_architecture(),
  static const std::vector<const Architecture*> all = {ACTCAP_ARCHITECTURES(ACTCAP_ROW)};
#undef ACTCAP_ROW
  return all;
}

}  // namespace

const Architecture* find_architecture(std::string_view model_type) {
  for (const Architecture* row : rows())
    if (model_type == row->model_type) return row;
  return nullptr;
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const Architecture* row : rows()) names.emplace_back(row->model_type);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> model_types_with(bool ArchitectureTraits::*trait) {
  std::vector<std::string> names;
  for (const Architecture* row : rows())
    if (row->traits.*trait) names.emplace_back(row->model_type);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace actcap
