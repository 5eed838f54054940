#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "analysis/stats.h"
#include "core/dtype.h"

using namespace actcap;

TEST(FormatsStats, SampleStdLikeTorchStd) {
  std::vector<float> v{2, 4, 4, 4, 5, 5, 7, 9};
  RunningStats s;
  s.add(TensorView{v.data(), DType::F32, {8}});
  EXPECT_EQ(s.count(), 8);
  EXPECT_EQ(s.min(), 2);
  EXPECT_EQ(s.max(), 9);
  EXPECT_DOUBLE_EQ(s.mean(), 5);
  EXPECT_DOUBLE_EQ(s.sample_std(), std::sqrt(32.0 / 7.0));  // torch.tensor(v).std() (unbiased)
}

TEST(FormatsStats, PiecesMergeToTheWholesStatistics) {
  std::vector<float> v;
  for (int i = 0; i < 1000; ++i) v.push_back(float(std::sin(i) * 100 + 1e3));
  RunningStats whole, pieces;
  whole.add(TensorView{v.data(), DType::F32, {1000}});
  pieces.add(TensorView{v.data(), DType::F32, {1}});
  pieces.add(TensorView{v.data() + 1, DType::F32, {399}});
  pieces.add(TensorView{v.data() + 400, DType::F32, {600}});
  EXPECT_EQ(pieces.count(), 1000);
  EXPECT_EQ(pieces.min(), whole.min());
  EXPECT_EQ(pieces.max(), whole.max());
  EXPECT_NEAR(pieces.mean(), whole.mean(), 1e-12 * std::abs(whole.mean()));
  EXPECT_NEAR(pieces.sample_std(), whole.sample_std(), 1e-10 * whole.sample_std());
}

TEST(FormatsStats, Bf16ValuesAreReadExactly) {
  std::vector<uint16_t> v{f32_to_bf16(1.5f), f32_to_bf16(-3.0f)};
  RunningStats s;
  s.add(TensorView{v.data(), DType::BF16, {2}});
  EXPECT_EQ(s.min(), -3.0);
  EXPECT_EQ(s.mean(), -0.75);
  RunningStats one;
  one.add(TensorView{v.data(), DType::BF16, {1}});
  EXPECT_TRUE(std::isnan(one.sample_std()));  // as torch: no spread from one value
}

TEST(FormatsStats, LayerNamesAndDocument) {
  EXPECT_EQ(layer_name_of_site("hidden_states.0"), "embedding");
  EXPECT_EQ(layer_name_of_site("hidden_states.3"), "layer_2");
  EXPECT_EQ(layer_name_of_site("blocks.0.hook_resid_post"), "blocks.0.hook_resid_post");
  EXPECT_EQ(layer_name_of_site("hidden_states.x"), "hidden_states.x");

  std::vector<float> a{1, 2, 3, 4}, b{5};
  LayerStats l0{"embedding", "hidden_states.0", {1, 2, 2}, DType::F32, {}};
  l0.values.add(TensorView{a.data(), DType::F32, {2, 2}});
  LayerStats l1{"layer_0", "hidden_states.1", {1, 1, 1}, DType::F32, {}};
  l1.values.add(TensorView{b.data(), DType::F32, {1, 1}});
  auto doc = stats_json("m", std::string("hi"), std::nullopt, {l0, l1});
  EXPECT_EQ(doc["model_name"], "m");
  EXPECT_EQ(doc["prompt"], "hi");
  EXPECT_TRUE(doc["generated_text"].is_null());
  EXPECT_EQ(doc["size_summary"]["min_size"], 1);
  EXPECT_EQ(doc["size_summary"]["max_size"], 4);
  EXPECT_EQ(doc["size_summary"]["avg_size"], 2.5);
  const auto& e = doc["layer_stats"][0];
  EXPECT_EQ(e["layer"], "embedding");
  EXPECT_EQ(e["shape"], nlohmann::ordered_json({1, 2, 2}));
  EXPECT_EQ(e["num_elements"], 4);
  EXPECT_EQ(e["mean"], 2.5);
  EXPECT_EQ(e["dtype"], "torch.float32");
  EXPECT_EQ(e["precision_bits"], 32);
  EXPECT_TRUE(doc["layer_stats"][1]["std"].is_null());
  // The original tool's key order.
  std::vector<std::string> keys;
  for (auto it = doc.begin(); it != doc.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"model_name", "prompt", "generated_text", "size_summary", "layer_stats"}));
}
