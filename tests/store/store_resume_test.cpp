// Nothing lost: a store interrupted at any moment resumes into exactly the store an uninterrupted run makes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "capture/store_format.h"
#include "capture/store_reader.h"
#include "capture/verify.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "store_test_util.h"

namespace actcap {
namespace {

using namespace store_test;
using json = nlohmann::json;

constexpr int64_t kRecords = 24;

StoreOptions resume_options(const std::string& dir, StoreLayout layout) {
  StoreOptions o = options_for(dir, layout, DType::BF16, 250);
  o.resume = true;
  return o;
}

// The store an uninterrupted run makes.
std::map<std::string, std::string> reference(const TempDir& tmp, StoreLayout layout) {
  const std::string dir = tmp.sub("reference");
  write_store(options_for(dir, layout, DType::BF16, 250), kRecords);
  return folder_contents(dir);
}

// Resumes `dir` (as a later run with another command line) and checks it becomes `expected` byte for byte.
// A store that never got its first manifest is started afresh, so its manifest names the resuming command line.
void resume_and_compare(const std::string& dir, StoreLayout layout, std::map<std::string, std::string> expected) {
  json manifest = test_manifest();
  manifest["command_line"] = "actcap capture --out x --resume";
  if (!fs::exists(dir + "/manifest.json")) {
    store::Manifest started_here = store::Manifest::parse(expected.at("manifest.json"), "manifest.json");
    started_here.provenance["command_line"] = manifest["command_line"];
    expected["manifest.json"] = started_here.to_text();
  }
  {
    StoreWriter writer(resume_options(dir, layout), manifest);
    const auto completed = writer.completed_records();
    // Completed records are a prefix, each stored whole.
    for (int64_t r = 0; r < int64_t(completed.size()); ++r) EXPECT_TRUE(completed.count(r)) << r;
    for (int64_t r = 0; r < kRecords; ++r)
      if (!completed.count(r)) writer.add_record(info_of(r), sites_of(r));
    writer.finish();
    EXPECT_EQ(writer.summary().records, kRecords);
  }  // the writer lets go of the store lock: verify reads it
  const auto got = folder_contents(dir);
  std::vector<std::string> names, expected_names;
  for (const auto& [name, _] : got) names.push_back(name);
  for (const auto& [name, _] : expected) expected_names.push_back(name);
  ASSERT_EQ(names, expected_names);
  for (const auto& [name, contents] : expected) EXPECT_TRUE(got.at(name) == contents) << name << " differs";
  const StoreCheck check = verify_store(dir);
  EXPECT_TRUE(check.ok) << check.problem;
}

// An abandoned writer (no finish()) leaves what a crash after its last shard leaves.
void write_partial(const std::string& dir, StoreLayout layout, int64_t n) {
  StoreWriter writer(options_for(dir, layout, DType::BF16, 250), test_manifest());
  for (int64_t r = 0; r < n; ++r) writer.add_record(info_of(r), sites_of(r));
}

void append(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::app | std::ios::binary) << text; }

class StoreResume : public ::testing::TestWithParam<StoreLayout> {};

TEST_P(StoreResume, FromEveryCrashState) {
  const StoreLayout layout = GetParam();
  TempDir tmp;
  const auto expected = reference(tmp, layout);
  const std::string ref = tmp.sub("reference");
  int variant = 0;
  auto fresh = [&](int64_t n) {
    const std::string dir = tmp.sub("crash-" + std::to_string(variant++));
    write_partial(dir, layout, n);
    return dir;
  };
  {  // Killed while the first manifest was being written: only a temporary file.
    const std::string dir = tmp.sub("crash-" + std::to_string(variant++));
    fs::create_directories(dir);
    write_file_atomic(dir + "/unrelated.txt", "kept");
    append(dir + "/manifest.json.tmp-12345", "{\"form");
    StoreWriter writer(resume_options(dir, layout), test_manifest());
    EXPECT_TRUE(writer.completed_records().empty());
    EXPECT_FALSE(fs::exists(dir + "/manifest.json.tmp-12345"));
    EXPECT_TRUE(fs::exists(dir + "/unrelated.txt"));
  }
  // Killed between shards, with buffered records lost.
  resume_and_compare(fresh(13), layout, expected);
  // Killed before any shard.
  resume_and_compare(fresh(1), layout, expected);
  {  // Killed while writing a shard: its temporary file is left.
    const std::string dir = fresh(13);
    append(dir + "/shard-00009.safetensors.tmp-999", "partial shard");
    resume_and_compare(dir, layout, expected);
  }
  {  // Killed after the shard's rename, before its index lines: a shard nobody indexes.
    const std::string dir = fresh(13);
    const auto written = manifest_shard_count(dir);
    fs::copy_file(ref + "/" + store::shard_file_name(written), dir + "/" + store::shard_file_name(written));
    resume_and_compare(dir, layout, expected);
  }
  {  // Killed halfway through the index lines: a torn last line (and records.jsonl ahead of metadata.jsonl).
    const std::string dir = fresh(13);
    const auto ref_records = folder_contents(ref).at("records.jsonl");
    const auto have = fs::file_size(dir + "/records.jsonl");
    append(dir + "/records.jsonl", ref_records.substr(have, 100));
    append(dir + "/metadata.jsonl", "{\"record\": 9, \"id\"");
    resume_and_compare(dir, layout, expected);
  }
  {  // Killed after the index lines, before the manifest listed the shard: the shard is kept.
    const std::string dir = fresh(13);
    const int64_t written = manifest_shard_count(dir);
    const std::string next = store::shard_file_name(written);
    fs::copy_file(ref + "/" + next, dir + "/" + next);
    const size_t count = std::stoul(SafetensorsFile(ref + "/" + next).metadata().at("records"));
    const auto ref_files = folder_contents(ref);
    for (const char* log : {"records.jsonl", "metadata.jsonl"}) {
      const std::string& all = ref_files.at(log);
      size_t begin = fs::file_size(dir + "/" + log), end = begin;
      for (size_t i = 0; i < count; ++i) end = all.find('\n', end) + 1;
      append(dir + "/" + log, all.substr(begin, end - begin));
    }
    {
      StoreWriter probe(resume_options(dir, layout), test_manifest());
      EXPECT_EQ(manifest_shard_count(dir), written + 1);
    }
    resume_and_compare(dir, layout, expected);
  }
  {  // Resuming a complete store changes nothing.
    const std::string dir = tmp.sub("complete");
    write_store(options_for(dir, layout, DType::BF16, 250), kRecords);
    resume_and_compare(dir, layout, expected);
  }
}

// A real kill -9 at random moments of a writing process, several seeds.
TEST_P(StoreResume, AfterSigkillAtRandomMoments) {
  const StoreLayout layout = GetParam();
  TempDir tmp;
  const auto expected = reference(tmp, layout);
  const auto start = std::chrono::steady_clock::now();
  write_store(options_for(tmp.sub("timing"), layout, DType::BF16, 250), kRecords);
  const auto full_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  int interrupted = 0;
  for (unsigned seed = 1; seed <= 8; ++seed) {
    const std::string dir = tmp.sub("killed-" + std::to_string(seed));
    std::mt19937 random(seed);
    const auto delay = std::uniform_int_distribution<int64_t>(0, full_us)(random);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        write_store(options_for(dir, layout, DType::BF16, 250), kRecords);
      } catch (...) {
        _exit(2);
      }
      _exit(0);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) << status;
    if (WIFSIGNALED(status) && !(fs::exists(dir + "/manifest.json") && manifest_complete(dir))) ++interrupted;
    resume_and_compare(dir, layout, expected);
  }
  EXPECT_GE(interrupted, 3) << "too few kills landed inside the run";
}

