// The host side of the capture pipeline: the bounded pool (back-pressure) and the ordered delivery thread.
// Blocking is observed through the pool's waiting() count and flags set by the threads, never through timing.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <random>
#include <thread>
#include <vector>

#include "core/bounded_pool.h"
#include "core/ordered_delivery.h"
#include "core/error.h"

namespace actcap {
namespace {

void wait_until_blocked(const BoundedPool& pool, size_t waiters) {
  while (pool.waiting() < waiters) std::this_thread::yield();
}

TEST(BoundedPool, RegionsAreAlignedInsideAndDisjoint) {
  BoundedPool pool(4096, 64);
  std::mt19937 rng(7);
  std::vector<BoundedPool::Region> live;
  int placed = 0;
  for (int step = 0; step < 5000; ++step) {
    if (!live.empty() && (rng() % 3 == 0 || live.size() > 12)) {
      const size_t victim = rng() % live.size();  // out of order releases too
      pool.release(live[victim]);
      live.erase(live.begin() + long(victim));
      continue;
    }
    const size_t bytes = 1 + rng() % 1500;
    const std::optional<BoundedPool::Region> region = pool.try_acquire(bytes);
    if (!region) continue;
    ++placed;
    EXPECT_EQ(region->bytes, bytes);
    EXPECT_EQ(region->offset % 64, 0u);
    EXPECT_LE(region->offset + bytes, 4096u);
    for (const BoundedPool::Region& other : live)
      EXPECT_TRUE(region->offset + bytes <= other.offset || other.offset + other.bytes <= region->offset)
          << "[" << region->offset << ", +" << bytes << ") overlaps [" << other.offset << ", +" << other.bytes << ")";
    live.push_back(*region);
  }
  EXPECT_GT(placed, 1000);
  for (const BoundedPool::Region& region : live) pool.release(region);
  EXPECT_EQ(pool.bytes_in_use(), 0u);
  EXPECT_TRUE(pool.try_acquire(4096).has_value());
}

TEST(BoundedPool, WrapsAroundToTheStart) {
  BoundedPool pool(1000, 1);
  const BoundedPool::Region a = pool.acquire(400), b = pool.acquire(400);
  EXPECT_EQ(a.offset, 0u);
  EXPECT_EQ(b.offset, 400u);
  pool.release(a);
  const BoundedPool::Region c = pool.acquire(300);  // 200 left at the end: goes to the start
  EXPECT_EQ(c.offset, 0u);
  EXPECT_FALSE(pool.try_acquire(200).has_value());  // only [300, 400) is free
  pool.release(b);
  const BoundedPool::Region d = pool.acquire(700);
  EXPECT_EQ(d.offset, 300u);
  pool.release(c);
  pool.release(d);
  EXPECT_EQ(pool.bytes_in_use(), 0u);
}

TEST(BoundedPool, SpaceReturnsOnceOlderRegionsAreReleased) {
  BoundedPool pool(300, 1);
  const BoundedPool::Region a = pool.acquire(100), b = pool.acquire(100), c = pool.acquire(100);
  pool.release(b);
  EXPECT_FALSE(pool.try_acquire(100).has_value());
  pool.release(a);
  const std::optional<BoundedPool::Region> both = pool.try_acquire(200);
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->offset, 0u);
  pool.release(c);
  pool.release(*both);
}

TEST(BoundedPool, AcquireBlocksUntilARelease) {
  BoundedPool pool(1024, 256);
  const BoundedPool::Region all = pool.acquire(1024);
  EXPECT_FALSE(pool.try_acquire(1).has_value());
  std::atomic<bool> acquired{false};
  std::thread waiter([&] {
    const BoundedPool::Region region = pool.acquire(512);
    acquired = true;
    pool.release(region);
  });
  wait_until_blocked(pool, 1);
  EXPECT_FALSE(acquired.load());  // it is inside acquire, waiting
  pool.release(all);
  waiter.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_EQ(pool.waiting(), 0u);
  EXPECT_EQ(pool.bytes_in_use(), 0u);
}

TEST(BoundedPool, RejectsRequestsItCanNeverHold) {
  BoundedPool pool(1024);
  EXPECT_THROW(pool.acquire(1025), Error);
  EXPECT_THROW(pool.acquire(0), Error);
  EXPECT_THROW(BoundedPool(1024, 3), Error);
}

TEST(OrderedDelivery, RunsJobsInPostOrderOnItsOwnThread) {
  OrderedDelivery delivery;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::atomic<int> running{0}, overlapping{0};
  for (int i = 0; i < 2000; ++i)
    delivery.post([&, i] {
      if (running.fetch_add(1) != 0) ++overlapping;
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
      running.fetch_sub(1);
    });
  delivery.wait();
  ASSERT_EQ(order.size(), 2000u);
  for (int i = 0; i < 2000; ++i) EXPECT_EQ(order[size_t(i)], i);
  EXPECT_EQ(overlapping.load(), 0);
  for (const std::thread::id& id : threads) EXPECT_NE(id, std::this_thread::get_id());
}

TEST(OrderedDelivery, KeepsTheFirstExceptionAndSkipsLaterWorkUntilWait) {
  OrderedDelivery delivery;
  std::vector<int> worked;
  int cleaned = 0;
  auto cleanup = [&] { ++cleaned; };
  delivery.post([&] { worked.push_back(0); }, cleanup);
  delivery.post([] { throw Error("first failure"); }, cleanup);
  delivery.post([] { throw Error("second failure"); }, cleanup);
  delivery.post([&] { worked.push_back(3); }, cleanup);
  try {
    delivery.wait();
    ADD_FAILURE() << "wait() did not rethrow";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "first failure");
  }
  EXPECT_EQ(worked, std::vector<int>{0});
  EXPECT_EQ(cleaned, 4);  // cleanups run even for skipped or failed work
  delivery.post([&] { worked.push_back(4); }, cleanup);
  EXPECT_NO_THROW(delivery.wait());  // the error was reported once
  EXPECT_EQ(worked, (std::vector<int>{0, 4}));
  EXPECT_EQ(cleaned, 5);
}

