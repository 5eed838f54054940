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
  test::expect_one_line_error([&] { StoreReader reader(dir.string()); }, {manifest, "malformed manifest"});
  write_file_atomic(manifest, R"({"format": "actcap-store", "format_version": [1]})");
  test::expect_one_line_error([&] { StoreReader reader(dir.string()); }, {manifest});
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace actcap
