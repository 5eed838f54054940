// gpt_neox and phi3 config.json keys (transformers 4 and 5 styles), their rotary tables (partial rotary,
// LongRoPE), and one clear error per wrong key.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "models/config.h"
#include "models/rope_frequencies.h"
#include "../test_util.h"

namespace actcap {
namespace {

ModelConfig parse(const std::string& json) { return ModelConfig::parse(json, "", "m/config.json"); }

const std::string NEOX = R"({"model_type": "gpt_neox", "vocab_size": 100, "hidden_size": 64,
  "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4)";
const std::string PHI3 = R"({"model_type": "phi3", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 2, "num_attention_heads": 4)";
// max_position_embeddings 80 over original 20: factor 4
const std::string LONGROPE = R"(, "original_max_position_embeddings": 20, "rope_scaling": {"type": "su",
  "short_factor": [1, 1, 1, 1, 1, 1, 1, 2], "long_factor": [1, 2, 3, 4, 5, 6, 7, 8]}})";

TEST(NeoxPhi3Config, GptNeoxTransformers4Keys) {
  const ModelConfig m = parse(NEOX + R"(, "rotary_pct": 0.25, "rotary_emb_base": 1000, "layer_norm_eps": 1e-6,
      "use_parallel_residual": false})");
  EXPECT_EQ(m.head_dim, 16);
  EXPECT_EQ(m.num_key_value_heads, 4);
  EXPECT_EQ(m.rope.theta, 1000.0);
  EXPECT_EQ(m.norm_eps, 1e-6);
  EXPECT_EQ(m.activation, Activation::Gelu);
  EXPECT_TRUE(m.attention_bias);
  EXPECT_FALSE(m.tie_word_embeddings);
  const RotaryFrequencies f = rotary_frequencies(m.rope, m.head_dim);
  EXPECT_EQ(f.rotary_dims, 4);
  ASSERT_EQ(f.inv_freq.size(), 2u);
  EXPECT_FLOAT_EQ(f.inv_freq[1], 1.0f / std::pow(1000.0f, 0.5f));  // exponent 2i / rotary_dims
  EXPECT_TRUE(f.long_inv_freq.empty());
  EXPECT_EQ(f.attention_scaling, 1.0f);
}

TEST(NeoxPhi3Config, GptNeoxTransformers5RopeParameters) {
  const ModelConfig m = parse(NEOX + R"(, "rope_parameters": {"rope_type": "default", "rope_theta": 500.0,
      "partial_rotary_factor": 0.5}, "attention_bias": false, "tie_word_embeddings": true})");
  EXPECT_EQ(m.rope.theta, 500.0);
  EXPECT_EQ(rotary_frequencies(m.rope, m.head_dim).rotary_dims, 8);
  EXPECT_FALSE(m.attention_bias);
  EXPECT_TRUE(m.tie_word_embeddings);
  // rotary_pct's default is 0.25
  EXPECT_EQ(rotary_frequencies(parse(NEOX + "}").rope, 16).rotary_dims, 4);
}

TEST(NeoxPhi3Config, Phi3PartialRotaryAndWindow) {
  const ModelConfig m = parse(PHI3 + R"(, "num_key_value_heads": 2, "partial_rotary_factor": 0.5,
      "sliding_window": 8})");
  EXPECT_EQ(m.head_dim, 16);
  EXPECT_EQ(m.num_key_value_heads, 2);
  EXPECT_EQ(m.norm_eps, 1e-5);
  EXPECT_EQ(m.sliding_window_at(0), 8);
  EXPECT_EQ(m.sliding_window_at(1), 8);
  EXPECT_EQ(rotary_frequencies(m.rope, m.head_dim).rotary_dims, 8);
  EXPECT_EQ(parse(PHI3 + "}").sliding_window_at(1), 0);
}