// A producer bounded by a pool whose regions come back only after delivery: a stalled consumer stops it.
TEST(OrderedDelivery, StalledDeliveryBlocksTheProducerThroughThePool) {
  BoundedPool pool(2 * 256, 256);
  OrderedDelivery delivery;
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<int> produced{0}, delivered{0};
  std::thread producer([&] {
    for (int i = 0; i < 5; ++i) {
      const BoundedPool::Region region = pool.acquire(256);
      ++produced;
      delivery.post(
          [&, i] {
            if (i == 0) opened.wait();
            ++delivered;
          },
          [&, region] { pool.release(region); });
    }
  });
  wait_until_blocked(pool, 1);  // the third acquire waits: two regions are held by undelivered jobs
  EXPECT_EQ(produced.load(), 2);
  EXPECT_EQ(delivered.load(), 0);
  gate.set_value();
  producer.join();
  delivery.wait();
  EXPECT_EQ(produced.load(), 5);
  EXPECT_EQ(delivered.load(), 5);
  EXPECT_EQ(pool.bytes_in_use(), 0u);
}

TEST(OrderedDelivery, ShutdownRunsWhatIsQueuedAndDropsAPendingError) {
  std::atomic<int> worked{0}, cleaned{0};
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::thread opener;
  {
    OrderedDelivery delivery;
    delivery.post([&] {
      opened.wait();
      ++worked;
    });
    for (int i = 0; i < 10; ++i) delivery.post([&] { ++worked; }, [&] { ++cleaned; });
    opener = std::thread([&] { gate.set_value(); });
  }  // the destructor waits for all eleven
  opener.join();
  EXPECT_EQ(worked.load(), 11);
  EXPECT_EQ(cleaned.load(), 10);

  cleaned = 0;
  {
    OrderedDelivery delivery;
    delivery.post([] { throw Error("never collected"); });
    delivery.post([&] { ++worked; }, [&] { ++cleaned; });
  }  // no wait(): the destructor must neither throw nor skip the cleanup
  EXPECT_EQ(worked.load(), 11);
  EXPECT_EQ(cleaned.load(), 1);
}

}  // namespace
}  // namespace actcap
