// Gemma 2 / Gemma 3: config.json keys (transformers' defaults, the multimodal text_config, one-line errors naming
// the key) and what only these families do, on synthetic models and the tests/data/extra checkpoints (whose
// activations EngineReference checks).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "io/safetensors.h"
#include "models/config.h"
#include "models/model.h"
#include "../test_util.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

ModelConfig parse(const std::string& json) { return ModelConfig::parse(json, "", "m/config.json"); }

const std::string DECODER_KEYS = R"("hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3,
  "num_attention_heads": 4, "num_key_value_heads": 2)";

TEST(GemmaConfig, Gemma2DefaultsAreTransformers) {
  const ModelConfig m = parse(R"({"model_type": "gemma2", "vocab_size": 300, )" + DECODER_KEYS + "}");
  EXPECT_EQ(m.head_dim, 256);
  EXPECT_EQ(m.activation, Activation::GeluPytorchTanh);
  EXPECT_TRUE(m.tie_word_embeddings);
  EXPECT_EQ(m.norm_eps, 1e-6);
  EXPECT_EQ(m.sliding_window, 4096);
  EXPECT_EQ(m.rope.theta, 10000.0);
}

// Gemma3ForConditionalGeneration's config.json: no top-level vocab_size; the decoder's keys under text_config,
// in the transformers-4 style (rope_theta absent: 1e6; rope_scaling for the full layers only).
TEST(GemmaConfig, MultimodalGemma3ReadsTheTextConfig) {
  const ModelConfig m = parse(R"({"model_type": "gemma3", "tie_word_embeddings": false, "text_config":
      {"model_type": "gemma3_text", "vocab_size": 300, "head_dim": 16, )" + DECODER_KEYS + R"(,
       "rope_scaling": {"rope_type": "linear", "factor": 8.0}}, "vision_config": {"hidden_size": 8}})");
  EXPECT_EQ(m.model_type, "gemma3");
  EXPECT_EQ(m.vocab_size, 300);
  EXPECT_EQ(m.hidden_size, 64);
  EXPECT_FALSE(m.tie_word_embeddings);
  EXPECT_EQ(m.rope.theta, 1e6);
  EXPECT_EQ(m.rope.type, "linear");
  EXPECT_EQ(m.rope.factor, 8.0);
}

TEST(GemmaConfig, Gemma3RopeParametersPerLayerType) {
  const ModelConfig m = parse(R"({"model_type": "gemma3_text", "vocab_size": 300, "head_dim": 16, )" + DECODER_KEYS +
                              R"(, "rope_parameters": {
        "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}})");
  EXPECT_EQ(m.rope.theta, 500000.0);
  EXPECT_EQ(m.rope.type, "linear");
  EXPECT_EQ(m.rope.factor, 4.0);
}

TEST(GemmaConfig, BadKeysAreOneLineErrorsNamingTheKey) {
  const std::string gemma2 = R"({"model_type": "gemma2", "vocab_size": 300, "head_dim": 16, )" + DECODER_KEYS;
  const std::string gemma3 = R"({"model_type": "gemma3_text", "vocab_size": 300, "head_dim": 16, )" + DECODER_KEYS;
  const std::pair<std::string, std::string> cases[] = {
      {gemma2 + R"(, "query_pre_attn_scalar": 0})", "\"query_pre_attn_scalar\" must be positive"},
      {gemma2 + R"(, "attn_logit_softcapping": -50.0})", "\"attn_logit_softcapping\" must be positive or null"},
      {gemma2 + R"(, "final_logit_softcapping": "30"})", "\"final_logit_softcapping\" has the wrong type"},
      {gemma2 + R"(, "sliding_window": 0})", "\"sliding_window\" must be positive"},
      {gemma2 + R"(, "layer_types": ["full_attention"]})", "\"layer_types\" must list one type per layer"},
      {gemma2 + R"(, "hidden_activation": "tanh"})", "activation \"tanh\" is not supported"},
      {gemma3 + R"(, "use_bidirectional_attention": true})", "\"use_bidirectional_attention\""},
      {gemma3 + R"(, "sliding_window_pattern": 0})", "\"sliding_window_pattern\" must be positive"},
      {gemma3 + R"(, "rope_local_base_freq": -1.0})", "\"rope_local_base_freq\" must be positive"},
      {gemma3 + R"(, "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e6}}})",
       "no sliding_attention"},
      {R"({"model_type": "gemma3", "vocab_size": 300, "vision_config": {}})", "needs a \"text_config\" object"},
      {R"({"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "vocab_size": 300}})",
       "missing \"hidden_size\""},
  };
  for (const auto& [json, fragment] : cases)
    test::expect_one_line_error([&] { parse(json); }, {"m/config.json", fragment});
}

// The returned logits of a gemma2 with final_logit_softcapping c are tanh(l / c) * c: inside (-c, c), while the
// same model without it has logits beyond c.
TEST(GemmaModel, FinalSoftcapBoundsTheLogits) {
  const std::string keys = R"({"model_type": "gemma2", "vocab_size": 300, "head_dim": 16, "sliding_window": 4,
      "query_pre_attn_scalar": 16, )" + DECODER_KEYS;
  const std::vector<int32_t> tokens = {5, 17, 250, 3, 3, 99};
  auto max_logit = [&](const std::string& softcap) {
    auto model = Model::synthetic(keys + R"(, "final_logit_softcapping": )" + softcap + "}", 3);
    KVCache cache;
    const Tensor logits = model->forward(tokens, cache);
    float max = 0;
    for (int64_t i = 0; i < logits.numel(); ++i) max = std::max(max, std::fabs(logits.f32()[i]));
    return max;
  };
  const float uncapped = max_logit("null");
  ASSERT_GT(uncapped, 1.0f);
  EXPECT_LT(max_logit(std::to_string(uncapped / 2)), uncapped / 2);
}

// The text decoder of a multimodal gemma3 checkpoint under transformers 5's names (model.language_model.*)
// gives the same logits as under transformers 4's (language_model.model.*); vision tensors are ignored.
TEST(GemmaModel, MultimodalWeightsUnderEitherPrefix) {
  const fs::path original = fs::path(ACTCAP_TEST_DATA) / "extra/gemma3-multimodal";
  const fs::path renamed = test::temp_dir("gemma3_v5_names");
  for (const char* f : {"config.json", "generation_config.json"}) fs::copy_file(original / f, renamed / f);
  {
    SafetensorsFile weights((original / "model.safetensors").string());
    SafetensorsWriter writer;
    const std::string legacy = "language_model.model.";
    for (const auto& name : weights.names()) {
      const std::string v5 = name.starts_with(legacy) ? "model.language_model." + name.substr(legacy.size())
                                                      : "model." + name;  // model.vision_tower.*
      writer.add(v5, weights.view(name));
    }
    writer.write((renamed / "model.safetensors").string());
  }
  const std::vector<int32_t> tokens = {1, 20, 200, 255, 7, 7};
  KVCache a, b;
  const Tensor expected = Model::load(original.string())->forward(tokens, a);
  const Tensor got = Model::load(renamed.string())->forward(tokens, b);
  ASSERT_EQ(got.numel(), expected.numel());
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(got.f32()[i], expected.f32()[i]) << i;
  fs::remove_all(renamed);
}

}  // namespace
}  // namespace actcap