// _compute_longrope_parameters: factor max_position_embeddings / original (80 / 20), attention_factor
// sqrt(1 + ln 4 / ln 20), tables 1 / (factor_i * base^(2i / dim)); "su" is the old name of "longrope".
TEST(NeoxPhi3Config, Phi3LongRopeTables) {
  const ModelConfig m = parse(PHI3 + R"(, "max_position_embeddings": 80)" + LONGROPE);
  EXPECT_EQ(m.rope.type, "longrope");
  const RotaryFrequencies f = rotary_frequencies(m.rope, m.head_dim);
  EXPECT_EQ(f.rotary_dims, 16);
  EXPECT_EQ(f.long_after, 20);
  EXPECT_FLOAT_EQ(f.attention_scaling, float(std::sqrt(1.0 + std::log(4.0) / std::log(20.0))));
  ASSERT_EQ(f.inv_freq.size(), 8u);
  ASSERT_EQ(f.long_inv_freq.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    const float plain = 1.0f / std::pow(10000.0f, float(2 * i) / 16.0f);
    EXPECT_FLOAT_EQ(f.inv_freq[size_t(i)], i == 7 ? plain / 2 : plain) << i;
    EXPECT_FLOAT_EQ(f.long_inv_freq[size_t(i)], plain / float(i + 1)) << i;
  }
  // explicit attention_factor and factor (transformers 5 rope_parameters)
  const ModelConfig v5 = parse(PHI3 + R"(, "max_position_embeddings": 80, "rope_parameters": {
      "rope_type": "longrope", "rope_theta": 10000.0, "factor": 1.0, "attention_factor": 1.5,
      "original_max_position_embeddings": 10, "partial_rotary_factor": 0.5, "short_factor": [1, 1, 1, 1],
      "long_factor": [2, 2, 2, 2]}})");
  const RotaryFrequencies g = rotary_frequencies(v5.rope, v5.head_dim);
  EXPECT_EQ(g.rotary_dims, 8);
  EXPECT_EQ(g.long_after, 10);
  EXPECT_EQ(g.attention_scaling, 1.5f);
  // factor 1 and no attention_factor: no scaling
  EXPECT_EQ(rotary_frequencies(parse(PHI3 + R"(, "max_position_embeddings": 20)" + LONGROPE).rope, 16)
                .attention_scaling, 1.0f);
}

TEST(NeoxPhi3Config, WrongKeysNameConfigJson) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"model_type": "gpt_neox", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 256,
           "num_hidden_layers": 2, "num_attention_heads": 5})",
       "\"hidden_size\" (64) is not divisible by \"num_attention_heads\" (5)"},
      {NEOX + R"(, "rotary_pct": 0.1})", "\"rotary_pct\""},
      {NEOX + R"(, "rotary_pct": 1.5})", "\"rotary_pct\""},
      {NEOX + R"(, "rope_parameters": {"rope_theta": 10000.0, "partial_rotary_factor": 0.0}})",
       "\"partial_rotary_factor\""},
      {NEOX + R"(, "use_parallel_residual": "yes"})", "\"use_parallel_residual\" has the wrong type"},
      {NEOX + R"(, "layer_norm_eps": -1})", "\"layer_norm_eps\""},
      {PHI3 + R"(, "partial_rotary_factor": 0.1})", "\"partial_rotary_factor\""},
      {PHI3 + R"(, "sliding_window": -1})", "\"sliding_window\""},
      {PHI3 + R"(, "rope_scaling": {"type": "longrope", "short_factor": [1, 1],
           "long_factor": [1, 2, 3, 4, 5, 6, 7, 8]}})",
       "\"short_factor\" must list 8 numbers (rotary dims / 2)"},
      {PHI3 + R"(, "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1, 1, 1, 1, 1]}})",
       "\"long_factor\""},
      {PHI3 + R"(, "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1, 1, 1, 1, "x"],
           "long_factor": [1, 2, 3, 4, 5, 6, 7, 8]}})", "\"short_factor\""},
      {PHI3 + R"(, "original_max_position_embeddings": 0, "rope_scaling": {"type": "su",
           "short_factor": [1, 1, 1, 1, 1, 1, 1, 2], "long_factor": [1, 2, 3, 4, 5, 6, 7, 8]}})",
       "\"original_max_position_embeddings\" must be positive"},
      {PHI3 + R"(, "rope_scaling": {"type": "dynamic", "factor": 2.0}})", "rope type \"dynamic\" is not supported"},
  };
  for (const auto& [json, fragment] : cases)
    test::expect_one_line_error([&] { parse(json); }, {"m/config.json", fragment});
}

}  // namespace
}  // namespace actcap
