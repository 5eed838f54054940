// Concepts: the built-in definitions, the pair order, the user's prompt files, the labels a concept store
// carries (and the JSONL "meta" that puts them there), and the per-layer metrics on hand-computed examples.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "analysis/concept_metrics.h"
#include "analysis/concept_pairs.h"
#include "analysis/concept_prompts.h"
#include "capture/inputs.h"
#include "capture/store_reader.h"
#include "capture/store_writer.h"
#include "core/atomic_file.h"
#include "../test_util.h"

namespace actcap {
namespace {
namespace fs = std::filesystem;

TEST(BuiltinConcepts, EightConceptsOfAtLeastEightPersonasAndSixteenPrompts) {
  EXPECT_EQ(builtin_concept_names(), (std::vector<std::string>{"confidence", "creativity", "empathy", "enthusiasm",
                                                                "formality", "helpfulness", "honesty", "verbosity"}));
  for (const std::string& name : builtin_concept_names()) {
    const ConceptDefinition definition = builtin_concept(name);
    EXPECT_EQ(definition.name, name);
    EXPECT_GE(definition.personas.size(), 8u) << name;
    EXPECT_GE(definition.prompts.size(), 16u) << name;
    std::set<std::string> texts;
    for (const auto& persona : definition.personas) {
      EXPECT_NE(persona.positive, persona.negative) << name;
      EXPECT_TRUE(texts.insert(persona.positive).second && texts.insert(persona.negative).second) << name;
    }
    for (const std::string& prompt : definition.prompts) EXPECT_TRUE(texts.insert(prompt).second) << prompt;
  }
}

TEST(BuiltinConcepts, UnknownNameSuggestsTheNearest) {
  test::expect_one_line_error([] { builtin_concept("empathie"); }, {"unknown concept \"empathie\"", "did you mean \"empathy\"?"});
  test::expect_one_line_error([] { builtin_concept("zzz"); }, {"unknown concept \"zzz\"", "built-in: confidence"});
}

TEST(ContrastPrompts, EveryCombinationOnceAndPrefixesSpreadOverPersonasAndPrompts) {
  const ConceptDefinition honesty = builtin_concept("honesty");
  const auto pairs = contrast_prompts(honesty, 0);
  const size_t P = honesty.personas.size(), Q = honesty.prompts.size();
  ASSERT_EQ(pairs.size(), P * Q);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const ContrastPrompt& pair : pairs) {
    EXPECT_TRUE(seen.insert({pair.persona, pair.prompt}).second);
    EXPECT_EQ(pair.positive, honesty.personas[size_t(pair.persona)].positive + "\n\n" + honesty.prompts[size_t(pair.prompt)]);
    EXPECT_EQ(pair.negative, honesty.personas[size_t(pair.persona)].negative + "\n\n" + honesty.prompts[size_t(pair.prompt)]);
  }
  std::set<int64_t> personas, prompts;
  for (size_t i = 0; i < std::min(P, Q); ++i) {
    personas.insert(pairs[i].persona);
    prompts.insert(pairs[i].prompt);
  }
  EXPECT_EQ(personas.size(), std::min(P, Q));
  EXPECT_EQ(prompts.size(), std::min(P, Q));
  EXPECT_EQ(contrast_prompts(honesty, 5).size(), 5u);
  EXPECT_EQ(contrast_prompts(honesty, 100000).size(), P * Q);
}

TEST(ContrastPrompts, ConceptDocumentsAreChecked) {
  const nlohmann::json good = {{"name", "x"}, {"description", "d"}, {"personas", {{{"positive", "a"}, {"negative", "b"}}}},
                               {"prompts", {"p"}}};
  EXPECT_EQ(parse_concept(good, "x.json").prompts.size(), 1u);
  nlohmann::json bad = good;
  bad["personas"] = nlohmann::json::array();
  test::expect_one_line_error([&] { parse_concept(bad, "x.json"); }, {"x.json", "\"personas\" must be a non-empty list"});
  bad = good;
  bad["personas"][0]["negative"] = "";
  test::expect_one_line_error([&] { parse_concept(bad, "x.json"); }, {"x.json: personas[0]", "\"negative\""});
  bad = good;
  bad["prompts"] = {"ok", 3};
  test::expect_one_line_error([&] { parse_concept(bad, "x.json"); }, {"prompts[1] must be a non-empty string"});
}

class ConceptFiles : public testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("concept"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    write_file_atomic(path, text);
    return path;
  }
  fs::path dir_;
};