// Disk full: a file-size limit makes a write fail (EFBIG) first inside a shard, then inside an index append.
TEST_P(StoreResume, AfterAWriteFailsTheStoreStaysValid) {
  const StoreLayout layout = GetParam();
  TempDir tmp;
  const auto expected = reference(tmp, layout);
  for (rlim_t limit : {rlim_t(200), rlim_t(1500)}) {
    const std::string dir = tmp.sub("full-" + std::to_string(limit));
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      signal(SIGXFSZ, SIG_IGN);
      // The folder and its empty store first, then the limit: the failure comes from a shard or an index file.
      StoreWriter writer(options_for(dir, layout, DType::BF16, 250), test_manifest());
      rlimit rl{limit, limit};
      setrlimit(RLIMIT_FSIZE, &rl);
      std::string message = "no error";
      try {
        for (int64_t r = 0; r < kRecords; ++r) writer.add_record(info_of(r), sites_of(r));
        writer.finish();
      } catch (const Error& e) {
        message = e.what();
      }
      (void)!write(pipe_fds[1], message.data(), message.size());
      _exit(0);
    }
    close(pipe_fds[1]);
    std::string message;
    char buffer[512];
    ssize_t n;
    while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0) message.append(buffer, size_t(n));
    close(pipe_fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_NE(message.find(dir + "/"), std::string::npos) << message;
    EXPECT_NE(message.find("File too large"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const auto& entry : fs::directory_iterator(dir))
      EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
    if (limit == 1500) {
      EXPECT_NE(message.find(".jsonl"), std::string::npos) << message;
      EXPECT_GT(manifest_shard_count(dir), 0);
    }
    resume_and_compare(dir, layout, expected);
  }
}

// Past its first 64 shards the manifest is rewritten at most once a second, so after a crash it may list fewer
// shards than are committed: resume takes them all, from the shards and index lines themselves.
TEST_P(StoreResume, FromAManifestBehindItsShards) {
  const StoreLayout layout = GetParam();
  TempDir tmp;
  constexpr int64_t n = 150;
  const std::string ref = tmp.sub("reference"), dir = tmp.sub("crashed");
  write_store(options_for(ref, layout, DType::F16, 1), n);  // a shard per record
  {
    StoreWriter writer(options_for(dir, layout, DType::F16, 1), test_manifest());
    for (int64_t r = 0; r < n; ++r) writer.add_record(info_of(r), sites_of(r));
  }
  const int64_t listed = manifest_shard_count(dir);
  EXPECT_GE(listed, 64);
  StoreOptions options = options_for(dir, layout, DType::F16, 1);
  options.resume = true;
  {
    StoreWriter writer(options, test_manifest());
    EXPECT_EQ(int64_t(writer.completed_records().size()), n - 1) << listed << " shards listed";
    writer.add_record(info_of(n - 1), sites_of(n - 1));
    writer.finish();
  }
  EXPECT_TRUE(folder_contents(dir) == folder_contents(ref));
  const StoreCheck check = verify_store(dir);
  EXPECT_TRUE(check.ok) << check.problem;
}

INSTANTIATE_TEST_SUITE_P(Layouts, StoreResume, ::testing::Values(StoreLayout::PerRecord, StoreLayout::TokenStream));

}  // namespace
}  // namespace actcap
