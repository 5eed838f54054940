#include "io/safetensors.h"
#include "io/safetensors_producer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "test_util.h"

using namespace actcap;

namespace {
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("actcap_st_" + name)).string();
}
void expect_error_containing(const std::string& path, const std::string& needle) {
  test::expect_one_line_error([&] { SafetensorsFile f(path); }, {path, needle});
}
void write_raw(const std::string& path, const std::string& header, size_t data_bytes) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << std::string(data_bytes, '\0');
}
}  // namespace

TEST(Safetensors, RoundTrip) {
  std::string path = temp_path("roundtrip.safetensors");
  float a[6] = {1, 2, 3, 4, 5, 6};
  uint16_t b[2] = {0x3f80, 0xc000};
  SafetensorsWriter w;
  w.add("a", DType::F32, {2, 3}, a);
  w.add("b/c", DType::BF16, {2}, b);
  w.set_metadata("format", "pt");
  auto written = w.write(path);
  EXPECT_EQ(written.data_offset % 8, 0u);
  SafetensorsFile f(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a", "b/c"}));
  EXPECT_EQ(f.view("a").shape, (Shape{2, 3}));
  EXPECT_EQ(f.view("a").f32()[5], 6.0f);
  EXPECT_EQ(Tensor::to_f32(f.view("b/c")).f32()[1], -2.0f);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_THROW(f.view("missing"), Error);
  std::filesystem::remove(path);
}

// Produced tensors (any piece sizes) give the bytes of the in-memory writer; a wrong byte count is refused and
// leaves no file.
TEST(Safetensors, ProducedTensorsMatchTheWriter) {
  const std::string whole = temp_path("whole.safetensors"), produced = temp_path("produced.safetensors");
  float a[6] = {1, 2, 3, 4, 5, 6};
  uint16_t b[2] = {0x3f80, 0xc000};
  SafetensorsWriter w;
  w.add("a", DType::F32, {2, 3}, a);
  w.add("b", DType::BF16, {2}, b);
  w.set_metadata("format", "pt");
  const auto expected = w.write(whole);
  auto in_pieces = [](const void* data, size_t bytes, size_t piece) {
    return [=](const std::function<void(const void*, size_t)>& put) {
      for (size_t at = 0; at < bytes; at += piece) put(static_cast<const char*>(data) + at, std::min(piece, bytes - at));
    };
  };
  const auto written = write_safetensors(produced, {{"format", "pt"}},
                                         {{"a", DType::F32, {2, 3}, in_pieces(a, sizeof a, 5)},
                                          {"b", DType::BF16, {2}, in_pieces(b, sizeof b, 4)}});
  EXPECT_EQ(written.sha256, expected.sha256);
  EXPECT_EQ(read_file(produced), read_file(whole));
  std::filesystem::remove(produced);
  test::expect_one_line_error(
      [&] { write_safetensors(produced, {}, {{"a", DType::F32, {2, 3}, in_pieces(a, 20, 20)}}); },
      {produced, "tensor 'a' produced 20 of its 24 bytes"});
  test::expect_one_line_error(
      [&] { write_safetensors(produced, {}, {{"a", DType::F32, {2}, in_pieces(a, 12, 12)}}); },
      {produced, "tensor 'a' produced more than its 8 bytes"});
  EXPECT_FALSE(std::filesystem::exists(produced));
  std::filesystem::remove(whole);
}

TEST(Safetensors, MalformedFilesGiveOneLineErrors) {
  std::string path = temp_path("bad.safetensors");
  write_file_atomic(path, "abc");
  expect_error_containing(path, "not a safetensors file");
  write_raw(path, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4);
  expect_error_containing(path, "outside the data section");
  write_raw(path, "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8);
  expect_error_containing(path, "expected 12");
  write_raw(path, "{\"a\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
  expect_error_containing(path, "unsupported dtype");
  write_raw(path, "{not json", 0);
  expect_error_containing(path, "malformed safetensors header");
  std::string huge(8, '\xff');
  write_file_atomic(path, huge + "{}");
  expect_error_containing(path, "exceeds file size");
  std::filesystem::remove(path);
  expect_error_containing(path, "cannot open");
}

TEST(Safetensors, ReadsHfReference) {
  SafetensorsFile f(std::string(ACTCAP_TEST_DATA) + "/reference/gpt2/model.safetensors");
  EXPECT_TRUE(f.contains("transformer.wte.weight"));
  EXPECT_EQ(f.view("transformer.wte.weight").shape, (Shape{512, 64}));
}
