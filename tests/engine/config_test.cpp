// config.json in the styles found on the Hub.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "capture/recorder.h"
#include "core/error.h"
#include "models/config.h"
#include "models/model.h"
#include "models/registry.h"
#include "models/rope_frequencies.h"
#include "../test_util.h"

namespace actcap {
namespace {

ModelConfig parse(const std::string& json, const std::string& generation = "") {
  return ModelConfig::parse(json, generation, "m/config.json");
}

const std::string LLAMA_KEYS = R"("vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 4, "num_attention_heads": 4)";

TEST(EngineConfig, Transformers4And5RopeStyles) {
  auto old_style = parse(R"({"model_type": "llama", )" + LLAMA_KEYS + R"(, "rope_theta": 500000.0,
      "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192}})");
  EXPECT_EQ(old_style.rope.type, "llama3");
  EXPECT_EQ(old_style.rope.theta, 500000.0);
  EXPECT_EQ(old_style.rope.factor, 8.0);
  EXPECT_EQ(old_style.rope.original_max_position_embeddings, 8192);
  auto linear = parse(R"({"model_type": "llama", )" + LLAMA_KEYS +
                      R"(, "rope_scaling": {"type": "linear", "factor": 2.0}})");
  EXPECT_EQ(linear.rope.type, "linear");
  EXPECT_EQ(linear.rope.theta, 10000.0);
  auto new_style = parse(R"({"model_type": "qwen3", )" + LLAMA_KEYS +
                         R"(, "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}})");
  EXPECT_EQ(new_style.rope.type, "default");
  EXPECT_EQ(new_style.rope.theta, 1e6);
  EXPECT_THROW(parse(R"({"model_type": "llama", )" + LLAMA_KEYS + R"(, "rope_scaling": {"type": "dynamic", "factor": 2.0}})"),
               Error);
}

TEST(EngineConfig, LinearAndLlama3ScalingReshapeTheFrequencies) {
  RopeConfig rope;
  rope.theta = 10000;
  std::vector<float> plain(32), scaled(32);
  rope_inverse_frequencies(rope, 64, plain.data());
  rope.type = "linear";
  rope.factor = 4;
  rope_inverse_frequencies(rope, 64, scaled.data());
  for (int i = 0; i < 32; ++i) EXPECT_FLOAT_EQ(scaled[i], plain[i] / 4);
  rope.type = "llama3";
  rope.factor = 8;
  rope.original_max_position_embeddings = 64;
  rope_inverse_frequencies(rope, 64, scaled.data());
  EXPECT_EQ(scaled[0], plain[0]);                // high frequency: kept
  EXPECT_FLOAT_EQ(scaled[31], plain[31] / 8);    // low frequency: divided by factor
}

TEST(EngineConfig, HeadDimGqaBiasesAndActivations) {
  auto m = parse(R"({"model_type": "llama", )" + LLAMA_KEYS + R"(, "num_key_value_heads": 2, "head_dim": 24,
      "attention_bias": true, "mlp_bias": true, "hidden_act": "gelu_pytorch_tanh", "rms_norm_eps": 1e-5,
      "tie_word_embeddings": true, "eos_token_id": [5, 6]})");
  EXPECT_EQ(m.head_dim, 24);
  EXPECT_EQ(m.num_key_value_heads, 2);
  EXPECT_TRUE(m.attention_bias && m.mlp_bias && m.tie_word_embeddings);
  EXPECT_EQ(m.activation, Activation::GeluPytorchTanh);
  EXPECT_EQ(m.norm_eps, 1e-5);
  EXPECT_EQ(m.eos_token_ids, (std::vector<int32_t>{5, 6}));
  auto defaults = parse(R"({"model_type": "llama", )" + LLAMA_KEYS + "}");
  EXPECT_EQ(defaults.head_dim, 16);
  EXPECT_EQ(defaults.num_key_value_heads, 4);
  EXPECT_THROW(parse(R"({"model_type": "llama", )" + LLAMA_KEYS + R"(, "hidden_act": "swiglu"})"), Error);
  EXPECT_THROW(parse(R"({"model_type": "llama", )" + LLAMA_KEYS + R"(, "num_key_value_heads": 3})"), Error);
  EXPECT_THROW(parse(R"({"model_type": "llama", )" + LLAMA_KEYS + R"(, "hidden_size": "64"})"), Error);
}

