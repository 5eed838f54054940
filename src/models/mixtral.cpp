// Mixtral: Mistral's attention (a sliding window on every layer when sliding_window is set) with a sparse expert
// block in every layer (block_sparse_moe: gate, experts.N.{w1 gate, w3 up, w2 down}); the top-k weights are always
// renormalised.
#include "models/config_reader.h"
#include "models/moe_decoder.h"
#include "models/registry.h"

namespace actcap {
namespace {

void parse_mixtral_config(const ConfigReader& c, ModelConfig& m) {
  MoeKeys keys;
  keys.experts = "num_local_experts";
  keys.expert_intermediate_size = "intermediate_size";
  keys.default_experts = 8;
  keys.default_experts_per_token = 2;
  keys.default_expert_intermediate_size = 14336;
  keys.default_kv_heads = 8;
  keys.default_norm_eps = 1e-5;
  keys.default_rope_theta = 1e6;
  MoeConfig moe = parse_moe_decoder(c, m, keys);
  if (moe.experts < 1) fail("{}: \"num_local_experts\" must be at least 1, got {}", c.origin(), moe.experts);
  moe.normalize_top_k = true;
  m.family = std::make_shared<MoeConfig>(std::move(moe));
}

std::unique_ptr<Model> make_mixtral_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<MoeDecoderModel>(source, std::move(config), load,
                                           MoeLayout{false, "block_sparse_moe.", "w1", "w3", "w2"});
}

}  // namespace

const Architecture& mixtral_architecture() {
  static const Architecture row{"mixtral", parse_mixtral_config, make_mixtral_model, ArchitectureTraits{}};
  return row;
}

}  // namespace actcap
