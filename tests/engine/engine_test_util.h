#pragma once
// Helpers shared by the engine tests: small synthetic models of real architectures and exact comparisons.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "capture/recorder.h"
#include "models/model.h"

namespace actcap::testing {

// A config.json for a synthetic model big enough to span several GEMM tiles and attention work items.
inline std::string synthetic_config(const std::string& model_type) {
  if (model_type == "gpt2")
    return R"({"model_type": "gpt2", "vocab_size": 600, "n_embd": 192, "n_layer": 2, "n_head": 6,
               "n_positions": 256, "activation_function": "gelu_new", "eos_token_id": 599})";
  if (model_type == "opt")
    return R"({"model_type": "opt", "vocab_size": 600, "hidden_size": 192, "ffn_dim": 384, "num_hidden_layers": 2,
               "num_attention_heads": 6, "max_position_embeddings": 256, "eos_token_id": 599})";
  // 8 experts, top 2: every expert some token's choice, several tokens per expert; qwen3_moe's layer 1 dense
  if (model_type == "qwen3_moe" || model_type == "mixtral")
    return R"({"model_type": ")" + model_type + R"(", "vocab_size": 600, "hidden_size": 192, "intermediate_size": 320,
               "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 40,
               "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "sliding_window": 64, "use_sliding_window": true,
               "num_experts": 8, "num_local_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 96,
               "norm_topk_prob": true, "mlp_only_layers": [1], "eos_token_id": 599})";
  if (model_type == "phi3_longrope")  // prompts of 7, 33 and 90 tokens straddle original_max_position_embeddings
    return R"({"model_type": "phi3", "vocab_size": 600, "hidden_size": 192, "intermediate_size": 320,
               "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 40,
               "partial_rotary_factor": 0.5, "max_position_embeddings": 144, "original_max_position_embeddings": 36,
               "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1.1, 1.2, 1.4, 1.6, 2, 2.5, 3],
                                "long_factor": [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]},
               "sliding_window": 64, "eos_token_id": 599})";
  return R"({"model_type": ")" + model_type + R"(", "vocab_size": 600, "hidden_size": 192, "intermediate_size": 320,
             "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 40,
             "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "sliding_window": 64, "eos_token_id": 599})";
}

inline std::vector<int32_t> token_sequence(int n, int salt) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(int32_t((i * 37 + salt * 101 + 5) % 600));
  return ids;
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

inline void expect_bitwise_equal(const Recorder::Taken& a, const Recorder::Taken& b) {
  ASSERT_EQ(a.sites.size(), b.sites.size());
  EXPECT_EQ(a.positions, b.positions);
  for (size_t i = 0; i < a.sites.size(); ++i) {
    EXPECT_EQ(a.sites[i].first, b.sites[i].first);
    EXPECT_TRUE(bitwise_equal(a.sites[i].second, b.sites[i].second)) << a.sites[i].first;
  }
}

}  // namespace actcap::testing