TEST_F(ConceptFiles, PromptFilesPairLineByLine) {
  const std::string pos = write("pos.txt", "first\r\n\n  \n\"two\\nlines\"\nthird\n");
  const std::string neg = write("neg.txt", "a\nb\nc");
  const auto pairs = contrast_prompts_from_files(pos, neg, 0);
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0].positive, "first");
  EXPECT_EQ(pairs[1].positive, "two\nlines");
  EXPECT_EQ(pairs[2].negative, "c");
  EXPECT_EQ(pairs[2].persona, -1);
  EXPECT_EQ(contrast_prompts_from_files(pos, neg, 2).size(), 2u);
  test::expect_one_line_error([&] { contrast_prompts_from_files(pos, write("short.txt", "x\n"), 0); },
                              {"pos.txt: 3 prompts, but", "short.txt has 1"});
  test::expect_one_line_error([&] { contrast_prompts_from_files(write("empty.txt", "\n \n"), neg, 0); },
                              {"empty.txt: no prompts"});
  test::expect_one_line_error([&] { contrast_prompts_from_files(write("bad.txt", "\"unterminated\n"), neg, 0); },
                              {"bad.txt:1: a line starting with '\"' must be one JSON string"});
  test::expect_one_line_error([&] { contrast_prompts_from_files((dir_ / "missing.txt").string(), neg, 0); },
                              {"missing.txt: cannot open"});
}

TEST_F(ConceptFiles, JsonlMetaIsCheckedAndKept) {
  const std::string good = write("good.jsonl", "{\"text\": \"hi\", \"meta\": {\"side\": \"positive\", \"pair\": 0}}\n");
  InputSet inputs({{InputSource::Kind::Jsonl, good}});
  auto cursor = inputs.cursor();
  const auto record = cursor.next();
  ASSERT_TRUE(record);
  EXPECT_EQ(record->meta, (nlohmann::json{{"side", "positive"}, {"pair", 0}}));
  const std::string bad = write("bad.jsonl", "{\"text\": \"hi\"}\n{\"text\": \"hi\", \"meta\": [1]}\n");
  test::expect_one_line_error([&] { InputSet set({{InputSource::Kind::Jsonl, bad}}); },
                              {"bad.jsonl:2", "\"meta\" must be a JSON object"});
}

// A store of labelled records, each with `rows` rows of hidden_states.1 = [record + row, -record].
std::string labelled_store(const std::string& dir, const std::vector<nlohmann::json>& metas, int64_t rows = 2) {
  StoreOptions options;
  options.dir = dir;
  options.sites = {"hidden_states.1"};
  StoreWriter writer(options, {{"model", {{"path", "/m"}, {"model_type", "gpt2"}}}});
  for (size_t r = 0; r < metas.size(); ++r) {
    RecordInfo info;
    info.record = int64_t(r);
    info.id = std::to_string(r);
    info.token_ids.assign(size_t(rows), 1);
    info.n_prompt = int(rows);
    for (int64_t t = 0; t < rows; ++t) info.positions.push_back(t);
    if (!metas[r].is_null()) info.extra["meta"] = metas[r];
    Tensor values({rows, 2});
    for (int64_t t = 0; t < rows; ++t) {
      values.f32()[2 * t] = float(r) + float(t);
      values.f32()[2 * t + 1] = -float(r);
    }
    std::vector<std::pair<std::string, Tensor>> sites;
    sites.emplace_back("hidden_states.1", std::move(values));
    writer.add_record(info, sites);
  }
  writer.finish();
  return dir;
}

nlohmann::json side(const char* s, int pair) { return {{"concept", "c"}, {"side", s}, {"pair", pair}}; }

