// The shard spool writes the very bytes write_safetensors writes, whatever the lanes and buffer boundaries.
#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "io/safetensors.h"
#include "io/spool_file.h"
#include "store_test_util.h"

namespace actcap {
namespace {

using namespace store_test;

TEST(SafetensorsSpool, WritesWhatWriteSafetensorsWrites) {
  TempDir tmp;
  // Tensors big enough to cross the spool's buffers, small ones in between, and an empty one.
  std::vector<std::vector<uint8_t>> data;
  std::vector<SafetensorsSource> sources;
  const std::vector<Shape> shapes = {{3, 5}, {70000, 3}, {0, 4}, {1}, {300000}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    std::vector<uint8_t> bytes(size_t(num_elements(shapes[i])) * 4);
    for (size_t b = 0; b < bytes.size(); ++b) bytes[b] = uint8_t(b * 31 + i);
    data.push_back(std::move(bytes));
  }
  for (size_t i = 0; i < shapes.size(); ++i)
    sources.push_back({"t" + std::to_string(i) + "/\"quoted\"", DType::F32, shapes[i], {data[i]}});
  const std::map<std::string, std::string> metadata = {{"format", "test"}, {"records", "5"}};
  const auto expected = write_safetensors(tmp.sub("direct.safetensors"), metadata, sources);

  // The same tensors through two lanes: the first two tensors in lane 0, the rest in lane 1, appended in pieces.
  SafetensorsSpool spool(tmp.sub("spooled.safetensors"), 2);
  for (size_t i = 0; i < shapes.size(); ++i) {
    const size_t lane = i < 2 ? 0 : 1;
    for (size_t at = 0; at < data[i].size(); at += 100003)
      spool.append(lane, data[i].data() + at, std::min<size_t>(100003, data[i].size() - at));
    spool.add_tensor(sources[i].name, DType::F32, shapes[i]);
  }
  const auto got = spool.commit(metadata);
  EXPECT_EQ(got.sha256, expected.sha256);
  EXPECT_EQ(got.data_offset, expected.data_offset);
  EXPECT_EQ(got.file_bytes, expected.file_bytes);
  EXPECT_TRUE(read_file(tmp.sub("spooled.safetensors")) == read_file(tmp.sub("direct.safetensors")));
  EXPECT_EQ(sha256_file(tmp.sub("spooled.safetensors")), got.sha256);
  // No temporary file is left, and nothing but the two files was ever visible.
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(tmp.path())) names.insert(entry.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"direct.safetensors", "spooled.safetensors"}));
}

TEST(SafetensorsSpool, RefusesTensorsThatDoNotCoverTheData) {
  TempDir tmp;
  SafetensorsSpool spool(tmp.sub("x.safetensors"), 1);
  const float values[3] = {1, 2, 3};
  spool.append(0, values, sizeof values);
  spool.add_tensor("a", DType::F32, {2});
  try {
    spool.commit({});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.safetensors: the tensors declared hold 8 bytes but 12 were written"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.sub("x.safetensors")));
}

TEST(SpoolFile, ReadsBackWhatWasAppended) {
  TempDir tmp;
  SpoolFile spool(tmp.sub("spool"));
  EXPECT_FALSE(fs::exists(tmp.sub("spool")));  // unlinked at once
  std::string expected;
  for (int i = 0; i < 20000; ++i) {
    const std::string piece = std::to_string(i * 7919) + (i % 997 == 0 ? std::string(300000, 'x') : "") + ";";
    spool.append(piece);
    expected += piece;
  }
  std::string back;
  spool.read_back([&](const uint8_t* p, size_t n) { back.append(reinterpret_cast<const char*>(p), n); });
  EXPECT_TRUE(back == expected);
  spool.rewind();
  std::string sequential(expected.size(), '\0');
  spool.read(sequential.data(), 10);
  spool.read(sequential.data() + 10, sequential.size() - 10);
  EXPECT_TRUE(sequential == expected);
  char extra;
  EXPECT_THROW(spool.read(&extra, 1), Error);
}

}  // namespace
}  // namespace actcap
