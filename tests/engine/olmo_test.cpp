// OLMo 1 beyond the reference activations (tests/data/extra/olmo-*, checked by EngineReference): clip_qkv's
// validation and effect, and the config keys OlmoConfig has no norm eps for.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "capture/recorder.h"
#include "capture/sites.h"
#include "models/config.h"
#include "models/model.h"
#include "../test_util.h"

namespace actcap {
namespace {

const std::string OLMO = R"({"model_type": "olmo", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 2, "num_attention_heads": 4)";

ModelConfig parse(const std::string& json) { return ModelConfig::parse(json, "", "m/config.json"); }

TEST(OlmoConfig, DefaultsAndClipQkvValidation) {
  const ModelConfig m = parse(OLMO + R"(, "clip_qkv": null, "rms_norm_eps": 0.1})");
  EXPECT_DOUBLE_EQ(m.norm_eps, 1e-5);  // OlmoLayerNorm's eps is fixed; a stray rms_norm_eps changes nothing
  EXPECT_EQ(m.num_key_value_heads, 4);
  EXPECT_FALSE(m.tie_word_embeddings);
  for (const char* bad : {"0", "-8.0"})
    test::expect_one_line_error([&] { parse(OLMO + R"(, "clip_qkv": )" + bad + "}"); },
                                {"m/config.json", "\"clip_qkv\" must be a positive number or null"});
  test::expect_one_line_error([&] { parse(OLMO + R"(, "clip_qkv": "8"})"); },
                              {"m/config.json", "\"clip_qkv\" has the wrong type"});
}

// The largest |value| of `site` for the first sequence of a forward pass over a few tokens.
double largest(Model& model, const std::string& site) {
  const std::vector<int32_t> ids = {3, 14, 15, 92, 65, 35};
  const SiteSelection all = SiteSelection::all(model);
  Recorder recorder;
  KVCache cache = model.new_cache();
  model.forward(ids, cache, CaptureTarget{&all, &recorder});
  for (const auto& [name, t] : recorder.take(0, int(ids.size()), int(ids.size())).sites)
    if (name == site) {
      double m = 0;
      for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, double(std::fabs(t.f32()[i])));
      return m;
    }
  ADD_FAILURE() << "no site " << site;
  return 0;
}

// Layer 0's projections see the same input with and without the clamp, so the clamp alone bounds them.
TEST(OlmoModel, ClipQkvBoundsTheProjections) {
  const char* sites[] = {"blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v"};
  auto free = Model::synthetic(OLMO + "}", 7);
  double smallest_max = INFINITY;
  for (const char* site : sites) smallest_max = std::min(smallest_max, largest(*free, site));
  const double bound = std::floor(smallest_max * 500) / 1000;  // about half, exact in the decimal text below
  auto clipped = Model::synthetic(OLMO + R"(, "clip_qkv": )" + std::to_string(bound) + "}", 7);
  for (const char* site : sites) EXPECT_FLOAT_EQ(float(largest(*clipped, site)), float(bound)) << site;
}

}  // namespace
}  // namespace actcap
