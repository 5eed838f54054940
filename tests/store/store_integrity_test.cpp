// Tamper evidence: editing any byte of any file of a store fails verify naming the file, and readers (ls,
// stats, exports) refuse a changed, swapped or dropped part unless told not to verify.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "capture/store_format.h"
#include "capture/store_reader.h"
#include "capture/verify.h"
#include "core/error.h"
#include "core/sha256.h"
#include "store_test_util.h"
#include "../test_util.h"

namespace actcap {
namespace {

using namespace store_test;
using json = nlohmann::json;

void rewrite(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

using test::error_of;

int run_quietly(const std::string& arguments) {
  const int status = std::system((std::string(ACTCAP_BINARY) + " " + arguments + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class StoreIntegrity : public ::testing::TestWithParam<StoreLayout> {
 protected:
  void SetUp() override {
    dir_ = tmp_.sub("store");
    write_store(options_for(dir_, GetParam(), DType::BF16, 300), 8);
  }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  TempDir tmp_;
  std::string dir_;
};

TEST_P(StoreIntegrity, AFlippedByteInAnyFileIsCaught) {
  ASSERT_TRUE(verify_store(dir_).ok);
  for (const auto& [name, original] : folder_contents(dir_)) {
    // Every byte of the manifest (hashed in its canonical form, not as bytes), a spread of the others'.
    const size_t step = name == "manifest.json" ? 1 : name.ends_with(".safetensors") ? 23 : 5;
    int checked = 0;
    for (size_t at = 0; at < original.size(); at += step) {
      std::string edited = original;
      edited[at] ^= 0x01;
      rewrite(file(name), edited);
      const StoreCheck check = verify_store(dir_);
      ASSERT_FALSE(check.ok) << name << " byte " << at << " flipped: verify passed";
      ASSERT_NE(check.problem.find(file(name)), std::string::npos) << name << " byte " << at << ": " << check.problem;
      ++checked;
    }
    rewrite(file(name), original);
    EXPECT_GT(checked, 10) << name;
  }
  EXPECT_TRUE(verify_store(dir_).ok);
}

// The edits the previous format let through: token ids and generated text, the model path, a setting.
TEST_P(StoreIntegrity, MeaningfulEditsAreCaught) {
  auto edit = [&](const std::string& name, const std::string& from, const std::string& to) {
    const std::string original = read_file(file(name));
    std::string text = original;
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    rewrite(file(name), text);
    const StoreCheck check = verify_store(dir_);
    EXPECT_FALSE(check.ok) << name << ": " << from << " -> " << to;
    EXPECT_NE(check.problem.find(file(name)), std::string::npos) << check.problem;
    rewrite(file(name), original);
  };
  edit("records.jsonl", "\"token_ids\":[50256,", "\"token_ids\":[50257,");
  edit("records.jsonl", "\"generated_text\":\" g\"", "\"generated_text\":\" h\"");
  edit("manifest.json", "/models/tiny", "/models/tinz");
  edit("manifest.json", "\"seed\": 7", "\"seed\": 8");
  edit("metadata.jsonl", "\"id\":\"id-3\"", "\"id\":\"id-4\"");
  EXPECT_TRUE(verify_store(dir_).ok);
}

TEST_P(StoreIntegrity, ReadersRefuseAChangedShardUnlessToldNotToVerify) {
  std::string shard = read_file(file("shard-00001.safetensors"));
  shard[shard.size() - 3] ^= 0x10;
  rewrite(file("shard-00001.safetensors"), shard);
  const StoreReader store(dir_);  // opening is cheap: shards are checked as they are first mapped
  int64_t in_shard_1 = 0;
  while (store.metadata()[size_t(in_shard_1)].shard != "shard-00001.safetensors") ++in_shard_1;
  EXPECT_EQ(error_of([&] { store.read_f32(0, kSites[0]); }), "no error");  // shard 0 is whole
  const std::string message = error_of([&] { store.read_f32(in_shard_1, kSites[0]); });
  EXPECT_NE(message.find(file("shard-00001.safetensors") + ": SHA-256 "), std::string::npos) << message;
  const StoreReader unchecked(dir_, StoreReadOptions{.verify_shards = false});
  for (int64_t r = 0; r < 8; ++r) unchecked.read_f32(r, kSites[0]);
  EXPECT_EQ(run_quietly("ls " + dir_), 1);
  EXPECT_EQ(run_quietly("ls --no-verify " + dir_), 0);
  EXPECT_EQ(run_quietly("export npy " + dir_ + " --out " + tmp_.sub("npy")), 1);
}

TEST_P(StoreIntegrity, ReadersRefuseSwappedShards) {
  const std::string a = read_file(file("shard-00000.safetensors")), b = read_file(file("shard-00001.safetensors"));
  rewrite(file("shard-00000.safetensors"), b);
  rewrite(file("shard-00001.safetensors"), a);
  const StoreReader store(dir_);
  const std::string message = error_of([&] { store.read_f32(0, kSites[0]); });
  EXPECT_NE(message.find(file("shard-00000.safetensors") + ":"), std::string::npos) << message;
  EXPECT_EQ(run_quietly("export npy " + dir_ + " --out " + tmp_.sub("npy")), 1);
}

TEST_P(StoreIntegrity, ReadersRefuseADroppedRecord) {
  for (const char* log : {"records.jsonl", "metadata.jsonl"}) {
    std::string text = read_file(file(log));
    const size_t first = text.find('\n') + 1, second = text.find('\n', first) + 1;
    rewrite(file(log), text.substr(0, first) + text.substr(second));
  }
  EXPECT_NE(error_of([&] { StoreReader r(dir_); }).find(file("records.jsonl") + ": "), std::string::npos);
  // Even with the manifest rewritten to match and verification off, the numbering gives it away.
  store::Manifest manifest = store::Manifest::parse(read_file(file("manifest.json")), "manifest.json");
  for (auto [name, digest] : {std::pair{"records.jsonl", &manifest.records}, {"metadata.jsonl", &manifest.metadata}}) {
    const std::string text = read_file(file(name));
    *digest = store::IndexDigest{sha256_hex(text.data(), text.size()), text.size()};
  }
  rewrite(file("manifest.json"), manifest.to_text());
  const std::string message = error_of([&] { StoreReader r(dir_, StoreReadOptions{.verify_shards = false}); });
  EXPECT_NE(message.find(file("records.jsonl") + ": line 2: record 2 where record 1 was expected (a record is missing)"),
            std::string::npos)
      << message;
}

INSTANTIATE_TEST_SUITE_P(Layouts, StoreIntegrity, ::testing::Values(StoreLayout::PerRecord, StoreLayout::TokenStream));

}  // namespace
}  // namespace actcap
