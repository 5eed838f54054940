#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>
#include <random>

#include "core/atomic_file.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/thread_pool.h"
#include "test_util.h"

using namespace actcap;

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is exactly halfway between two bf16 values: ties to the even one (1.0).
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  // 1 + 3*2^-8 is halfway too: ties up to the even 1 + 2^-6.
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DType, F16RoundTripsEveryValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST(DType, F16RoundsLikeIeee) {
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);       // halfway to the next: rounds to inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0);  // half the smallest subnormal: ties to even (zero)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 1);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  // Compare with the hardware-independent reference: nearest representable fp16 by exhaustive search.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-70000.0f, 70000.0f);
  for (int i = 0; i < 20000; ++i) {
    float x = u(rng) * std::ldexp(1.0f, -(i % 30));
    uint16_t h = f32_to_f16(x);
    float y = f16_to_f32(h);
    float lo = f16_to_f32(uint16_t(h - 1)), hi = f16_to_f32(uint16_t(h + 1));
    if (std::isinf(y) || std::isnan(lo) || std::isnan(hi)) continue;
    ASSERT_LE(std::fabs(double(y) - x), std::fabs(double(lo) - x) + 0.0) << x;
    ASSERT_LE(std::fabs(double(y) - x), std::fabs(double(hi) - x) + 0.0) << x;
  }
}

// Tensors read from a file need not be aligned to their element size: conversion reads them byte-wise
// (misaligned typed loads are undefined behaviour, caught by the sanitizer build).
TEST(DType, ConvertsMisalignedBuffers) {
  alignas(8) uint8_t buffer[1 + 3 * 8] = {};
  const uint16_t bf16[3] = {0x3f80, 0xc000, 0x4040};  // 1, -2, 3
  std::memcpy(buffer + 1, bf16, sizeof bf16);
  float out[3];
  convert_to_f32(buffer + 1, DType::BF16, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 3.0f);
  const double f64[2] = {0.5, -4.0};
  std::memcpy(buffer + 1, f64, sizeof f64);
  convert_to_f32(buffer + 1, DType::F64, out, 2);
  EXPECT_EQ(out[1], -4.0f);
  convert_from_f32(out, DType::F16, buffer + 1, 2);
  uint16_t half[2];
  std::memcpy(half, buffer + 1, sizeof half);
  EXPECT_EQ(f16_to_f32(half[0]), 0.5f);
}

TEST(ThreadPool, ChunksCoverRangeOnceForAnyThreadCount) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    std::vector<int> hits(1000, 0);
    pool.parallel_for(0, 1000, 7, [&](int64_t b, int64_t e) {
      EXPECT_EQ(b % 7, 0);
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (int h : hits) ASSERT_EQ(h, 1);
  }
}

// Balanced jobs hand out runs of whole chunks, long ones first: each item once, every run starting on a chunk
// boundary and ending on one (or at the end), one run on one thread, fewer runs than chunks on several.
TEST(ThreadPool, BalancedRunsCoverRangeOnceInWholeChunks) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    std::vector<int> hits(1000, 0);
    std::atomic<int> runs{0};
    pool.parallel_for_balanced(0, 1000, 7, [&](int64_t b, int64_t e) {
      EXPECT_EQ(b % 7, 0);
      EXPECT_TRUE(e % 7 == 0 || e == 1000) << e;
      for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      runs++;
    });
    for (int h : hits) ASSERT_EQ(h, 1);
    if (threads == 1)
      EXPECT_EQ(runs.load(), 1);
    else
      EXPECT_LT(runs.load(), 1000 / 7) << threads << " threads";
  }
}

// Jobs follow each other faster than an idle worker notices (the hand-over a decode step does hundreds of times),
// from two callers at once, plain and balanced: every chunk of every job still runs exactly once, for its own job.
TEST(ThreadPool, BackToBackJobsFromTwoCallersRunEachChunkOnce) {
  ThreadPool pool(3);
  auto jobs = [&](int salt) {
    for (int job = 0; job < 5000; ++job) {
      const int64_t n = 1 + (job * 7 + salt) % 40;
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      const auto count = [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      };
      if (job % 2)  // a claim of several chunks must not reach into the next job either
        pool.parallel_for_balanced(0, n, 1 + job % 3, count);
      else
        pool.parallel_for(0, n, 1 + job % 3, count);
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "job " << job;
    }
  };
  std::thread other(jobs, 1);
  jobs(0);
  other.join();
}

TEST(ThreadPool, PropagatesExceptions) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(0, 100, 1, [](int64_t b, int64_t) {
    if (b == 42) throw Error("boom");
  }), Error);
  EXPECT_THROW(pool.parallel_for_balanced(0, 100, 1, [](int64_t b, int64_t e) {
    if (b <= 42 && 42 < e) throw Error("boom");
  }), Error);
}

TEST(ThreadPool, AbsurdThreadCountsAreRejected) {
  // --threads 100000 used to start 32k threads, exhaust the system's limit and deadlock while unwinding.
  test::expect_one_line_error([] { ThreadPool pool(100000); }, {"thread count 100000", "at most 1024"});
  test::expect_one_line_error([] { ThreadPool pool(-2); }, {"thread count -2"});
  test::expect_one_line_error([] { ThreadPool::set_global_threads(ThreadPool::kMaxThreads + 1); }, {"thread count"});
  EXPECT_EQ(ThreadPool(ThreadPool::kMaxThreads).size(), ThreadPool::kMaxThreads);
}

// When the system refuses a thread, the threads already started are stopped and joined (no std::terminate, no
// deadlock) and the error says so. The refusal is provoked with an address-space limit in a child process,
// which AddressSanitizer's reserved shadow memory does not allow.
[[noreturn]] void start_threads_under_an_address_space_limit() {
  ::alarm(60);  // a deadlock ends as SIGALRM, not as exit code 3
  long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t limit = rlim_t(pages) * rlim_t(::sysconf(_SC_PAGESIZE)) + (rlim_t(64) << 20);
  const rlimit rl{limit, limit};
  ::setrlimit(RLIMIT_AS, &rl);
  try {
    ThreadPool pool(ThreadPool::kMaxThreads);  // 8 MB of stack each: far over the limit
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::_Exit(dynamic_cast<const Error*>(&e) ? 3 : 2);
  }
  std::fprintf(stderr, "all threads started\n");
  std::_Exit(1);
}

TEST(ThreadPool, FailedThreadStartUnwindsCleanly) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "RLIMIT_AS cannot be used under AddressSanitizer";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(start_threads_under_an_address_space_limit(), ::testing::ExitedWithCode(3),
              "cannot start thread .* of 1024");
#endif
}

TEST(Sha256, KnownVector) {
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AtomicFile, NoFileUnlessCommitted) {
  auto dir = std::filesystem::temp_directory_path() / "actcap_atomic_test";
  std::filesystem::create_directories(dir);
  std::string path = (dir / "x.bin").string();
  std::filesystem::remove(path);
  {
    AtomicFile f(path);
    f.write("partial");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  write_file_atomic(path, "whole");
  EXPECT_EQ(read_file(path), "whole");
  std::filesystem::remove_all(dir);
}

TEST(AtomicFile, UnwritableFolderIsAClearError) {
  try {
    AtomicFile f("/nonexistent-dir/x.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.bin"), std::string::npos);
  }
}