std::vector<int64_t> windows(const ModelConfig& m) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < m.num_hidden_layers; ++i) out.push_back(m.sliding_window_at(i));
  return out;
}

TEST(EngineConfig, SlidingWindowPerLayer) {
  auto mistral = parse(R"({"model_type": "mistral", )" + LLAMA_KEYS + R"(, "sliding_window": 16})");
  EXPECT_EQ(windows(mistral), (std::vector<int64_t>{16, 16, 16, 16}));
  auto none = parse(R"({"model_type": "mistral", )" + LLAMA_KEYS + R"(, "sliding_window": null})");
  EXPECT_EQ(windows(none), (std::vector<int64_t>{0, 0, 0, 0}));
  auto qwen2 = parse(R"({"model_type": "qwen2", )" + LLAMA_KEYS +
                     R"(, "sliding_window": 8, "use_sliding_window": true, "max_window_layers": 2})");
  EXPECT_EQ(windows(qwen2), (std::vector<int64_t>{0, 0, 8, 8}));
  EXPECT_TRUE(qwen2.attention_bias);
  auto off = parse(R"({"model_type": "qwen2", )" + LLAMA_KEYS +
                   R"(, "sliding_window": 8, "use_sliding_window": false, "max_window_layers": 2})");
  EXPECT_EQ(windows(off), (std::vector<int64_t>{0, 0, 0, 0}));
  auto typed = parse(R"({"model_type": "qwen3", )" + LLAMA_KEYS + R"(, "sliding_window": 8, "use_sliding_window": true,
      "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]})");
  EXPECT_EQ(windows(typed), (std::vector<int64_t>{0, 8, 0, 8}));
}

// Used to write before the per-layer table (a segfault). transformers slides layer i when i >= max_window_layers.
TEST(EngineConfig, NegativeMaxWindowLayersSlidesEveryLayer) {
  auto qwen2 = parse(R"({"model_type": "qwen2", )" + LLAMA_KEYS +
                     R"(, "sliding_window": 8, "use_sliding_window": true, "max_window_layers": -1000000})");
  EXPECT_EQ(windows(qwen2), (std::vector<int64_t>{8, 8, 8, 8}));
}

// A config naming a billion layers allocates nothing per layer while parsing (the checkpoint is checked next).
TEST(EngineConfig, HugeLayerCountAllocatesNothingWhileParsing) {
  auto m = parse(R"({"model_type": "qwen2", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
      "num_hidden_layers": 1000000000, "num_attention_heads": 4, "sliding_window": 8, "use_sliding_window": true})");
  EXPECT_EQ(m.sliding_window_at(999999999), 8);
}

