// capture --shard K/N: the partition rule (contiguous, covering, balanced by tokens, a function of the weights
// and N only), the K/N option and the job identity that tells parts of one job from another's.
#include <gtest/gtest.h>

#include <numeric>

#include "capture/partition.h"
#include "capture/store_format.h"
#include "core/error.h"

namespace actcap {
namespace {

void expect_cover(const std::vector<RecordRange>& ranges, int64_t n) {
  int64_t next = 0;
  for (const auto& r : ranges) {
    EXPECT_EQ(r.begin, next);
    EXPECT_LE(r.begin, r.end);
    next = r.end;
  }
  EXPECT_EQ(next, n);
}

TEST(Partition, EqualWeightsSplitEvenly) {
  const auto ranges = partition_records(std::vector<int64_t>(10, 5), 3);
  ASSERT_EQ(ranges.size(), 3u);
  expect_cover(ranges, 10);
  // Midpoints at (i + 0.5) / 10 of the total against thirds: parts [0, 3), [3, 7), [7, 10).
  EXPECT_EQ(ranges[0].end, 3);
  EXPECT_EQ(ranges[1].end, 7);
}

TEST(Partition, BalancesTokensNotRecords) {
  // One long record, then many short ones: the long one is a part of its own.
  std::vector<int64_t> weights = {1000};
  weights.resize(101, 10);
  const auto ranges = partition_records(weights, 2);
  expect_cover(ranges, 101);
  EXPECT_EQ(ranges[0].end, 1);
  // Each part's tokens lie within one record's weight of the ideal W / N.
  std::vector<int64_t> w(100, 0);
  for (int i = 0; i < 100; ++i) w[size_t(i)] = 1 + (i * 37) % 50;
  const int64_t total = std::accumulate(w.begin(), w.end(), int64_t(0));
  for (int64_t n : {2, 3, 7}) {
    const auto parts = partition_records(w, n);
    expect_cover(parts, 100);
    for (const auto& r : parts) {
      const int64_t tokens = std::accumulate(w.begin() + r.begin, w.begin() + r.end, int64_t(0));
      EXPECT_LE(std::abs(tokens - total / n), 50) << "N=" << n;
    }
  }
}

TEST(Partition, MorePartsThanRecordsLeavesEmptyParts) {
  const auto ranges = partition_records({3, 3}, 5);
  expect_cover(ranges, 2);
  int64_t non_empty = 0;
  for (const auto& r : ranges) non_empty += r.size() > 0;
  EXPECT_EQ(non_empty, 2);
  expect_cover(partition_records({}, 3), 0);
  expect_cover(partition_records({0, 0, 0}, 2), 3);  // no tokens: by count
}

TEST(Partition, OnePartIsEverything) {
  const auto ranges = partition_records({5, 1, 9}, 1);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].begin, 0);
  EXPECT_EQ(ranges[0].end, 3);
}

TEST(ShardSpec, ParsesAndRefuses) {
  const ShardSpec spec = ShardSpec::parse("2/5");
  EXPECT_EQ(spec.index, 2);
  EXPECT_EQ(spec.count, 5);
  EXPECT_EQ(spec.str(), "2/5");
  for (const char* bad : {"5/5", "-1/3", "1", "1/0", "a/3", "1/3x", "/3", ""})
    EXPECT_THROW(ShardSpec::parse(bad), Error) << bad;
}

TEST(JobIdentity, IgnoresWhatPartsMayDifferIn) {
  nlohmann::json a = {{"model", {{"weights_sha256", "w"}}},
                      {"inputs", {{{"path", "/p.txt"}, {"sha256", "i"}}}},
                      {"compute", {{"device", "cuda:0"}, {"dtype", "BF16"}}},
                      {"command_line", "actcap capture --shard 0/2"},
                      {"tool", {{"version", "1"}}}};
  nlohmann::json b = a;
  b["command_line"] = "actcap capture --shard 1/2";
  b["tool"] = {{"version", "2"}};
  b["compute"]["device"] = "cuda:3";
  b[std::string(store::kPartKey)] = {{"index", 1}};
  EXPECT_EQ(job_identity(a), job_identity(b));
  nlohmann::json other_inputs = a;
  other_inputs["inputs"][0]["sha256"] = "j";
  EXPECT_NE(job_identity(a), job_identity(other_inputs));
  nlohmann::json on_cpu = a;
  on_cpu["compute"]["device"] = "cpu";
  EXPECT_NE(job_identity(a), job_identity(on_cpu));
}

TEST(PartInfo, RoundTripsAndRefusesInconsistentRanges) {
  store::PartInfo part{1, 3, 4, 9, 12, "abc"};
  const nlohmann::json provenance = {{std::string(store::kPartKey), part.to_json()}};
  const auto read = store::PartInfo::of(provenance, "m.json");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->first_record, 4);
  EXPECT_EQ(read->end_record, 9);
  EXPECT_FALSE(store::PartInfo::of(nlohmann::json::object(), "m.json"));
  nlohmann::json bad = provenance;
  bad["part"]["records"] = {9, 4};
  EXPECT_THROW(store::PartInfo::of(bad, "m.json"), Error);
  bad = provenance;
  bad["part"]["index"] = 3;
  EXPECT_THROW(store::PartInfo::of(bad, "m.json"), Error);
}

}  // namespace
}  // namespace actcap
