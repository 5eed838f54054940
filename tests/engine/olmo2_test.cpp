// OLMo 2 beyond the reference activations (tests/data/extra/olmo2-*, checked by EngineReference): Olmo2Config's
// defaults, one-line errors for its keys, its sites, and greedy generation stopping at generation_config's EOS.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <unistd.h>

#include "core/atomic_file.h"
#include "generate/generate.h"
#include "models/config.h"
#include "models/model.h"
#include "../test_util.h"

namespace actcap {
namespace {

namespace fs = std::filesystem;

ModelConfig parse(const std::string& json) { return ModelConfig::parse(json, "", "m/config.json"); }

const std::string OLMO2 = R"({"model_type": "olmo2", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 2, "num_attention_heads": 4)";

TEST(Olmo2Config, DefaultsAreOlmo2ConfigsAndHeadDimIsRead) {
  const ModelConfig m = parse(OLMO2 + "}");
  EXPECT_EQ(m.num_key_value_heads, 4);
  EXPECT_EQ(m.head_dim, 16);
  EXPECT_DOUBLE_EQ(m.norm_eps, 1e-5);  // Olmo2Config's default; Llama's is 1e-6
  EXPECT_EQ(m.activation, Activation::Silu);
  EXPECT_FALSE(m.attention_bias);
  EXPECT_FALSE(m.tie_word_embeddings);
  EXPECT_EQ(m.rope.type, "default");

  const ModelConfig g = parse(OLMO2 + R"(, "num_key_value_heads": 2, "head_dim": 12, "rms_norm_eps": 1e-6,
      "attention_bias": true, "tie_word_embeddings": true,
      "rope_parameters": {"rope_theta": 500000.0, "rope_type": "linear", "factor": 4.0}})");
  EXPECT_EQ(g.num_key_value_heads, 2);
  EXPECT_EQ(g.head_dim, 12);
  EXPECT_DOUBLE_EQ(g.norm_eps, 1e-6);
  EXPECT_TRUE(g.attention_bias);
  EXPECT_TRUE(g.tie_word_embeddings);
  EXPECT_EQ(g.rope.type, "linear");
  EXPECT_DOUBLE_EQ(g.rope.factor, 4.0);
  EXPECT_DOUBLE_EQ(g.rope.theta, 500000.0);
}

TEST(Olmo2Config, WrongKeysAreOneLineErrorsNamingTheKey) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"model_type": "olmo2", "vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4})", "missing \"intermediate_size\""},
      {OLMO2 + R"(, "num_key_value_heads": 3})", "is not a multiple of \"num_key_value_heads\" (3)"},
      {OLMO2 + R"(, "head_dim": 15})", "\"head_dim\" 15 must be even"},
      {OLMO2 + R"(, "rms_norm_eps": -1e-5})", "\"rms_norm_eps\" must be a non-negative number"},
      {OLMO2 + R"(, "hidden_act": "tanh"})", "activation \"tanh\" is not supported"},
      {OLMO2 + R"(, "attention_bias": "yes"})", "\"attention_bias\" has the wrong type"},
      {OLMO2 + R"(, "rope_parameters": {"rope_type": "yarn", "factor": 4.0}})", "rope type \"yarn\""},
  };
  for (const auto& [json, fragment] : cases)
    test::expect_one_line_error([&] { parse(json); }, {"m/config.json", fragment});
}

TEST(Olmo2Model, SitesArePostNormsWithoutPreNorms) {
  auto model = Model::synthetic(OLMO2 + "}", 1);
  const auto sites = model->site_names();
  const auto has = [&](const std::string& s) { return std::find(sites.begin(), sites.end(), s) != sites.end(); };
  for (const char* s : {"blocks.0.ln1_post.hook_normalized", "blocks.1.ln2_post.hook_normalized",
                        "blocks.1.attn.hook_q", "blocks.1.hook_resid_mid", "ln_final.hook_normalized", "logits"})
    EXPECT_TRUE(has(s)) << s;
  EXPECT_FALSE(has("blocks.0.ln1.hook_normalized"));
  EXPECT_FALSE(has("blocks.0.ln2.hook_normalized"));
  // forward order: the raw sub-block output, its post-norm, then the residual it was added to
  const auto at = [&](const std::string& s) { return std::find(sites.begin(), sites.end(), s) - sites.begin(); };
  EXPECT_LT(at("blocks.0.hook_attn_out"), at("blocks.0.ln1_post.hook_normalized"));
  EXPECT_LT(at("blocks.0.ln1_post.hook_normalized"), at("blocks.0.hook_resid_mid"));
  EXPECT_LT(at("blocks.0.hook_mlp_out"), at("blocks.0.ln2_post.hook_normalized"));
  EXPECT_LT(at("blocks.0.ln2_post.hook_normalized"), at("blocks.0.hook_resid_post"));
}

// olmo2-mha-headdim greedily continues s0 with 123, 41, 41, ...; config.json's eos ids (5, 6) never come up.
// A generation_config.json naming 41 must stop it right after the first 41.
TEST(Olmo2Model, GreedyGenerationStopsAtGenerationConfigEos) {
  const fs::path source = fs::path(ACTCAP_TEST_DATA) / "extra/olmo2-mha-headdim";
  const fs::path dir = fs::temp_directory_path() / ("actcap-olmo2-eos-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(source / f, dir / f);
  write_file_atomic((dir / "generation_config.json").string(), R"({"eos_token_id": [41, 99]})");

  LoadOptions load;
  load.rope_frequencies_in_checkpoint_dtype = true;  // as the reference (bf16 on disk)
  const std::vector<int32_t> prompt = {1, 20, 200, 255, 7, 7};
  GenerationOptions options;
  options.max_new_tokens = 10;
  auto stopped = generate(*Model::load(dir.string(), load), {prompt}, options, nullptr, CaptureMode::Rerun, nullptr);
  ASSERT_EQ(stopped.size(), 1u);
  EXPECT_TRUE(stopped[0].stopped_at_eos);
  EXPECT_EQ(stopped[0].token_ids, (std::vector<int32_t>{1, 20, 200, 255, 7, 7, 123, 41}));

  auto full = generate(*Model::load(source.string(), load), {prompt}, options, nullptr, CaptureMode::Rerun, nullptr);
  EXPECT_FALSE(full[0].stopped_at_eos);
  EXPECT_EQ(full[0].token_ids.size(), prompt.size() + 10);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace actcap
