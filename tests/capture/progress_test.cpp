#include "capture/progress.h"

#include <gtest/gtest.h>

namespace actcap {
namespace {

TEST(CaptureProgress, RendersRecordsRateAndEta) {
  ProgressState state{25, 100, 5000, 10.0};
  std::string line = render_progress(state, 80);
  EXPECT_EQ(line, "[#######                       ] 25/100 records  500 tok/s  ETA 0:30");
  EXPECT_LE(line.size(), 80u);
}

TEST(CaptureProgress, UnknownTotalAndNarrowTerminals) {
  EXPECT_EQ(render_progress({7, 0, 100, 2.0}, 80), " 7 records  50 tok/s");
  std::string narrow = render_progress({1, 3, 10, 1.0}, 20);
  EXPECT_LE(narrow.size(), 20u);
  EXPECT_EQ(render_progress({3, 3, 30, 3725.0}, 80).find("done in 1:02:05") != std::string::npos, true);
}

TEST(CaptureProgress, DrawsNothingWhenDisabled) {
  ProgressBar bar(false, 10);
  EXPECT_FALSE(bar.active());
  testing::internal::CaptureStderr();
  bar.update(5, 50);
  bar.finish();
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace actcap
