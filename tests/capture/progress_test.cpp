#include "capture/progress.h"

#include <gtest/gtest.h>

#include "capture/reporter.h"

namespace actcap {
namespace {

TEST(CaptureProgress, RendersRecordsRateElapsedAndEta) {
  ProgressState state{25, 100, 0.25, 500, 30, 10};
  std::string line = render_progress(state, 80);
  EXPECT_EQ(line, "[#######                     ] 25/100 records  500 tok/s  0:10 elapsed  ETA 0:30");
  EXPECT_LE(line.size(), 80u);
}

TEST(CaptureProgress, UnknownTotalAndNarrowTerminals) {
  EXPECT_EQ(render_progress({7, 0, 0, 50, -1, 2.0}, 80), " 7 records  50 tok/s  0:02 elapsed");
  std::string narrow = render_progress({1, 3, 0.3, 10, 2, 1.0}, 20);
  EXPECT_LE(narrow.size(), 20u);
  EXPECT_EQ(format_duration(3725.0), "1:02:05");
}

TEST(CaptureProgress, SmoothedRateDampsBatchJumps) {
  // 100 tokens per second on average, arriving as a slow first batch and then alternating 1 s / 3 s batches.
  SmoothedRate rate(8.0);
  rate.add(0, 0);
  rate.add(4, 200);  // the first batch: 50 tok/s (warm-up)
  EXPECT_DOUBLE_EQ(rate.rate(), 50);
  double t = 4, done = 200;
  double lowest = 1e9, highest = 0;
  for (int i = 0; i < 40; ++i) {
    double dt = i % 2 ? 3 : 1;
    t += dt;
    done += 200;  // the same work in 1 s (200 tok/s) or 3 s (67 tok/s)
    rate.add(t, done);
    if (i >= 20) lowest = std::min(lowest, rate.rate()), highest = std::max(highest, rate.rate());
  }
  // The instantaneous rate swings 3x; the smoothed one stays within 35% around the true 100 tok/s.
  EXPECT_GT(lowest, 65);
  EXPECT_LT(highest, 135);
}

TEST(CaptureProgress, SteadyEtaCountsDownAndMovesGradually) {
  SteadyEta eta;
  EXPECT_LT(eta.at(0), 0);
  eta.estimate(10, 100);
  EXPECT_DOUBLE_EQ(eta.at(15), 95);  // counts down between updates
  eta.estimate(20, 10);              // a sudden new estimate moves it a third of the way
  EXPECT_DOUBLE_EQ(eta.at(20), 90 - 80.0 / 3);
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
