// Scale: writing time linear in the number of records, memory that does not grow with the shard size.
// (bench/store_scale_bench.sh measures the CLI at 10k to 1M prompts; these are the in-process guards.)
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "capture/verify.h"
#include "store_test_util.h"

namespace actcap {
namespace {

using namespace store_test;

// CPU seconds this thread spent (user + system): unlike wall time, not inflated by other processes.
double thread_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + 1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// CPU seconds to write n one-row records into a single shard.
double seconds_for(const std::string& dir, StoreLayout layout, int64_t n) {
  StoreOptions options = options_for(dir, layout, DType::F32, 1ull << 40);
  const double start = thread_cpu_seconds();
  StoreWriter writer(options, test_manifest());
  std::vector<std::pair<std::string, Tensor>> sites;
  sites.emplace_back(kSites[0], Tensor({1, 8}));
  sites.emplace_back(kSites[1], Tensor({1, 2, 3}));
  for (int64_t r = 0; r < n; ++r) {
    RecordInfo info;
    info.record = r;
    info.id = std::to_string(r);
    info.token_ids = {int32_t(r % 1000), 7};
    info.n_prompt = 2;
    info.positions = {1};
    writer.add_record(info, sites);
  }
  writer.finish();
  return thread_cpu_seconds() - start;
}

TEST(StoreScale, WritingTimeIsLinearInRecords) {
  for (StoreLayout layout : {StoreLayout::PerRecord, StoreLayout::TokenStream}) {
    TempDir tmp;
    const double small = seconds_for(tmp.sub("small"), layout, 20000);
    const double large = seconds_for(tmp.sub("large"), layout, 80000);
    // A complexity guard, not a speed test: 4x the records cost about 4x the CPU time when linear, 16x when
    // quadratic (as the shard header was). bench/store_scale_bench.sh measures the speed.
    EXPECT_LT(large / small, 8.0) << store_layout_name(layout) << ": " << small << " s, then " << large << " s";
    const StoreCheck check = verify_store(tmp.sub("large"));
    EXPECT_TRUE(check.ok) << check.problem;
  }
}

int64_t resident_kib() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// Peak memory growth (KiB) of a child process that writes a ~96 MiB shard (1500 records of 64 KiB).
int64_t peak_growth_kib(const std::string& dir, StoreLayout layout) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t child = fork();
  if (child == 0) {
    const int64_t before = resident_kib();
    {
      StoreWriter writer(options_for(dir, layout, DType::F32, 1ull << 30), test_manifest());
      std::vector<std::pair<std::string, Tensor>> sites;
      sites.emplace_back(kSites[0], Tensor({32, 256}));
      sites.emplace_back(kSites[1], Tensor({32, 2, 128}));
      for (int64_t r = 0; r < 1500; ++r) {
        RecordInfo info;
        info.record = r;
        info.id = std::to_string(r);
        for (int i = 0; i < 32; ++i) info.token_ids.push_back(i), info.positions.push_back(i);
        info.n_prompt = 32;
        writer.add_record(info, sites);
      }
      writer.finish();
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const int64_t growth = int64_t(usage.ru_maxrss) - before;
    (void)!write(fds[1], &growth, sizeof growth);
    _exit(0);
  }
  close(fds[1]);
  int64_t growth = -1;
  if (read(fds[0], &growth, sizeof growth) != sizeof growth) growth = -1;
  close(fds[0]);
  waitpid(child, nullptr, 0);
  return growth;
}

TEST(StoreScale, MemoryDoesNotGrowWithTheShard) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's quarantine keeps freed memory resident: peak RSS says nothing here";
#endif
  for (StoreLayout layout : {StoreLayout::PerRecord, StoreLayout::TokenStream}) {
    TempDir tmp;
    const int64_t growth = peak_growth_kib(tmp.sub("store"), layout);
    ASSERT_GE(growth, 0);
    // The shard is ~96 MiB; what stays in memory is a record and a few buffers.
    EXPECT_LT(growth, 24 * 1024) << store_layout_name(layout) << ": peak grew by " << growth << " KiB";
    const StoreCheck check = verify_store(tmp.sub("store"));
    EXPECT_TRUE(check.ok) << check.problem;
    EXPECT_GT(check.bytes, 90u << 20);
  }
}

}  // namespace
}  // namespace actcap