// What transformers rejects, or what would silently give NaN or wrong activations: one line naming the file and
// the key.
TEST(EngineConfig, InconsistentConfigsAreRejected) {
  const std::string gpt2 = R"({"model_type": "gpt2", "vocab_size": 50, "n_layer": 2, "n_positions": 16, )";
  const std::string llama = R"({"model_type": "llama", )" + LLAMA_KEYS;
  const std::pair<std::string, std::string> cases[] = {
      {gpt2 + R"("n_embd": 30, "n_head": 4})", "\"n_embd\" (30) is not divisible by \"n_head\" (4)"},
      {gpt2 + R"("n_embd": 32, "n_head": 0})", "\"n_head\" must be positive"},
      {gpt2 + R"("n_embd": -32, "n_head": 2})", "\"n_embd\" must be positive"},
      {gpt2 + R"("n_embd": 32, "n_head": 2, "layer_norm_epsilon": -1e-5})", "\"layer_norm_epsilon\""},
      {gpt2 + R"("n_embd": 32, "n_head": 2, "n_inner": 0})", "\"n_inner\" must be positive"},
      {R"({"model_type": "gpt2", "vocab_size": 50, "n_layer": 2, "n_positions": 0, "n_embd": 32, "n_head": 2})",
       "\"n_positions\" must be positive"},
      {R"({"model_type": "opt", "vocab_size": 50, "hidden_size": 30, "ffn_dim": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4, "max_position_embeddings": 16})", "\"hidden_size\" (30) is not divisible"},
      {llama + R"(, "rope_theta": 0})", "\"rope_theta\" must be positive"},
      {llama + R"(, "rope_theta": -10000.0})", "\"rope_theta\" must be positive"},
      {llama + R"(, "rope_scaling": {"rope_type": "llama3", "factor": 0, "low_freq_factor": 1, "high_freq_factor": 4,
           "original_max_position_embeddings": 8192}})", "rope \"factor\" must be >= 1"},
      {llama + R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 4,
           "original_max_position_embeddings": 8192}})", "\"high_freq_factor\""},
      {llama + R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4,
           "original_max_position_embeddings": 0}})", "\"original_max_position_embeddings\" must be positive"},
      {llama + R"(, "rope_scaling": {"type": "linear", "factor": 0.5}})", "rope \"factor\" must be >= 1"},
      {llama + R"(, "rms_norm_eps": -1e-6})", "\"rms_norm_eps\" must be a non-negative number"},
      {llama + R"(, "num_key_value_heads": 3})", "is not a multiple of \"num_key_value_heads\" (3)"},
      {llama + R"(, "num_key_value_heads": 0})", "\"num_key_value_heads\" must be positive"},
      {llama + R"(, "head_dim": 15})", "\"head_dim\" 15 must be even"},
      {llama + R"(, "head_dim": -16})", "\"head_dim\" must be positive"},
      {llama + R"(, "max_position_embeddings": -1})", "\"max_position_embeddings\""},
      {llama + R"(, "sliding_window": -4})", "\"sliding_window\" must be positive or null"},
      {R"({"model_type": "qwen3", )" + LLAMA_KEYS + R"(, "sliding_window": 8,
           "layer_types": ["full_attention", "sliding", "full_attention", "full_attention"]})", "\"layer_types\""},
      {R"({"model_type": "llama", "vocab_size": 100, "hidden_size": 4294967296, "intermediate_size": 128,
           "num_hidden_layers": 4, "num_attention_heads": 4})", "above the supported maximum"},
      {R"({"model_type": "llama", "vocab_size": 18446744073709551615, "hidden_size": 64, "intermediate_size": 128,
           "num_hidden_layers": 4, "num_attention_heads": 4})", "\"vocab_size\" is too large"},
  };
  for (const auto& [json, fragment] : cases)
    test::expect_one_line_error([&] { parse(json); }, {"m/config.json", fragment});
}

// A number beyond double's range (found by fuzz_config) is nlohmann's out_of_range, which used to escape as an
// uncaught exception.
TEST(EngineConfig, OutOfRangeNumbersAreMalformedJson) {
  test::expect_one_line_error([] { parse("111E11111"); }, {"m/config.json", "malformed JSON"});
  test::expect_one_line_error([] { parse(R"({"model_type": "llama", )" + LLAMA_KEYS + "}", "[1E1111]"); },
                              {"m/generation_config.json", "malformed JSON"});
}

