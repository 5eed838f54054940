#include "capture/progress.h"

#include <gtest/gtest.h>

#include "capture/reporter.h"

namespace actcap {
namespace {

TEST(CaptureProgress, RendersRecordsRateElapsedAndEta) {
  ProgressState state{25, 100, 0.25, 500, 30, 10};
  std::string line = render_progress(state, 80);
  EXPECT_EQ(line, "[#####               ] 25/100 records  500 tok/s  0:10 elapsed  ETA 0:30");
  EXPECT_LE(line.size(), 80u);
}

TEST(CaptureProgress, UnknownTotalAndNarrowTerminals) {
  EXPECT_EQ(render_progress({7, 0, 0, 50, -1, 2.0}, 80), " 7 records  50 tok/s  0:02 elapsed");
  // Before the first record the rate is unknown, not 0.
  EXPECT_EQ(render_progress({0, 10, 0.1, 0, -1, 1.0}, 80), "[##                  ] 0/10 records  0:01 elapsed");
  std::string narrow = render_progress({1, 3, 0.3, 10, 2, 1.0}, 20);
  EXPECT_LE(narrow.size(), 20u);
  EXPECT_EQ(format_duration(3725.0), "1:02:05");
}

TEST(CaptureProgress, WindowedRateIsSteadyWhenRecordsArriveInBatches) {
  // 10 records of 100 tokens every 2 s, each batch's records microseconds apart: 500 tok/s.
  WindowedRate rate(20.0);
  EXPECT_EQ(rate.rate(1.0), 0);
  double done = 0, lowest = 1e9, highest = 0;
  for (int batch = 1; batch <= 40; ++batch) {
    for (int record = 0; record < 10; ++record) rate.add(2.0 * batch + 1e-6 * record, done += 100);
    if (batch == 1) {
      EXPECT_NEAR(rate.rate(2.0), 500, 1);  // the whole run so far
    }
    for (double t : {2.0 * batch + 0.001, 2.0 * batch + 1.0, 2.0 * batch + 1.999})
      if (batch >= 10) lowest = std::min(lowest, rate.rate(t)), highest = std::max(highest, rate.rate(t));
  }
  // Between arrivals and just after them, the shown rate stays within 10% of the truth.
  EXPECT_GT(lowest, 450);
  EXPECT_LT(highest, 550);
  // A change of pace shows within the window: the same batches now every 4 s (250 tok/s).
  for (int batch = 1; batch <= 10; ++batch)
    for (int record = 0; record < 10; ++record) rate.add(80.0 + 4.0 * batch + 1e-6 * record, done += 100);
  EXPECT_NEAR(rate.rate(120.0), 250, 15);
}

TEST(CaptureProgress, SteadyEtaCountsDownAndMovesGradually) {
  SteadyEta eta;
  EXPECT_LT(eta.at(0), 0);
  eta.estimate(10, 100);
  EXPECT_DOUBLE_EQ(eta.at(15), 95);  // counts down between updates
  eta.estimate(20, 81);              // a new estimate moves it a third of the way
  EXPECT_DOUBLE_EQ(eta.at(20), 87);
  eta.estimate(21, 8);               // one off by more than a factor of two replaces it (e.g. the first estimate,
  EXPECT_DOUBLE_EQ(eta.at(21), 8);   // made from the first record of a batch)
  eta.estimate(22, 30);
  EXPECT_DOUBLE_EQ(eta.at(22), 30);
  EXPECT_DOUBLE_EQ(eta.at(1000), 0);
}

TEST(CaptureProgress, HumanSummary) {
  nlohmann::ordered_json summary = {{"model", "m"},          {"out", "out/demo"},   {"records", 500},
                                    {"records_this_run", 500}, {"tokens", 12345},   {"tokens_this_run", 12345},
                                    {"shards", 3},           {"bytes_written", 3u << 20}, {"dtype", "bf16"},
                                    {"layout", "per-record"}, {"sites", {{"a", 1}, {"b", 2}}},
                                    {"wall_seconds", 12.1},  {"tokens_per_second", 1020.2},
                                    {"accuracy", {{"graded", 40}, {"exact_match", 0.3}, {"contains", 0.5}}}};
  EXPECT_EQ(human_summary(summary),
            "actcap: captured 500 records, 12,345 tokens in 0:12 (1,020 tok/s)\n"
            "  store: out/demo (3 shards, 3.0 MiB written, 2 sites, bf16, per-record)\n"
            "  accuracy: 12/40 exact match (30.0%), 20/40 contain the answer (50.0%)\n");
  summary["records_this_run"] = 20;
  summary.erase("accuracy");
  EXPECT_NE(human_summary(summary).find("captured 20 records, 12,345 tokens in 0:12 (1,020 tok/s), 500 in the store"),
            std::string::npos);
}

TEST(CaptureProgress, TheBarMovesWhileABatchGenerates) {
  testing::internal::CaptureStderr();
  TerminalReporter reporter(false, false, false);
  CaptureObserver::Start start;
  start.records_total = 2;
  start.planned_tokens = 100;  // two prompts of 40 tokens + 10 new tokens each
  start.max_new_tokens = 10;
  reporter.capture_started(start);
  const std::vector<int32_t> prompt(40, 1);
  reporter.generation_started(0, prompt);
  reporter.generation_started(1, prompt);
  EXPECT_EQ(reporter.progress(), 0);
  for (int i = 0; i < 10; ++i) reporter.token(i % 2, 7);
  EXPECT_DOUBLE_EQ(reporter.progress(), 0.25);  // half the new tokens: a quarter of the batch's work
  for (int i = 0; i < 10; ++i) reporter.token(i % 2, 7);
  EXPECT_DOUBLE_EQ(reporter.progress(), 0.5);
  const std::vector<int32_t> ids(50, 1);
  CaptureObserver::Stored stored;
  stored.token_ids = &ids;
  stored.planned_tokens = 50;
  reporter.record_stored(stored);
  EXPECT_DOUBLE_EQ(reporter.progress(), 0.75);
  reporter.record_stored(stored);
  EXPECT_DOUBLE_EQ(reporter.progress(), 1.0);
  testing::internal::GetCapturedStderr();
}

TEST(CaptureProgress, QuietReporterPrintsNothing) {
  testing::internal::CaptureStderr();
  {
    TerminalReporter reporter(true, true, false);
    reporter.stage("m", "loading the model");
    CaptureObserver::Start start;
    start.records_total = 2;
    reporter.capture_started(start);
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace actcap
