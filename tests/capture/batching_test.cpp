#include "capture/batching.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace actcap {
namespace {

using Ranges = std::vector<std::pair<size_t, size_t>>;

TEST(CaptureBatching, FillsBatchesUpToTheBudgetInOrder) {
  EXPECT_EQ(plan_batches({3, 3, 3, 3}, 6), (Ranges{{0, 2}, {2, 4}}));
  EXPECT_EQ(plan_batches({3, 3, 3, 3}, 7), (Ranges{{0, 2}, {2, 4}}));
  EXPECT_EQ(plan_batches({3, 3, 3, 3}, 12), (Ranges{{0, 4}}));
  EXPECT_EQ(plan_batches({1, 5, 1, 1}, 6), (Ranges{{0, 2}, {2, 4}}));
  EXPECT_TRUE(plan_batches({}, 6).empty());
}

TEST(CaptureBatching, RecordLargerThanTheBudgetGoesAlone) {
  EXPECT_EQ(plan_batches({2, 10, 2}, 4), (Ranges{{0, 1}, {1, 2}, {2, 3}}));
  EXPECT_EQ(plan_batches({10}, 4), (Ranges{{0, 1}}));
}

TEST(CaptureBatching, StreamingBatcherReportsWhereBatchesStart) {
  TokenBudgetBatcher batcher(5);
  EXPECT_FALSE(batcher.add(2));
  EXPECT_FALSE(batcher.add(3));
  EXPECT_EQ(batcher.batch_tokens(), 5);
  EXPECT_TRUE(batcher.add(1));
  EXPECT_EQ(batcher.batch_records(), 1);
  EXPECT_EQ(batcher.batch_tokens(), 1);
  EXPECT_THROW(TokenBudgetBatcher(0), Error);
}

}  // namespace
}  // namespace actcap
