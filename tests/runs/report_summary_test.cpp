// runs/report_summary.h: how metrics lines become the report's per-evaluation numbers, and how rotation lines are
// grouped; runs/dataset_snapshot.h: the same data gives the same ledger wherever it lies.
#include "runs/report_summary.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "runs/dataset_snapshot.h"
#include "../test_util.h"

namespace actcap::runs {
namespace {

MetricsLine logits_line(int64_t line, const std::string& created, std::vector<double> kl) {
  MetricsLine m;
  m.line = line;
  m.created = created;
  m.kind = "logits";
  m.model_a = "a";
  m.model_b = "b";
  m.tokens = int64_t(kl.size());
  m.kl = std::move(kl);
  m.surprisal_a = std::vector<double>(m.kl.size() - 1, 2.0);
  m.surprisal_b = std::vector<double>(m.kl.size() - 1, 4.0);
  return m;
}

MetricsLine layer_line(int64_t line, const std::string& created, int64_t tokens, double cosine, double rms) {
  MetricsLine m;
  m.line = line;
  m.created = created;
  m.kind = "hidden_state";
  m.model_a = "a";
  m.model_b = "b";
  m.tokens = tokens;
  m.layer = 1;
  m.cosine_mean = cosine;
  m.rms_a = rms;
  m.rms_b = 2 * rms;
  return m;
}

TEST(ReportSummary, EvaluationsWeighTokens) {
  const std::vector<MetricsLine> lines = {
      logits_line(1, "t1", {1, 2, 3}), layer_line(2, "t1", 3, 0.5, 1.0),
      logits_line(3, "t1", {5}),       layer_line(4, "t1", 1, 0.9, 3.0),
      logits_line(5, "t2", {0, 0}),    layer_line(6, "t2", 2, 1.0, 1.0)};
  const auto evaluations = summarize_metrics(lines);
  ASSERT_EQ(evaluations.size(), 2u);
  const Evaluation& e = evaluations[0];
  EXPECT_EQ(e.prompts, 2);
  EXPECT_EQ(e.tokens, 4);
  EXPECT_EQ(e.first_line, 1);
  EXPECT_EQ(e.last_line, 4);
  EXPECT_DOUBLE_EQ(*e.kl_mean, (1 + 2 + 3 + 5) / 4.0);
  EXPECT_DOUBLE_EQ(*e.surprisal_a_mean, 2.0);
  EXPECT_EQ(e.kl_by_position, (std::vector<double>{3, 2, 3}));
  ASSERT_EQ(e.layers.size(), 1u);
  EXPECT_DOUBLE_EQ(*e.layers[0].cosine, (0.5 * 3 + 0.9 * 1) / 4);
  EXPECT_DOUBLE_EQ(e.layers[0].rms_a, std::sqrt((1.0 * 3 + 9.0 * 1) / 4));
  EXPECT_DOUBLE_EQ(e.layers[0].rms_b, 2 * e.layers[0].rms_a);
  EXPECT_EQ(evaluations[1].number, 2);
  EXPECT_EQ(evaluations[1].first_line, 5);
}

TEST(ReportSummary, RotationRunsAreGroupedByInvocation) {
  // Two invocations within the same second (same "created"), then a third one later.
  std::vector<RotationLine> lines(5);
  const char* sites[] = {"hidden_states.1", "hidden_states.2", "hidden_states.1", "hidden_states.2", "hidden_states.1"};
  for (size_t i = 0; i < lines.size(); ++i) {
    lines[i].line = int64_t(i + 1);
    lines[i].site = sites[i];
    lines[i].created = i < 4 ? "t1" : "t2";
  }
  const auto runs = group_rotations(lines);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].lines.size(), 2u);
  EXPECT_EQ(runs[1].lines.front().line, 3);
  EXPECT_EQ(runs[1].lines.size(), 2u);
  EXPECT_EQ(runs[2].number, 3);
}

TEST(DatasetSnapshot, SameDataElsewhereGivesTheSameLedger) {
  const auto dir = test::temp_dir("snapshot");
  for (const char* root : {"one", "two"}) {
    std::filesystem::create_directories(dir / root / "prompts" / "styles");
    std::filesystem::create_directories(dir / root / "samples");
    std::ofstream(dir / root / "prompts" / "styles" / "b.md") << "style";
    std::ofstream(dir / root / "prompts" / "a.md") << "prompt";
    std::ofstream(dir / root / "samples" / "s.txt") << "sample";
  }
  const auto one = snapshot_dataset((dir / "one" / "prompts").string(), (dir / "one" / "samples").string());
  const auto two = snapshot_dataset((dir / "two" / "prompts").string(), (dir / "two" / "samples").string());
  EXPECT_EQ(one.dump(), two.dump());
  EXPECT_EQ(one["prompts"]["files"][0]["path"], "a.md");
  EXPECT_EQ(one["prompts"]["files"][1]["path"], "styles/b.md");
  std::ofstream(dir / "two" / "samples" / "s.txt") << "changed";
  const auto changed = snapshot_dataset((dir / "two" / "prompts").string(), (dir / "two" / "samples").string());
  EXPECT_NE(changed["dataset_sha256"], one["dataset_sha256"]);
  EXPECT_EQ(changed["prompts"]["sha256"], one["prompts"]["sha256"]);
  test::expect_one_line_error([&] { snapshot_dataset((dir / "none").string(), (dir / "one" / "samples").string()); },
                              {"none", "--prompts-dir is not a folder"});
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace actcap::runs
