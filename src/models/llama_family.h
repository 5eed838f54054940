#pragma once
// The pre-norm decoder shared by Llama, Mistral, Qwen2 and Qwen3: RMSNorm, rotary q/k, grouped-query
// attention (optionally sliding-window), gated MLP. The architectures differ only in the options below.
#include "models/model.h"
#include "ops/ops.h"

namespace actcap {

struct LlamaFamilyOptions {
  bool qkv_bias = false;  // biases on q/k/v projections (qwen2 always; llama's attention_bias)
  bool o_bias = false;    // bias on o_proj (llama's attention_bias)
  bool qk_norm = false;   // qwen3: RMSNorm over head_dim on q and k, before rotary
};

class LlamaFamilyModel : public Model {
 public:
  LlamaFamilyModel(const ModelSource& source, ModelConfig config, LlamaFamilyOptions options);
  const ModelConfig& config() const override { return config_; }
  std::vector<std::string> site_names() const override;

 protected:
  Tensor run(std::span<const int32_t> tokens, KVCache& cache, const CaptureTarget& capture) override;

 private:
  struct Layer {
    const float* input_norm;
    ops::Linear q, k, v, o;
    const float* q_norm = nullptr;
    const float* k_norm = nullptr;
    const float* post_attention_norm;
    ops::Linear gate, up, down;
  };
  ops::Linear linear(const std::string& name, int64_t out, int64_t in, bool bias);

  LlamaFamilyOptions options_;
  const float* embed_tokens_;
  std::vector<Layer> layers_;
  const float* norm_;
  ops::Linear lm_head_;
  std::vector<float> inv_freq_;
};

}  // namespace actcap
