// What a store may take over: resume names the first difference, never deletes a file it did not write, and
// overwrite replaces only a store's own files; a failed capture leaves a store resume or overwrite can take.
#include <gtest/gtest.h>

#include "capture/store_reader.h"
#include "capture/verify.h"
#include "core/error.h"
#include "store_test_util.h"
#include "../test_util.h"

namespace actcap {
namespace {

using namespace store_test;
using json = nlohmann::json;

using test::error_of;

StoreOptions with(StoreOptions o, bool resume, bool overwrite) {
  o.resume = resume;
  o.overwrite = overwrite;
  return o;
}

TEST(StoreResumeErrors, NameTheFirstDifference) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  json manifest = test_manifest();
  manifest["generation"] = {{"max_new_tokens", 8}, {"temperature", 0.5}};
  write_store(options_for(dir), 2, manifest);
  const StoreOptions resume = with(options_for(dir), true, false);

  json other = manifest;
  other["generation"]["max_new_tokens"] = 16;
  EXPECT_EQ(error_of([&] { StoreWriter w(resume, other); }),
            dir + "/manifest.json: cannot resume: generation.max_new_tokens: the store has 8, this run 16");
  other = manifest;
  other.erase("seed");
  EXPECT_EQ(error_of([&] { StoreWriter w(resume, other); }),
            dir + "/manifest.json: cannot resume: seed: the store has 7, this run has none");
  StoreOptions sites = resume;
  sites.sites = {"hidden_states.0", "hidden_states.1", "hidden_states.2"};
  EXPECT_EQ(error_of([&] { StoreWriter w(sites, manifest); }),
            dir + "/manifest.json: cannot resume: sites: this run adds [hidden_states.1, hidden_states.2], lacks "
                  "[blocks.0.hook_attn_out] (the store's list has 2)");
  // A long value is cut short: the message stays one readable line.
  other = manifest;
  other["model"]["path"] = std::string(500, 'x');
  const std::string message = error_of([&] { StoreWriter w(resume, other); });
  EXPECT_LT(message.size(), 200u) << message;
  EXPECT_NE(message.find("model.path: the store has \"/models/tiny\", this run \"xxx"), std::string::npos) << message;
}

TEST(StoreTakeover, NeverDeletesAFileTheStoreDidNotWrite) {
  TempDir tmp;
  for (bool resume : {false, true}) {
    for (const std::string name : {"shard-00000.safetensors", "records.jsonl", "metadata.jsonl"}) {
      const std::string dir = tmp.sub(name + (resume ? "-resume" : "-fresh"));
      fs::create_directories(dir);
      write_file_atomic(dir + "/" + name, "the user's own file");
      const std::string message = error_of([&] { StoreWriter w(with(options_for(dir), resume, false), test_manifest()); });
      EXPECT_EQ(message, dir + ": holds " + name + " but no manifest.json: not a store actcap wrote (move the file "
                              "away or choose another folder)");
      EXPECT_EQ(read_file(dir + "/" + name), "the user's own file");
    }
  }
  // In a store, a file named like the next shard that is not one of its shards stays too.
  const std::string dir = tmp.sub("store");
  {
    StoreWriter w(options_for(dir), test_manifest());
    for (int64_t r = 0; r < 6; ++r) w.add_record(info_of(r), sites_of(r));
  }
  const std::string next = store::shard_file_name(manifest_shard_count(dir));
  write_file_atomic(dir + "/" + next, "not a shard");
  const std::string message = error_of([&] { StoreWriter w(with(options_for(dir), true, false), test_manifest()); });
  EXPECT_EQ(message, dir + "/" + next + ": not a shard of this store, and in its way (move it away to resume)");
  EXPECT_EQ(read_file(dir + "/" + next), "not a shard");
}

TEST(StoreTakeover, OverwriteReplacesOnlyAStore) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  write_store(options_for(dir, StoreLayout::PerRecord, DType::F32, 200), 12);
  ASSERT_GT(manifest_shard_count(dir), 3);
  // Another layout and fewer records: nothing of the old store remains.
  write_store(with(options_for(dir, StoreLayout::TokenStream, DType::F16, 100000), false, true), 3);
  std::set<std::string> names;
  for (const auto& [name, _] : folder_contents(dir)) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{"manifest.json", "metadata.jsonl", "records.jsonl", "shard-00000.safetensors"}));
  const StoreCheck check = verify_store(dir);
  EXPECT_TRUE(check.ok) << check.problem;
  EXPECT_EQ(check.records, 3);

  // A folder that also holds other files is refused, and left as it was.
  write_file_atomic(dir + "/notes.txt", "mine");
  const auto before = folder_contents(dir);
  EXPECT_EQ(error_of([&] { StoreWriter w(with(options_for(dir), false, true), test_manifest()); }),
            dir + ": cannot overwrite: the folder also holds notes.txt, which is not the store's (move it away or "
                  "choose another folder)");
  EXPECT_EQ(folder_contents(dir), before);
  // So is a folder with no store (overwrite then simply starts one) that holds a file named like a store's.
  const std::string plain = tmp.sub("plain");
  fs::create_directories(plain);
  write_file_atomic(plain + "/records.jsonl", "mine");
  EXPECT_NE(error_of([&] { StoreWriter w(with(options_for(plain), false, true), test_manifest()); }).find("no manifest.json"),
            std::string::npos);
  write_store(with(options_for(tmp.sub("fresh")), false, true), 2);
  EXPECT_TRUE(verify_store(tmp.sub("fresh")).ok);
}

