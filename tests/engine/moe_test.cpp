// Mixture-of-experts families (qwen3_moe, mixtral): config keys and their errors, which layers are sparse, the
// router sites, and the routing the captured sites describe. Activations against references: reference_test.cpp
// (tests/data/extra/{qwen3-moe-*,mixtral-*}).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "capture/interventions.h"
#include "capture/recorder.h"
#include "capture/sites.h"
#include "core/error.h"
#include "engine_test_util.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "models/moe_decoder.h"
#include "../test_util.h"

namespace actcap {
namespace {

std::string qwen3_moe_config(const std::string& extra) {
  return R"({"model_type": "qwen3_moe", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
             "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "num_experts": 4,
             "num_experts_per_tok": 2, "moe_intermediate_size": 24)" + extra + "}";
}

std::string mixtral_config(const std::string& extra) {
  return R"({"model_type": "mixtral", "vocab_size": 64, "hidden_size": 64, "intermediate_size": 40,
             "num_hidden_layers": 2, "num_attention_heads": 16)" + extra + "}";
}

const MoeConfig& moe_of(const ModelConfig& config) { return config.family_as<MoeConfig>(); }

TEST(EngineMoe, SparseLayersFollowTheStepAndTheDenseList) {
  const ModelConfig c = ModelConfig::parse(
      qwen3_moe_config(R"(, "decoder_sparse_step": 2, "mlp_only_layers": [3], "norm_topk_prob": true)"), "",
      "config.json");
  const MoeConfig& moe = moe_of(c);
  std::vector<bool> sparse;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) sparse.push_back(moe.sparse_at(i));
  // (i + 1) % 2 == 0 gives 1, 3, 5; mlp_only_layers removes 3
  EXPECT_EQ(sparse, (std::vector<bool>{false, true, false, false, false, true}));
  EXPECT_TRUE(moe.normalize_top_k);
  EXPECT_EQ(moe.experts, 4);
  EXPECT_EQ(moe.experts_per_token, 2);
  EXPECT_EQ(moe.expert_intermediate_size, 24);

  // transformers' defaults: every layer sparse, no renormalisation, no window unless use_sliding_window
  const ModelConfig d = ModelConfig::parse(qwen3_moe_config(R"(, "sliding_window": 8)"), "", "config.json");
  for (int64_t i = 0; i < d.num_hidden_layers; ++i) EXPECT_TRUE(moe_of(d).sparse_at(i)) << i;
  EXPECT_FALSE(moe_of(d).normalize_top_k);
  EXPECT_EQ(d.sliding_window_at(0), 0);
  const ModelConfig w =
      ModelConfig::parse(qwen3_moe_config(R"(, "sliding_window": 8, "use_sliding_window": true)"), "", "config.json");
  EXPECT_EQ(w.sliding_window_at(0), 8);
  EXPECT_EQ(w.sliding_window_at(5), 8);
}

TEST(EngineMoe, MixtralDefaultsAndWindowOnEveryLayer) {
  const ModelConfig c = ModelConfig::parse(mixtral_config(R"(, "sliding_window": 16)"), "", "config.json");
  const MoeConfig& moe = moe_of(c);
  EXPECT_EQ(moe.experts, 8);            // num_local_experts
  EXPECT_EQ(moe.experts_per_token, 2);  // num_experts_per_tok
  EXPECT_EQ(moe.expert_intermediate_size, 40);
  EXPECT_TRUE(moe.normalize_top_k);     // Mixtral always renormalises
  EXPECT_EQ(c.num_key_value_heads, 8);  // MixtralConfig's default, not num_attention_heads
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_TRUE(moe.sparse_at(0) && moe.sparse_at(1));
  EXPECT_EQ(c.sliding_window_at(0), 16);
  EXPECT_EQ(c.sliding_window_at(1), 16);
}

TEST(EngineMoe, BadKeysNameConfigJsonAndTheKey) {
  const auto rejects = [](const std::string& text, const std::string& key) {
    test::expect_one_line_error([&] { ModelConfig::parse(text, "", "dir/config.json"); }, {"dir/config.json", key});
  };
  rejects(qwen3_moe_config(R"(, "num_experts_per_tok": 5)"), "\"num_experts_per_tok\"");
  rejects(qwen3_moe_config(R"(, "num_experts_per_tok": 0)"), "\"num_experts_per_tok\"");
  rejects(qwen3_moe_config(R"(, "decoder_sparse_step": 0)"), "\"decoder_sparse_step\"");
  rejects(qwen3_moe_config(R"(, "moe_intermediate_size": -3)"), "\"moe_intermediate_size\"");
  rejects(qwen3_moe_config(R"(, "num_experts": -1)"), "\"num_experts\"");
  rejects(qwen3_moe_config(R"(, "mlp_only_layers": [1, "two"])"), "\"mlp_only_layers\"");
  rejects(qwen3_moe_config(R"(, "norm_topk_prob": "yes")"), "\"norm_topk_prob\"");
  rejects(qwen3_moe_config(R"(, "attention_bias": true)"), "\"attention_bias\"");
  rejects(mixtral_config(R"(, "num_local_experts": 0)"), "\"num_local_experts\"");
  rejects(mixtral_config(R"(, "num_local_experts": 4, "num_experts_per_tok": 6)"), "\"num_experts_per_tok\"");
}

