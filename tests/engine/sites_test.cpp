// Site selection (--sites, --layers, --positions) and the Recorder's assembly of rows.
#include <gtest/gtest.h>

#include "capture/recorder.h"
#include "capture/sites.h"
#include "core/error.h"
#include "generate/generate.h"
#include "models/model.h"
#include "../test_util.h"

namespace actcap {
namespace {

std::unique_ptr<Model> qwen3() { return Model::load(std::string(ACTCAP_TEST_DATA) + "/reference/qwen3"); }

TEST(EngineSites, PatternsLayersAndDefaults) {
  auto model = qwen3();  // 2 layers
  auto by_default = SiteSelection::parse("", "", "all", *model);
  EXPECT_EQ(by_default.sites, (std::vector<std::string>{"hidden_states.0", "hidden_states.1", "hidden_states.2"}));
  EXPECT_EQ(SiteSelection::parse("all", "", "all", *model).sites, model->site_names());
  auto globbed = SiteSelection::parse("blocks.*.attn.hook_q,logits", "", "last", *model);
  EXPECT_EQ(globbed.sites, (std::vector<std::string>{"blocks.0.attn.hook_q", "blocks.1.attn.hook_q", "logits"}));
  EXPECT_EQ(globbed.positions, SiteSelection::Positions::Last);
  EXPECT_TRUE(globbed.wants("logits"));
  EXPECT_FALSE(globbed.wants("blocks.0.attn.hook_k"));
  // --layers K keeps block K's sites, hidden_states.K (its input) among them, and the sites outside the blocks:
  // hook_embed and hidden_states.2, the final norm's output.
  auto layer1 = SiteSelection::parse("hidden_states.*,blocks.*.hook_resid_post,hook_embed", "1", "all", *model);
  EXPECT_EQ(layer1.sites, (std::vector<std::string>{"hook_embed", "hidden_states.1", "blocks.1.hook_resid_post",
                                                    "hidden_states.2"}));
  EXPECT_EQ(SiteSelection::parse("hidden_states.*", "0", "all", *model).sites,
            (std::vector<std::string>{"hidden_states.0", "hidden_states.2"}));
  // Negative layers count from the end, as in Python.
  EXPECT_EQ(SiteSelection::parse("blocks.*.hook_resid_post", "-1", "all", *model).sites,
            (std::vector<std::string>{"blocks.1.hook_resid_post"}));
  EXPECT_EQ(SiteSelection::parse("blocks.*.hook_resid_post", "-2--1", "all", *model).sites.size(), 2u);
  EXPECT_EQ(SiteSelection::parse("blocks.*.hook_resid_post", "0--1", "all", *model).sites.size(), 2u);
  EXPECT_THROW(SiteSelection::parse("hidden_states.*", "-3", "all", *model), Error);
  EXPECT_EQ(SiteSelection::parse("blocks.*.hook_resid_post", "0-1", "all", *model).sites.size(), 2u);
  EXPECT_THROW(SiteSelection::parse("blocks.*.hook_nothing", "", "all", *model), Error);
  EXPECT_THROW(SiteSelection::parse("hidden_states.*", "2", "all", *model), Error);
  EXPECT_THROW(SiteSelection::parse("hidden_states.*", "x", "all", *model), Error);
  EXPECT_THROW(SiteSelection::parse("hidden_states.*", "1-0", "all", *model), Error);
  EXPECT_THROW(SiteSelection::parse("hidden_states.*", "", "middle", *model), Error);
  EXPECT_EQ(SiteSelection::parse("logits", "0", "all", *model).sites, (std::vector<std::string>{"logits"}));
  EXPECT_EQ(SiteSelection::parse("", "", "last-prompt", *model).positions, SiteSelection::Positions::LastPrompt);
}

TEST(EngineSites, ErrorsNameTheNearestSiteAndTheValidLayers) {
  auto model = qwen3();
  test::expect_one_line_error([&] { SiteSelection::parse("blocks.*.hook_resid_pots", "", "all", *model); },
                              {"did you mean \"blocks.*.hook_resid_post\"", "actcap sites"});
  test::expect_one_line_error([&] { SiteSelection::parse("blocks.0.attn.hook_qq", "", "all", *model); },
                              {"did you mean \"blocks.0.attn.hook_q\""});
  test::expect_one_line_error([&] { SiteSelection::parse("zzzzzz", "", "all", *model); }, {"e.g. "});
  test::expect_one_line_error([&] { SiteSelection::parse("", "x", "all", *model); }, {"\"x\" is not a layer number"});
  test::expect_one_line_error([&] { SiteSelection::parse("", "5", "all", *model); }, {"0 to 1, or -2 to -1"});
}

TEST(EngineSites, BlocksAndTokenRows) {
  EXPECT_EQ(block_of_site("blocks.3.attn.hook_q", 4), 3);
  EXPECT_EQ(block_of_site("hidden_states.0", 4), 0);
  EXPECT_EQ(block_of_site("hidden_states.3", 4), 3);
  EXPECT_EQ(block_of_site("hidden_states.4", 4), std::nullopt);  // the final norm's output
  EXPECT_EQ(block_of_site("logits", 4), std::nullopt);
  EXPECT_TRUE(is_token_row_site("blocks.0.attn.hook_q"));
  EXPECT_FALSE(is_token_row_site("blocks.0.attn.hook_pattern"));
}

TEST(EngineSites, RecommendedLayersAreTheMiddleOfTheModel) {
  EXPECT_EQ(recommended_layers(2), (std::vector<int>{0}));
  EXPECT_EQ(recommended_layers(24), (std::vector<int>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}));
  EXPECT_EQ(recommended_layers(1), (std::vector<int>{0}));
}

TEST(EngineSites, RecorderKeepsTheSelectedPositions) {
  auto model = qwen3();
  auto selection = SiteSelection::parse("hidden_states.2,blocks.0.attn.hook_pattern,blocks.0.attn.hook_q", "", "all",
                                        *model);
  GenerationOptions options;
  options.max_new_tokens = 3;
  options.eos_token_ids = std::vector<int32_t>{};
  const std::vector<int32_t> prompt = {5, 6, 7, 8};
  for (auto [positions, kept] : {std::pair{SiteSelection::Positions::All, std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}},
                                 {SiteSelection::Positions::Last, {6}},
                                 {SiteSelection::Positions::LastPrompt, {3}},
                                 {SiteSelection::Positions::Prompt, {0, 1, 2, 3}},
                                 {SiteSelection::Positions::Generated, {4, 5, 6}}}) {
    for (CaptureMode mode : {CaptureMode::Rerun, CaptureMode::Stepwise}) {
      Recorder recorder(positions);
      auto out = generate(*model, {prompt}, options, &selection, mode, &recorder);
      auto taken = recorder.take(0, out[0].n_prompt, int(out[0].token_ids.size()));
      EXPECT_EQ(taken.positions, kept);
      ASSERT_EQ(taken.sites.size(), 3u);
      const int64_t k = int64_t(kept.size());
      EXPECT_EQ(taken.sites[0].first, "blocks.0.attn.hook_q");
      EXPECT_EQ(taken.sites[0].second.shape(), (Shape{k, 4, 16}));
      EXPECT_EQ(taken.sites[1].first, "blocks.0.attn.hook_pattern");
      EXPECT_EQ(taken.sites[1].second.shape(), (Shape{4, k, 7}));
      EXPECT_EQ(taken.sites[2].second.shape(), (Shape{k, 64}));
      // each pattern row is a distribution over the keys up to its own position
      const Tensor& pattern = taken.sites[1].second;
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t r = 0; r < k; ++r) {
          double sum = 0;
          for (int64_t j = 0; j < 7; ++j) {
            const float p = pattern.f32()[(h * k + r) * 7 + j];
            if (j > kept[size_t(r)]) {
              EXPECT_EQ(p, 0.0f);
            }
            sum += p;
          }
          EXPECT_NEAR(sum, 1.0, 1e-5);
        }
    }
  }
}

}  // namespace
}  // namespace actcap
