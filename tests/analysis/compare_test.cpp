// The pieces of `actcap compare` and `stats --plot` that the script tests (tests/scripts/test_compare*.sh, numpy
// oracle) reach only through whole stores: exactness of the self comparison, zero rows, row pairing, site order,
// site kinds and layers, the per-layer panels and the norm per position.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "analysis/compare.h"
#include "analysis/layer_series.h"
#include "analysis/site_rows.h"
#include "analysis/stats.h"

namespace actcap {
namespace {

std::vector<double> random_row(std::mt19937& rng, size_t n, double scale) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<double> row(n);
  for (double& v : row) v = double(normal(rng)) * scale;  // float values, as stores hold them
  return row;
}

TEST(Compare, IdenticalRowsGiveExactlyOneAndZero) {
  std::mt19937 rng(5);
  DifferenceStats stats;
  for (int r = 0; r < 500; ++r) {
    const std::vector<double> row = random_row(rng, 1 + size_t(r % 97), std::pow(10.0, r % 13 - 6));
    stats.add_row(row, row);
  }
  EXPECT_EQ(stats.rows(), 500);
  EXPECT_EQ(stats.cosine_mean(), 1.0);
  EXPECT_EQ(stats.cosine_min(), 1.0);
  EXPECT_EQ(stats.cosine_flat(), 1.0);
  EXPECT_EQ(stats.relative_l2(), 0.0);
  EXPECT_EQ(stats.max_abs_diff(), 0.0);
}

TEST(Compare, MetricsOfKnownRows) {
  DifferenceStats stats;
  stats.add_row(std::vector<double>{1, 0}, std::vector<double>{0, 1});   // orthogonal: cos 0
  stats.add_row(std::vector<double>{3, 4}, std::vector<double>{-3, -4});  // opposite: cos -1
  EXPECT_DOUBLE_EQ(stats.cosine_mean(), -0.5);
  EXPECT_DOUBLE_EQ(stats.cosine_min(), -1.0);
  EXPECT_DOUBLE_EQ(stats.cosine_flat(), -25.0 / 26.0);  // a·b = -25, |a|² = |b|² = 26
  EXPECT_DOUBLE_EQ(stats.relative_l2(), std::sqrt(102.0 / 26.0));  // |a-b|² = 2 + 100
  EXPECT_DOUBLE_EQ(stats.max_abs_diff(), 8.0);
  EXPECT_EQ(stats.values(), 4);
}

TEST(Compare, ZeroRows) {
  DifferenceStats zeros;
  zeros.add_row(std::vector<double>{0, 0}, std::vector<double>{0, 0});  // two zero rows are the same
  EXPECT_EQ(zeros.cosine_mean(), 1.0);
  EXPECT_EQ(zeros.cosine_flat(), 1.0);
  EXPECT_EQ(zeros.relative_l2(), 0.0);
  DifferenceStats zero_a;
  zero_a.add_row(std::vector<double>{0, 0}, std::vector<double>{1, 0});
  EXPECT_EQ(zero_a.cosine_mean(), 0.0);
  EXPECT_TRUE(std::isinf(zero_a.relative_l2()));
  EXPECT_TRUE(std::isnan(DifferenceStats().cosine_mean()));
}

TEST(Compare, CosineStaysWithinOne) {
  // Nearly parallel rows whose rounded cosine could come out above 1.
  std::mt19937 rng(9);
  for (int r = 0; r < 200; ++r) {
    std::vector<double> a = random_row(rng, 64, 1.0), b = a;
    b[size_t(r % 64)] = std::nextafter(float(b[size_t(r % 64)]), 1e30f);
    DifferenceStats stats;
    stats.add_row(a, b);
    EXPECT_LE(stats.cosine_min(), 1.0);
    EXPECT_GE(stats.cosine_min(), 1.0 - 1e-12);
  }
}

TEST(Compare, RowsPairedByPositionOrInOrder) {
  using Pairs = std::vector<std::pair<int64_t, int64_t>>;
  // Same tokens: the positions both stored (A kept all 4, B only the last two).
  EXPECT_EQ(matched_rows({0, 1, 2, 3}, {2, 3}, true), (Pairs{{2, 0}, {3, 1}}));
  EXPECT_EQ(matched_rows({3}, {1}, true), Pairs{});
  // Different tokens: row k against row k over the shorter record.
  EXPECT_EQ(matched_rows({0, 1, 2}, {0, 1, 2, 3, 4}, false), (Pairs{{0, 0}, {1, 1}, {2, 2}}));
  EXPECT_EQ(matched_rows({5}, {8}, false), (Pairs{{0, 0}}));
}

TEST(Compare, SitesOfTwoModelsMergeInForwardOrder) {
  const std::vector<std::string> gpt2 = {"hook_embed", "hook_pos_embed", "blocks.0.ln1.hook_normalized", "blocks.0.hook_resid_post"};
  const std::vector<std::string> llama = {"hook_embed", "blocks.0.ln1.hook_normalized", "blocks.0.attn.hook_q",
                                          "blocks.0.attn.hook_k", "blocks.0.hook_resid_post"};
  EXPECT_EQ(merged_site_order(gpt2, llama),
            (std::vector<std::string>{"hook_embed", "hook_pos_embed", "blocks.0.ln1.hook_normalized", "blocks.0.attn.hook_q",
                                      "blocks.0.attn.hook_k", "blocks.0.hook_resid_post"}));
  EXPECT_EQ(merged_site_order({}, llama), llama);
}

TEST(Compare, RangesText) {
  EXPECT_EQ(ranges_text({0, 1, 2, 3, 7, 9, 10}), "0-3,7,9-10");
  EXPECT_EQ(ranges_text({4}), "4");
  EXPECT_EQ(ranges_text({}), "");
}

TEST(LayerSeries, SiteKindsAndLayers) {
  auto at = site_layer("blocks.12.attn.hook_pattern");
  ASSERT_TRUE(at);
  EXPECT_EQ(at->kind, "attn.hook_pattern");
  EXPECT_EQ(at->layer, 12);
  at = site_layer("hidden_states.3");
  ASSERT_TRUE(at);
  EXPECT_EQ(at->kind, "hidden_states");
  EXPECT_EQ(at->layer, 3);
  for (const char* outside : {"hook_embed", "logits", "ln_final.hook_normalized", "blocks.x.hook_z", "hidden_states.2a", "blocks.3"})
    EXPECT_FALSE(site_layer(outside)) << outside;
}

TEST(LayerSeries, OneLinePerKindWithGaps) {
  const plot::Panel panel = layer_panel("t", "y", {"hook_embed", "hidden_states.0", "blocks.0.hook_resid_post", "hidden_states.1",
                                                   "blocks.1.hook_resid_post", "hidden_states.2", "logits"},
                                        {9, 1, 2, 3, 4, 5, 9});
  EXPECT_EQ(panel.x, (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(panel.x_ticks, (std::vector<std::string>{"0", "1", "2"}));
  ASSERT_EQ(panel.series.size(), 2u);
  EXPECT_EQ(panel.series[0].label, "hidden_states");
  EXPECT_EQ(panel.series[0].y, (std::vector<double>{1, 3, 5}));
  EXPECT_EQ(panel.series[1].label, "hook_resid_post");
  EXPECT_EQ(panel.series[1].y[0], 2);
  EXPECT_EQ(panel.series[1].y[1], 4);
  EXPECT_TRUE(std::isnan(panel.series[1].y[2]));
  EXPECT_FALSE(panel.log_y);
  EXPECT_TRUE(layer_panel("t", "y", {"hidden_states.0", "hidden_states.1"}, {1e-6, 1}, true).log_y);
  EXPECT_FALSE(layer_panel("t", "y", {"hidden_states.0", "hidden_states.1"}, {0.5, 1}, true).log_y);
}

TEST(SiteRows, PatternRowsAreHeadsByKeys) {
  // [heads = 2, T = 3, keys = 3]: position 1's row is [2, 3], one key row per head.
  std::vector<float> values(18);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(i);
  const TensorView pattern{values.data(), DType::F32, {2, 3, 3}};
  const int axis = position_axis("blocks.0.attn.hook_pattern");
  EXPECT_EQ(axis, 1);
  EXPECT_EQ(row_shape(pattern, axis), (Shape{2, 3}));
  std::vector<double> row;
  row_values(pattern, axis, 1, row);
  EXPECT_EQ(row, (std::vector<double>{3, 4, 5, 12, 13, 14}));
  EXPECT_EQ(position_axis("blocks.0.hook_resid_post"), 0);
  row_values(TensorView{values.data(), DType::F32, {6, 3}}, 0, 2, row);
  EXPECT_EQ(row, (std::vector<double>{6, 7, 8}));
}

TEST(Stats, NormPerPosition) {
  const std::vector<float> rows = {3, 4, 0, 0, 1, 0};  // [3 positions, 2]: norms 5, 0, 1
  RowNormStats norms;
  norms.add(TensorView{rows.data(), DType::F32, {3, 2}}, 0);
  EXPECT_EQ(norms.rows(), 3);
  EXPECT_DOUBLE_EQ(norms.mean(), 2.0);
  const std::vector<uint16_t> bf16 = {f32_to_bf16(6), f32_to_bf16(8)};  // [1, 2]: norm 10
  norms.add(TensorView{bf16.data(), DType::BF16, {1, 2}}, 0);
  EXPECT_DOUBLE_EQ(norms.mean(), 4.0);
}

TEST(Stats, FigureHasFourPanelsOverTheLayers) {
  std::vector<LayerStats> layers(2);
  const std::vector<float> values = {-2, 1, 0, 1};
  layers[0].site = "hidden_states.0";
  layers[1].site = "hidden_states.1";
  for (LayerStats& layer : layers) {
    layer.values.add(TensorView{values.data(), DType::F32, {2, 2}});
    layer.row_norms.add(TensorView{values.data(), DType::F32, {2, 2}}, 0);
  }
  const plot::Figure figure = stats_figure("t", layers);
  ASSERT_EQ(figure.panels.size(), 4u);
  EXPECT_EQ(figure.panels[0].series[0].y, (std::vector<double>{0, 0}));  // mean
  EXPECT_DOUBLE_EQ(figure.panels[1].series[0].y[0], std::sqrt(6.0 / 3.0));  // sample std
  EXPECT_DOUBLE_EQ(figure.panels[2].series[0].y[0], (std::sqrt(5.0) + 1.0) / 2.0);  // norm per position
  EXPECT_EQ(figure.panels[3].series[0].y, (std::vector<double>{2, 2}));  // max |x|
}

}  // namespace
}  // namespace actcap
