#pragma once
// The pre-norm decoder shared by Llama, Mistral, Qwen2 and Qwen3: RMSNorm, rotary q/k, grouped-query
// attention (optionally sliding-window), gated MLP. The architectures differ only in the options below.
#include "models/model.h"

namespace actcap {

class ConfigReader;

// The keys Llama, Mistral, Qwen2 and Qwen3 share (all but the sliding window), validated.
void parse_llama_family_config(const ConfigReader& c, ModelConfig& m);
// config.json's "sliding_window": 0 when absent or null; a negative value is an error.
int64_t parse_sliding_window(const ConfigReader& c);
// Qwen2 / Qwen3: `layer_types` (transformers 5) or use_sliding_window + max_window_layers (transformers 4).
void parse_qwen_sliding_window(const ConfigReader& c, ModelConfig& m);

struct LlamaFamilyOptions {
  bool qkv_bias = false;  // biases on q/k/v projections (qwen2 always; llama's attention_bias)
  bool o_bias = false;    // bias on o_proj (llama's attention_bias)
  bool qk_norm = false;   // qwen3: RMSNorm over head_dim on q and k, before rotary
};

class LlamaFamilyModel : public Model {
 public:
  LlamaFamilyModel(const ModelSource& source, ModelConfig config, const LoadOptions& load,
                   LlamaFamilyOptions options);
  const ModelConfig& config() const override { return config_; }
  std::vector<std::string> site_names() const override;

 protected:
  const void* run(Pass& pass) override;
  const ops::Linear& lm_head() const override { return lm_head_; }

 private:
  struct Layer {
    const void* input_norm;
    ops::Linear q, k, v, o;
    const void* q_norm = nullptr;
    const void* k_norm = nullptr;
    const void* post_attention_norm;
    ops::Linear gate, up, down;
  };
  ops::Linear linear(const std::string& name, int64_t out, int64_t in, bool bias);

  LlamaFamilyOptions options_;
  const void* embed_tokens_;
  std::vector<Layer> layers_;
  const void* norm_;
  ops::Linear lm_head_;
  const float* inv_freq_;
};

}  // namespace actcap
