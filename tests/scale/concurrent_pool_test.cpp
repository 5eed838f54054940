// Captures on several devices in one process call the global ThreadPool from several threads at once: each
// call must still cover its range exactly once (the workers serve one caller, the others run their chunks).
// Before, a second caller overwrote the first's job: ranges were skipped or the callers deadlocked, so the
// workload runs in a child process under alarm() and a hang fails the test instead of blocking it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace actcap {
namespace {

[[noreturn]] void callers_at_once() {
  ::alarm(60);
  ThreadPool pool(3);
  constexpr int kCallers = 4, kRounds = 2000, kItems = 257;
  std::vector<std::vector<std::atomic<int>>> hits(kCallers);
  for (auto& h : hits) h = std::vector<std::atomic<int>>(kItems);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      // Ranges and grains differ between callers, so a job taken for another's shows.
      for (int round = 0; round < kRounds; ++round)
        pool.parallel_for(0, kItems - 40 * c, 1 + c, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[size_t(c)][size_t(i)]++;
        });
    });
  for (auto& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c)
    for (int i = 0; i < kItems; ++i)
      if (hits[size_t(c)][size_t(i)].load() != (i < kItems - 40 * c ? kRounds : 0)) {
        std::fprintf(stderr, "caller %d item %d: %d\n", c, i, hits[size_t(c)][size_t(i)].load());
        std::_Exit(1);
      }
  std::_Exit(3);
}

TEST(ThreadPool, SeveralCallersAtOnceEachCoverTheirRange) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) callers_at_once();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status) << " (SIGALRM: the callers deadlocked)";
  EXPECT_EQ(WEXITSTATUS(status), 3) << "a caller's range was not covered exactly once";
}

}  // namespace
}  // namespace actcap
