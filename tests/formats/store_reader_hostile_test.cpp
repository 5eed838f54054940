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

}  // namespace
}  // namespace actcap