// Token ids are int32: larger or negative ones used to be truncated silently.
TEST(EngineConfig, TokenIdsBeyondInt32AreRejected) {
  const std::string llama = R"({"model_type": "llama", )" + LLAMA_KEYS;
  test::expect_one_line_error([&] { parse(llama + R"(, "eos_token_id": 2147483648})"); },
                              {"m/config.json", "\"eos_token_id\" holds 2147483648"});
  test::expect_one_line_error([&] { parse(llama + R"(, "eos_token_id": [1, -2]})"); },
                              {"m/config.json", "\"eos_token_id\" holds -2"});
  test::expect_one_line_error([&] { parse(llama + R"(, "bos_token_id": 4294967297})"); },
                              {"m/config.json", "\"bos_token_id\" holds 4294967297"});
  test::expect_one_line_error([&] { parse(llama + "}", R"({"eos_token_id": 2147483648})"); },
                              {"m/generation_config.json", "\"eos_token_id\""});
  test::expect_one_line_error([&] { parse(llama + "}", R"({"bos_token_id": 9999999999})"); },
                              {"m/generation_config.json", "\"bos_token_id\""});
  auto m = parse(llama + R"(, "bos_token_id": 2147483647, "eos_token_id": 2147483647})");
  EXPECT_EQ(m.bos_token_id, 2147483647);
  EXPECT_EQ(m.eos_token_ids, (std::vector<int32_t>{2147483647}));
}

TEST(EngineConfig, Gpt2AndOptKeysAndGenerationConfigEos) {
  auto gpt2 = parse(R"({"model_type": "gpt2", "vocab_size": 50, "n_embd": 32, "n_layer": 2, "n_head": 2,
      "n_positions": 16, "n_inner": null, "activation_function": "gelu", "eos_token_id": 3})",
                    R"({"eos_token_id": [7, 8]})");
  EXPECT_EQ(gpt2.intermediate_size, 128);
  EXPECT_EQ(gpt2.activation, Activation::Gelu);
  EXPECT_TRUE(gpt2.tie_word_embeddings);
  EXPECT_EQ(gpt2.eos_token_ids, (std::vector<int32_t>{7, 8}));
  const std::string opt_json = R"({"model_type": "opt", "vocab_size": 50, "hidden_size": 32, "ffn_dim": 64,
      "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 16, "word_embed_proj_dim": 16,
      "do_layer_norm_before": false})";
  EXPECT_EQ(parse(opt_json).activation, Activation::Relu);
  // OPT's own keys live in opt.cpp: seen through the model they build. Post-LN OPT has no final norm, and
  // word_embed_proj_dim 16 is the width of the token embedding before project_in.
  auto opt = Model::synthetic(opt_json, 1);
  const auto sites = opt->site_names();
  EXPECT_EQ(std::count(sites.begin(), sites.end(), "ln_final.hook_normalized"), 0);
  Recorder recorder;
  KVCache cache = opt->new_cache();
  const std::vector<int32_t> ids = {1, 2, 3};
  opt->forward(ids, cache, CaptureTarget{nullptr, &recorder});
  auto taken = recorder.take(0, 3, 3);
  std::map<std::string, Shape> shapes;
  for (const auto& [site, tensor] : taken.sites) shapes[site] = tensor.shape();
  EXPECT_EQ(shapes.at("hook_embed"), (Shape{3, 16}));
  EXPECT_EQ(shapes.at("hidden_states.0"), (Shape{3, 32}));
  EXPECT_THROW(parse(R"({"model_type": "gpt2"})"), Error);
  EXPECT_THROW(parse(R"([1, 2])"), Error);
  EXPECT_THROW(parse(R"({"model_type": "gpt2", "vocab_size": 50, "n_embd": 32, "n_layer": 2, "n_head": 2,
      "n_positions": 16})", "{bad"), Error);
}

TEST(EngineConfig, AnUnknownModelTypeNamesEveryRegisteredOne) {
  try {
    parse(R"({"model_type": "bert", "vocab_size": 50})");
    FAIL() << "bert parsed";
  } catch (const Error& e) {
    std::string expected;
    for (const std::string& name : architecture_names()) expected += (expected.empty() ? "" : ", ") + name;
    EXPECT_NE(std::string(e.what()).find("model_type \"bert\" is not supported (" + expected + ")"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(model_types_with(&ArchitectureTraits::llama_layout),
            (std::vector<std::string>{"llama", "mistral", "qwen2", "qwen3"}));
}

}  // namespace
}  // namespace actcap