// A checkpoint without one expert's tensor (or with the router missing) fails naming the file and the tensor.
TEST(EngineMoe, MissingExpertTensorsAreNamed) {
  namespace fs = std::filesystem;
  const fs::path source = fs::path(ACTCAP_TEST_DATA) / "extra/mixtral-window";
  for (const std::string missing : {"model.layers.1.block_sparse_moe.experts.3.w3.weight",
                                    "model.layers.0.block_sparse_moe.gate.weight"}) {
    const fs::path dir = fs::temp_directory_path() / ("actcap-moe-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char* f : {"config.json", "generation_config.json"}) fs::copy_file(source / f, dir / f);
    {
      SafetensorsFile original((source / "model.safetensors").string());
      SafetensorsWriter writer;
      for (const auto& name : original.names())
        if (name != missing) writer.add(name, original.view(name));
      writer.write((dir / "model.safetensors").string());
    }
    test::expect_one_line_error([&] { Model::load(dir.string()); }, {(dir / "model.safetensors").string(), missing});
    fs::remove_all(dir);
  }
}

TEST(EngineMoe, SparseLayersHaveRouterSitesDenseLayersMlpSites) {
  auto model = Model::synthetic(testing::synthetic_config("qwen3_moe"), 1);  // layer 0 sparse, layer 1 dense
  const auto sites = model->site_names();
  const auto has = [&](const std::string& site) { return std::count(sites.begin(), sites.end(), site) == 1; };
  for (const char* site : {"mlp.hook_router_logits", "mlp.hook_expert_indices", "mlp.hook_expert_weights"}) {
    EXPECT_TRUE(has(std::string("blocks.0.") + site)) << site;
    EXPECT_FALSE(has(std::string("blocks.1.") + site)) << site;
  }
  for (const char* site : {"mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post"}) {
    EXPECT_FALSE(has(std::string("blocks.0.") + site)) << site;
    EXPECT_TRUE(has(std::string("blocks.1.") + site)) << site;
  }
  EXPECT_TRUE(has("blocks.0.hook_mlp_out") && has("blocks.1.hook_mlp_out"));
}

// Router choices are read-only: an edit would not change the routing, so it is refused; the logits can be edited.
TEST(EngineMoe, RouterChoicesCannotBeEditedTheLogitsCan) {
  auto model = Model::synthetic(testing::synthetic_config("mixtral"), 1);
  for (const char* site : {"blocks.1.mlp.hook_expert_indices", "blocks.0.mlp.hook_expert_weights"})
    test::expect_one_line_error([&] { edit_point(site, *model, "--ablate"); }, {site, "mlp.hook_router_logits"});
  EXPECT_NO_THROW(edit_point("blocks.1.mlp.hook_router_logits", *model, "--ablate"));
}

// The captured choices are what the router logits imply: for each token, the k most probable experts, best first,
// as exact integers, with softmax weights (renormalised over the k for norm_topk_prob).
void expect_routing_follows_logits(const std::string& folder, bool normalized) {
  auto model = Model::load(std::string(ACTCAP_TEST_DATA) + "/extra/" + folder);
  const SiteSelection all = SiteSelection::all(*model);
  Recorder recorder;
  const auto ids = testing::token_sequence(19, 1);
  std::vector<int32_t> tokens;
  for (int32_t id : ids) tokens.push_back(id % 256);
  KVCache cache = model->new_cache();
  model->forward(tokens, cache, CaptureTarget{&all, &recorder});
  const auto taken = recorder.take(0, int(tokens.size()), int(tokens.size()));
  const auto site = [&](const std::string& name) -> const Tensor* {
    for (const auto& [n, t] : taken.sites)
      if (n == name) return &t;
    return nullptr;
  };
  int layers_checked = 0;
  for (int64_t layer = 0; layer < model->config().num_hidden_layers; ++layer) {
    const std::string b = "blocks." + std::to_string(layer) + ".mlp.";
    const Tensor* logits = site(b + "hook_router_logits");
    if (!logits) continue;
    const Tensor *indices = site(b + "hook_expert_indices"), *weights = site(b + "hook_expert_weights");
    ASSERT_TRUE(indices && weights);
    const int64_t T = logits->shape()[0], E = logits->shape()[1], K = indices->shape()[1];
    ASSERT_EQ(T, int64_t(tokens.size()));
    std::vector<int> used(size_t(E), 0);
    for (int64_t t = 0; t < T; ++t) {
      const float* l = logits->f32() + t * E;
      std::vector<double> p(static_cast<size_t>(E));
      double sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += p[size_t(e)] = std::exp(double(l[e]) - *std::max_element(l, l + E));
      std::vector<int64_t> order(static_cast<size_t>(E));
      for (int64_t e = 0; e < E; ++e) order[size_t(e)] = e;
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return p[size_t(a)] > p[size_t(c)]; });
      double chosen = 0;
      for (int64_t j = 0; j < K; ++j) chosen += p[size_t(order[size_t(j)])] / sum;
      for (int64_t j = 0; j < K; ++j) {
        const float index = indices->f32()[t * K + j];
        EXPECT_EQ(index, float(order[size_t(j)])) << b << " token " << t << " rank " << j;
        const double expected = p[size_t(order[size_t(j)])] / sum / (normalized ? chosen : 1.0);
        EXPECT_NEAR(weights->f32()[t * K + j], expected, 1e-6) << b << " token " << t << " rank " << j;
        used[size_t(order[size_t(j)])] = 1;
      }
    }
    EXPECT_GE(std::count(used.begin(), used.end(), 1), 3) << b << ": tokens must reach different experts";
    ++layers_checked;
  }
  EXPECT_GE(layers_checked, 1);
}

TEST(EngineMoe, CapturedChoicesFollowTheRouterLogits) {
  expect_routing_follows_logits("qwen3-moe-norm", true);
  expect_routing_follows_logits("qwen3-moe-topk-raw", false);
  expect_routing_follows_logits("mixtral-window", true);
}

}  // namespace
}  // namespace actcap