TEST(StoreTakeover, AFailedCaptureCanBeResumedOrOverwritten) {
  TempDir tmp;
  for (bool overwrite : {false, true}) {
    const std::string dir = tmp.sub(overwrite ? "overwrite" : "resume");
    {  // A capture that fails after its store was started (a bad input, a crash): no finish().
      StoreWriter w(options_for(dir), test_manifest());
      w.add_record(info_of(0), sites_of(0));
    }
    EXPECT_NE(error_of([&] { StoreReader r(dir); }).find("incomplete"), std::string::npos);
    json manifest = test_manifest();
    if (overwrite) manifest["seed"] = 99;  // other options: only overwrite can take it over
    write_store(with(options_for(dir), !overwrite, overwrite), 5, manifest);
    const StoreCheck check = verify_store(dir);
    EXPECT_TRUE(check.ok) << check.problem;
    EXPECT_EQ(check.records, 5);
    EXPECT_EQ(StoreReader(dir).manifest()["seed"], overwrite ? 99 : 7);
  }
}

// A version-1 store (before the index and manifest hashes): readable and verifiable, and --resume upgrades it.
TEST(StoreVersions, Version1StaysReadableAndResumeUpgradesIt) {
  TempDir tmp;
  const std::string dir = tmp.sub("store");
  write_store(options_for(dir), 3);
  json manifest = read_manifest(dir);
  for (const char* key : {"records_sha256", "records_bytes", "metadata_sha256", "metadata_bytes", "manifest_sha256"})
    manifest.erase(key);
  manifest["format_version"] = 1;
  write_file_atomic(dir + "/manifest.json", manifest.dump(2) + "\n");
  {
    const StoreReader store(dir);
    EXPECT_EQ(store.format().format_version, 1);
    EXPECT_EQ(store.records().size(), 3u);
  }
  StoreCheck check = verify_store(dir);
  EXPECT_TRUE(check.ok) << check.problem;
  EXPECT_EQ(check.format_version, 1);
  write_store(with(options_for(dir), true, false), 5);
  EXPECT_EQ(read_manifest(dir)["format_version"], 2);
  EXPECT_TRUE(read_manifest(dir).contains("manifest_sha256"));
  check = verify_store(dir);
  EXPECT_TRUE(check.ok) << check.problem;
  EXPECT_EQ(check.format_version, 2);
  EXPECT_EQ(check.records, 5);
}

}  // namespace
}  // namespace actcap
