// Qwen3-MoE: Qwen3's attention (q_norm / k_norm over head_dim) with sparse expert layers; a layer is sparse when
// it is not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0, dense (intermediate_size) otherwise.
#include "models/config_reader.h"
#include "models/moe_decoder.h"
#include "models/registry.h"

namespace actcap {
namespace {

void parse_qwen3_moe_config(const ConfigReader& c, ModelConfig& m) {
  MoeKeys keys;
  keys.experts = "num_experts";
  keys.expert_intermediate_size = "moe_intermediate_size";
  keys.default_experts = 128;
  keys.default_experts_per_token = 8;
  keys.default_expert_intermediate_size = 768;
  keys.default_kv_heads = 4;
  keys.default_norm_eps = 1e-6;
  keys.default_rope_theta = 10000.0;
  MoeConfig moe = parse_moe_decoder(c, m, keys);
  moe.normalize_top_k = c.get<bool>("norm_topk_prob", false);
  moe.sparse_step = c.get<int64_t>("decoder_sparse_step", 1);
  if (moe.sparse_step < 1) fail("{}: \"decoder_sparse_step\" must be at least 1, got {}", c.origin(), moe.sparse_step);
  if (c.has("mlp_only_layers")) {
    const nlohmann::json& layers = c.at("mlp_only_layers");
    if (!layers.is_array()) fail("{}: \"mlp_only_layers\" must be a list of layer numbers", c.origin());
    for (const nlohmann::json& layer : layers) {
      if (!layer.is_number_integer())
        fail("{}: \"mlp_only_layers\" holds {}, not a layer number", c.origin(), layer.dump());
      moe.dense_layers.push_back(layer.get<int64_t>());
    }
  }
  if (c.get<bool>("attention_bias", false))
    fail("{}: \"attention_bias\" true is not supported for qwen3_moe", c.origin());
  // transformers keeps sliding_window only with use_sliding_window, and then windows every layer
  if (!c.get<bool>("use_sliding_window", false)) m.sliding_window = 0;
  m.family = std::make_shared<MoeConfig>(std::move(moe));
}

std::unique_ptr<Model> make_qwen3_moe_model(const ModelSource& source, ModelConfig config, const LoadOptions& load) {
  return std::make_unique<MoeDecoderModel>(source, std::move(config), load,
                                           MoeLayout{true, "mlp.", "gate_proj", "up_proj", "down_proj"});
}

}  // namespace

const Architecture& qwen3_moe_architecture() {
  static const Architecture row{"qwen3_moe", parse_qwen3_moe_config, make_qwen3_moe_model, ArchitectureTraits{}};
  return row;
}

}  // namespace actcap