TEST_F(ConceptFiles, StorePairsFollowTheLabelsNotTheRecordOrder) {
  const std::string dir =
      labelled_store((dir_ / "s").string(), {side("negative", 1), side("positive", 0), side("positive", 1), side("negative", 0)});
  const StoreReader store(dir);
  const StorePairs pairs = store_pairs(store);
  EXPECT_EQ(pairs.concept_name, "c");
  EXPECT_EQ(pairs.positive, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(pairs.negative, (std::vector<int64_t>{3, 0}));
  const PairMatrices last = pair_matrices(store, pairs, "hidden_states.1", RowReduction::last);
  EXPECT_EQ(last.positive(1, 0), 3.0);  // record 2, row 1
  EXPECT_EQ(last.negative(0, 1), -3.0);
  const PairMatrices mean = pair_matrices(store, pairs, "hidden_states.1", RowReduction::mean);
  EXPECT_EQ(mean.positive(1, 0), 2.5);
  test::expect_one_line_error([] { parse_row_reduction("first"); }, {"--positions \"first\": expected last or mean"});
}

TEST_F(ConceptFiles, BadLabelsAreRefusedNamingTheStore) {
  auto refused = [&](const std::string& name, const std::vector<nlohmann::json>& metas, const std::string& fragment) {
    const std::string dir = labelled_store((dir_ / name).string(), metas);
    const StoreReader store(dir);
    test::expect_one_line_error([&] { store_pairs(store); }, {dir, fragment});
  };
  refused("none", {nullptr, side("negative", 0)}, "record 0 has no concept label");
  refused("twice", {side("positive", 0), side("positive", 0)}, "records 0 and 1 are both the positive side of pair 0");
  refused("half", {side("positive", 0), side("negative", 0), side("positive", 1)}, "pair 1 has no negative side");
  refused("gap", {side("positive", 1), side("negative", 1)}, "pair 0 is missing");
  refused("side", {side("neutral", 0)}, "side \"neutral\" is neither positive nor negative");
}

TEST(ConceptSites, OutputBlockOfSite) {
  EXPECT_EQ(output_block_of_site("hidden_states.1"), 0);
  EXPECT_EQ(output_block_of_site("hidden_states.12"), 11);
  EXPECT_EQ(output_block_of_site("blocks.3.hook_resid_post"), 3);
  EXPECT_EQ(output_block_of_site("hidden_states.0"), std::nullopt);  // the embedding: no block's output
  EXPECT_EQ(output_block_of_site("blocks.3.hook_resid_pre"), std::nullopt);
  EXPECT_EQ(output_block_of_site("hidden_states.x"), std::nullopt);
  EXPECT_EQ(output_block_of_site("logits"), std::nullopt);
}

// p = (3, 1), (2, 2); q = (1, 1), (1, 1): every metric in closed form.
PairMatrices example() {
  PairMatrices m;
  m.positive.resize(2, 2);
  m.negative.resize(2, 2);
  m.positive << 3, 1, 2, 2;
  m.negative << 1, 1, 1, 1;
  return m;
}

TEST(ConceptMetrics, HandComputedExample) {
  const LayerSeparation layer = layer_separation(example());
  EXPECT_EQ(layer.pairs, 2);
  EXPECT_NEAR(layer.diff_norm, std::sqrt(2.5), 1e-15);  // mu = (1.5, 0.5)
  EXPECT_NEAR(layer.mean_norm, (std::sqrt(10.0) + std::sqrt(8.0) + 2 * std::sqrt(2.0)) / 4, 1e-15);
  EXPECT_NEAR(layer.relative_diff, layer.diff_norm / layer.mean_norm, 1e-15);
  EXPECT_NEAR(layer.cosine, (4 / std::sqrt(20.0) + 1) / 2, 1e-15);
  // On u = mu / |mu|: p.u = sqrt(10), 8/sqrt(10); q.u = 4/sqrt(10) twice: d = |mu| / sqrt(var(p.u) / 2) = 5.
  EXPECT_NEAR(layer.separation, 5.0, 1e-12);
  EXPECT_EQ(layer.pair_accuracy, 1.0);
}

TEST(ConceptMetrics, DegenerateLayersHaveNoSeparationAndRankLast) {
  PairMatrices same = example();
  same.negative = same.positive;
  const LayerSeparation none = layer_separation(same);
  EXPECT_EQ(none.diff_norm, 0.0);
  EXPECT_TRUE(std::isnan(none.separation));
  EXPECT_NEAR(none.cosine, 1.0, 1e-15);
  PairMatrices one;
  one.positive = example().positive.topRows(1);
  one.negative = example().negative.topRows(1);
  EXPECT_TRUE(std::isnan(layer_separation(one).separation));  // no spread from one pair

  std::vector<LayerSeparation> layers(4);
  layers[0].separation = 1.0;
  layers[1].separation = std::nan("");
  layers[2].separation = 3.0;
  layers[3].separation = 1.0;
  rank_layers(layers);
  EXPECT_EQ(layers[2].rank, 1);
  EXPECT_EQ(layers[0].rank, 2);  // a tie keeps the layers' order
  EXPECT_EQ(layers[3].rank, 3);
  EXPECT_EQ(layers[1].rank, 4);
  EXPECT_TRUE(to_json(layers[1])["separation"].is_null());
}

}  // namespace
}  // namespace actcap
