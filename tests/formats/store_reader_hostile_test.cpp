// StoreReader on hostile folders found by fuzz/fuzz_store_reader.cpp: each is a one-line error naming the file.
#include <gtest/gtest.h>

#include <filesystem>

#include "capture/store_reader.h"
#include "core/atomic_file.h"
#include "../test_util.h"

namespace actcap {
namespace {

// "format" or "format_version" of another type made nlohmann's value() throw a type_error past the reader.
TEST(StoreReaderHostile, ManifestKeysOfTheWrongType) {
  const auto dir = test::temp_dir("store_reader_hostile");
  const std::string manifest = (dir / "manifest.json").string();
  write_file_atomic(manifest, R"({"format": ["actcap-store"], "format_version": 1})");
  test::expect_one_line_error([&] { StoreReader reader(dir.string()); }, {manifest, "not an actcap store manifest"});
  write_file_atomic(manifest, R"({"format": "actcap-store", "format_version": [1]})");
  test::expect_one_line_error([&] { StoreReader reader(dir.string()); }, {manifest});
  std::filesystem::remove_all(dir);
}

// Floats where integers belong: converting 5e108 to an integer was undefined behaviour (UBSan).
TEST(StoreReaderHostile, HugeFloatsWhereIntegersBelong) {
  const auto dir = test::temp_dir("store_reader_floats");
  const std::string manifest = (dir / "manifest.json").string();
  write_file_atomic(manifest, R"({"format": "actcap-store", "format_version": 1e300})");
  test::expect_one_line_error([&] { StoreReader reader(dir.string()); }, {manifest, "unsupported format_version"});
  write_file_atomic(manifest, R"({"format": "actcap-store", "format_version": 1, "layout": "per_record", "dtype": "F32",
      "sites": [], "shards": [{"file": "shard-00000.safetensors", "sha256": "", "bytes": 5.33e108}], "complete": true})");
  test::expect_one_line_error([&] { StoreReader reader(dir.string()); },
                              {manifest, "\"bytes\" is 5.33e+108, not of the expected type"});
  std::filesystem::remove_all(dir);
}

// An index line without "dtype" was read through const json::operator[] (undefined behaviour: ASan's
// heap-buffer-overflow, found by fuzz_store_reader after the typed index codec).
TEST(StoreReaderHostile, IndexLineWithoutDtype) {
  const auto dir = test::temp_dir("store_reader_no_dtype");
  write_file_atomic((dir / "manifest.json").string(),
                    R"({"format": "actcap-store", "format_version": 1, "layout": "per_record", "dtype": "F32",
      "sites": ["hidden_states.0"], "shards": [], "complete": true})");
  write_file_atomic((dir / "records.jsonl").string(),
                    R"({"record": 0, "id": "0", "token_ids": [1], "n_prompt": 1, "positions": [0]})" "\n");
  const std::string metadata = (dir / "metadata.jsonl").string();
  write_file_atomic(metadata, R"({"record": 0, "id": "0", "text_sha256": null, "token_span": [0, 1],)"
                              R"( "sites": ["hidden_states.0"], "shard": "shard-00000.safetensors"})" "\n");
  test::expect_one_line_error([&] { StoreReader reader(dir.string(), StoreReadOptions{false}); },
                              {metadata, "no \"dtype\""});
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace actcap
