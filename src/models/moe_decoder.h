#pragma once
// The sparse mixture-of-experts decoder of Qwen3-MoE and Mixtral: a Llama-style pre-norm decoder (RMSNorm, rotary,
// grouped-query attention, optional qk-norm and sliding window) whose feed-forward is, per layer, either a dense
// gated MLP or a router choosing the top-k of E gated experts for every token.
//
// Routing runs on the host: the router logits ([tokens, E], tiny) are read back, each token's experts chosen as HF
// does (softmax in fp32, top-k, optional renormalisation, weights cast to the compute dtype), and each expert that
// any token chose runs its GEMMs on its own gathered rows; the weighted outputs are added in ascending expert
// order, as HF's index_add_ loop does. The weights follow transformers 4 (modeling_qwen3_moe / modeling_mixtral
// read at 16b6c53c / 00d4b3d2: w.to(dtype) before the product); transformers 5 is reported to keep them fp32,
// which only a bf16/fp16 run could tell apart and which no source read here confirms.
#include <string>
#include <vector>

#include "models/config.h"
#include "models/config_reader.h"
#include "models/model.h"

namespace actcap {

// The mixture-of-experts keys of config.json.
struct MoeConfig : FamilyConfig {
  int64_t experts = 0;                   // num_experts (qwen3_moe), num_local_experts (mixtral)
  int64_t experts_per_token = 0;         // num_experts_per_tok
  int64_t expert_intermediate_size = 0;  // moe_intermediate_size (qwen3_moe); intermediate_size (mixtral)
  bool normalize_top_k = true;           // norm_topk_prob (qwen3_moe); mixtral always renormalises
  int64_t sparse_step = 1;               // decoder_sparse_step: layer i is sparse when (i + 1) % step == 0 ...
  std::vector<int64_t> dense_layers;     // ... and i is not in mlp_only_layers
  bool sparse_at(int64_t layer) const;
};

// The config.json keys and transformers defaults in which the two families differ.
struct MoeKeys {
  const char* experts = nullptr;                   // num_experts | num_local_experts
  const char* expert_intermediate_size = nullptr;  // moe_intermediate_size | intermediate_size
  int64_t default_experts = 0, default_experts_per_token = 0, default_expert_intermediate_size = 0;
  int64_t default_kv_heads = 0;
  double default_norm_eps = 0, default_rope_theta = 0;
};
// Fills m's common fields (a sliding window, when set, on every layer) and returns the MoE keys, validated with
// errors naming config.json's key.
MoeConfig parse_moe_decoder(const ConfigReader& c, ModelConfig& m, const MoeKeys& keys);

// How a family names its tensors and shapes its attention.
struct MoeLayout {
  bool qk_norm = false;             // qwen3_moe: RMSNorm over head_dim on q and k, before rotary
  std::string block;                // "mlp." (qwen3_moe) or "block_sparse_moe." (mixtral), under model.layers.N.
  std::string gate, up, down;       // per-expert projections: gate_proj/up_proj/down_proj or w1/w3/w2
};

class MoeDecoderModel : public Model {
 public:
  MoeDecoderModel(const ModelSource& source, ModelConfig config, const LoadOptions& load, MoeLayout layout);
  const ModelConfig& config() const override { return config_; }
  std::vector<std::string> site_names() const override;

 protected:
  const void* run(Pass& pass) override;
  const ops::Linear& lm_head() const override { return lm_head_; }

 private:
  struct Expert {
    ops::Linear gate, up, down;
  };
  struct Layer {
    const void* input_norm;
    ops::Linear q, k, v, o;
    const void* q_norm = nullptr;
    const void* k_norm = nullptr;
    const void* post_attention_norm;
    ops::Linear gate, up, down;  // dense layers
    ops::Linear router;          // sparse layers: [experts, hidden]
    std::vector<Expert> experts;
  };
  // Each token's chosen experts and their weights, [rows, k], best first (HF's topk order).
  struct Routing {
    std::vector<int32_t> experts;
    std::vector<float> weights;
  };

  ops::Linear linear(const std::string& name, int64_t out, int64_t in);
  // The Hub's per-expert tensors (transformers 5 fuses them only in memory and saves them back per expert).
  std::vector<Expert> load_experts(const std::string& layer, int64_t hidden);
  Routing route(const std::vector<float>& logits, int64_t rows) const;
  // The sparse block on the normed rows `h`: out = sum over chosen experts of weight * expert(h).
  void sparse_mlp(const Pass& pass, const Layer& layer, const std::string& block, const void* h, void* out);
  void dense_mlp(const Pass& pass, const Layer& layer, const std::string& block, const void* h, void* out);

  MoeLayout layout_;
  bool one_row_gemms_;  // bit-reproducible backends: expert GEMMs one row at a time
  const void* embed_tokens_;
  std::vector<Layer> layers_;
  const void* norm_;
  ops::Linear lm_head_;
  const float* inv_freq_;
};

}  // namespace actcap
