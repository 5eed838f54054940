// The store lock: one writer at a time, and no reader while a writer is inside (in-process; the CLI test
// tests/scripts/test_store_cli.sh runs two real captures).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/store_lock.h"
#include "capture/store_reader.h"
#include "capture/verify.h"
#include "core/error.h"
#include "store_test_util.h"
#include "../test_util.h"

namespace actcap {
namespace {

using namespace store_test;

using test::error_of;

StoreOptions resuming(const std::string& dir) {
  StoreOptions o = options_for(dir);
  o.resume = true;
  return o;
}

TEST(StoreLock, OneWriterAtATimeAndNoReaderMeanwhile) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  write_store(options_for(dir), 4);
  {
    StoreWriter first(resuming(dir), test_manifest());
    const std::string second = error_of([&] { StoreWriter w(resuming(dir), test_manifest()); });
    EXPECT_NE(second.find(dir + ": the store is in use by a capture (pid " + std::to_string(::getpid()) + ")"),
              std::string::npos)
        << second;
    EXPECT_EQ(second.find('\n'), std::string::npos);
    const std::string reader = error_of([&] { StoreReader r(dir); });
    EXPECT_NE(reader.find(dir + ": the store is being written by a capture"), std::string::npos) << reader;
    const StoreCheck check = verify_store(dir);
    EXPECT_FALSE(check.ok);
    EXPECT_NE(check.problem.find("being written"), std::string::npos) << check.problem;
    for (int64_t r = 4; r < 6; ++r) first.add_record(info_of(r), sites_of(r));
    first.finish();
  }
  // The first writer completed alone.
  const StoreCheck check = verify_store(dir);
  EXPECT_TRUE(check.ok) << check.problem;
  EXPECT_EQ(check.records, 6);
}

TEST(StoreLock, ReadersShareAndKeepWritersOut) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  write_store(options_for(dir), 3);
  StoreReader a(dir), b(dir);  // readers share
  const std::string writer = error_of([&] { StoreWriter w(resuming(dir), test_manifest()); });
  EXPECT_NE(writer.find(dir + ": the store is in use by another process (a reader"), std::string::npos) << writer;
}

TEST(StoreLock, ReleasedWhenTheWriterIsKilled) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    StoreWriter w(options_for(dir), test_manifest());
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  const std::string held = error_of([&] { StoreWriter w(resuming(dir), test_manifest()); });
  EXPECT_NE(held.find("in use by a capture (pid " + std::to_string(child) + ")"), std::string::npos) << held;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  // The kernel let go with the process: the store is resumable at once.
  StoreWriter w(resuming(dir), test_manifest());
  for (int64_t r = 0; r < 3; ++r) w.add_record(info_of(r), sites_of(r));
  w.finish();
}

}  // namespace
}  // namespace actcap
