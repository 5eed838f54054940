// GGUF reader and writer: round trips of every value type, hostile and truncated files refused with one line
// naming the file, and a written file checked by @huggingface/gguf (tests/oracle/gguf_oracle.js) where node is.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "../test_util.h"

namespace actcap {
namespace {
namespace fs = std::filesystem;
using gguf::Value;
using gguf::ValueType;

gguf::File every_type() {
  gguf::File file;
  file.metadata = {
      {"general.architecture", Value::string("controlvector")},
      {"u8", Value::unsigned_int(ValueType::UINT8, 255)},
      {"i8", Value::signed_int(ValueType::INT8, -128)},
      {"u16", Value::unsigned_int(ValueType::UINT16, 65535)},
      {"i16", Value::signed_int(ValueType::INT16, -32768)},
      {"u32", Value::unsigned_int(ValueType::UINT32, 4000000000u)},
      {"i32", Value::signed_int(ValueType::INT32, -2000000000)},
      {"f32", Value::floating(ValueType::FLOAT32, 0.1)},
      {"flag", Value::boolean(true)},
      {"u64", Value::unsigned_int(ValueType::UINT64, 18446744073709551615ull)},
      {"i64", Value::signed_int(ValueType::INT64, -9007199254740993ll)},
      {"f64", Value::floating(ValueType::FLOAT64, -2.5e-300)},
      {"names", Value::array(ValueType::STRING, {Value::string("a"), Value::string(""), Value::string("ü")})},
      {"ints", Value::array(ValueType::INT32, {Value::signed_int(ValueType::INT32, 1),
                                               Value::signed_int(ValueType::INT32, -7)})},
      {"empty", Value::array(ValueType::FLOAT32, {})},
  };
  file.tensors = {{"direction.1", {3}, {1.5f, -2.0f, 1e-30f}},
                  {"direction.2", {3}, {0.0f, -0.0f, 3.25f}},
                  {"matrix", {2, 3}, {1, 2, 3, 4, 5, 6}}};
  return file;
}

std::string bytes_of(const std::string& path) { return read_file(path); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

void expect_refused(const std::string& path, const std::string& fragment) {
  test::expect_one_line_error([&] { gguf::read(path); }, {path, fragment});
}

// A header with the given counts and nothing else: what hostile counts look like.
std::string header(uint32_t version, uint64_t tensors, uint64_t kvs) {
  std::string bytes = "GGUF";
  bytes.append(reinterpret_cast<const char*>(&version), 4);
  bytes.append(reinterpret_cast<const char*>(&tensors), 8);
  bytes.append(reinterpret_cast<const char*>(&kvs), 8);
  return bytes;
}
template <class T>
void put(std::string& bytes, T value) {
  bytes.append(reinterpret_cast<const char*>(&value), sizeof(T));
}
void put_string(std::string& bytes, const std::string& text) {
  put<uint64_t>(bytes, text.size());
  bytes += text;
}

class Gguf : public testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("gguf"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(Gguf, RoundTripKeepsEveryTypeAndValue) {
  const gguf::File written = every_type();
  gguf::write(path("a.gguf"), written);
  const gguf::File read = gguf::read(path("a.gguf"));
  EXPECT_EQ(read.version, 3u);
  ASSERT_EQ(read.metadata.size(), written.metadata.size());
  for (size_t i = 0; i < written.metadata.size(); ++i) {
    EXPECT_EQ(read.metadata[i].first, written.metadata[i].first);
    EXPECT_EQ(read.metadata[i].second.type, written.metadata[i].second.type) << written.metadata[i].first;
  }
  EXPECT_EQ(read.find("u64")->as_unsigned(), 18446744073709551615ull);
  EXPECT_EQ(read.find("i64")->as_signed(), -9007199254740993ll);
  EXPECT_EQ(read.find("f32")->as_float(), double(0.1f));
  EXPECT_EQ(read.find("f64")->as_float(), -2.5e-300);
  EXPECT_TRUE(read.find("flag")->as_bool());
  EXPECT_EQ(read.find("names")->as_array().items[2].as_string(), "ü");
  EXPECT_EQ(read.find("ints")->as_array().items[1].as_signed(), -7);
  EXPECT_EQ(read.find("empty")->as_array().element_type, ValueType::FLOAT32);
  EXPECT_EQ(read.find("missing"), nullptr);
  ASSERT_EQ(read.tensors.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(read.tensors[i].name, written.tensors[i].name);
    EXPECT_EQ(read.tensors[i].ne, written.tensors[i].ne);
    EXPECT_EQ(0, std::memcmp(read.tensors[i].data.data(), written.tensors[i].data.data(), 4 * read.tensors[i].data.size()));
  }
  // Written again, the bytes are the same: nothing is lost or reordered.
  gguf::write(path("b.gguf"), read);
  EXPECT_EQ(bytes_of(path("a.gguf")), bytes_of(path("b.gguf")));
  EXPECT_EQ(bytes_of(path("a.gguf")).size() % 32, 0u);
}

TEST_F(Gguf, CustomAlignmentPlacesEveryTensorOnIt) {
  gguf::File file = every_type();
  file.metadata.emplace_back("general.alignment", Value::unsigned_int(ValueType::UINT32, 64));
  gguf::write(path("a.gguf"), file);
  const std::string bytes = bytes_of(path("a.gguf"));
  EXPECT_EQ(bytes.size() % 64, 0u);
  const gguf::File read = gguf::read(path("a.gguf"));
  EXPECT_EQ(read.alignment(), 64u);
  EXPECT_EQ(read.tensor("matrix")->data[5], 6.0f);
  // The second tensor's 12 bytes begin 64 bytes after the first's.
  const size_t first = bytes.size() - 3 * 64;
  float value;
  std::memcpy(&value, bytes.data() + first + 64 + 8, 4);
  EXPECT_EQ(value, 3.25f);
}

TEST_F(Gguf, EveryTruncationIsRefusedNamingTheFile) {
  gguf::write(path("a.gguf"), every_type());
  const std::string bytes = bytes_of(path("a.gguf"));
  // The last tensor's data ends 8 bytes before the file (padding): cutting the padding alone is harmless.
  const size_t data_end = bytes.size() - 8;
  for (size_t n = 0; n < data_end; ++n) {
    write_bytes(path("cut.gguf"), bytes.substr(0, n));
    const std::string message = test::error_of([&] { gguf::read(path("cut.gguf")); });
    ASSERT_NE(message, "no error") << n << " bytes";
    ASSERT_NE(message.find(path("cut.gguf")), std::string::npos) << message;
    ASSERT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST_F(Gguf, BadMagicAndVersions) {
  write_bytes(path("x.gguf"), "GGML\3\0\0\0");
  expect_refused(path("x.gguf"), "not a GGUF file");
  write_bytes(path("x.gguf"), "");
  expect_refused(path("x.gguf"), "not a GGUF file");
  write_bytes(path("x.gguf"), header(1, 0, 0));
  expect_refused(path("x.gguf"), "unsupported GGUF version 1");
  write_bytes(path("x.gguf"), header(0x03000000, 0, 0));  // a big-endian file's version
  expect_refused(path("x.gguf"), "unsupported GGUF version");
  write_bytes(path("x.gguf"), header(3, 0, 0));
  EXPECT_TRUE(gguf::read(path("x.gguf")).tensors.empty());
}

TEST_F(Gguf, OverflowingCountsAndLengthsAreRefusedBeforeAllocating) {
  write_bytes(path("x.gguf"), header(3, 0, ~uint64_t(0)));
  expect_refused(path("x.gguf"), "metadata count");
  write_bytes(path("x.gguf"), header(3, uint64_t(1) << 62, 0));
  expect_refused(path("x.gguf"), "tensor count");

  std::string bytes = header(3, 0, 1);
  put<uint64_t>(bytes, ~uint64_t(0));  // key length
  write_bytes(path("x.gguf"), bytes);
  expect_refused(path("x.gguf"), "truncated");

  bytes = header(3, 0, 1);
  put_string(bytes, "k");
  put<uint32_t>(bytes, 9);   // array
  put<uint32_t>(bytes, 10);  // of uint64
  put<uint64_t>(bytes, uint64_t(1) << 61);
  write_bytes(path("x.gguf"), bytes);
  expect_refused(path("x.gguf"), "array length");

  bytes = header(3, 0, 1);
  put_string(bytes, "k");
  put<uint32_t>(bytes, 9);
  put<uint32_t>(bytes, 9);  // of arrays
  put<uint64_t>(bytes, 0);
  write_bytes(path("x.gguf"), bytes);
  expect_refused(path("x.gguf"), "arrays of arrays");

  bytes = header(3, 0, 1);
  put_string(bytes, "k");
  put<uint32_t>(bytes, 13);
  write_bytes(path("x.gguf"), bytes);
  expect_refused(path("x.gguf"), "unknown value type 13");
}

// A file with one tensor info as given and `data_bytes` of data after the 32-byte aligned header.
std::string one_tensor(const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset, size_t data_bytes) {
  std::string bytes = header(3, 1, 0);
  put_string(bytes, "t");
  put<uint32_t>(bytes, uint32_t(ne.size()));
  for (uint64_t d : ne) put<uint64_t>(bytes, d);
  put<uint32_t>(bytes, type);
  put<uint64_t>(bytes, offset);
  bytes.resize((bytes.size() + 31) / 32 * 32, '\0');
  return bytes + std::string(data_bytes, '\0');
}

TEST_F(Gguf, HostileTensorInfosAreRefused) {
  write_bytes(path("x.gguf"), one_tensor({4}, 0, 0, 16));
  EXPECT_EQ(gguf::read(path("x.gguf")).tensors[0].data.size(), 4u);
  write_bytes(path("x.gguf"), one_tensor({4}, 0, 0, 12));
  expect_refused(path("x.gguf"), "outside the 12-byte data section");
  write_bytes(path("x.gguf"), one_tensor({4}, 0, ~uint64_t(0) - 31, 16));
  expect_refused(path("x.gguf"), "outside");
  write_bytes(path("x.gguf"), one_tensor({4}, 0, 4, 32));
  expect_refused(path("x.gguf"), "not aligned");
  write_bytes(path("x.gguf"), one_tensor({uint64_t(1) << 32, uint64_t(1) << 32}, 0, 0, 16));
  expect_refused(path("x.gguf"), "more elements than the file could hold");
  write_bytes(path("x.gguf"), one_tensor({~uint64_t(0)}, 0, 0, 16));
  expect_refused(path("x.gguf"), "more elements");
  write_bytes(path("x.gguf"), one_tensor({4}, 1, 0, 16));
  expect_refused(path("x.gguf"), "type F16: only F32 tensors are supported");
  write_bytes(path("x.gguf"), one_tensor({4}, 12, 0, 16));
  expect_refused(path("x.gguf"), "type Q4_K");
  write_bytes(path("x.gguf"), one_tensor({1, 1, 1, 1, 1}, 0, 0, 16));
  expect_refused(path("x.gguf"), "5 dimensions");

  gguf::File file;
  file.tensors = {{"a", {4}, {1, 2, 3, 4}}, {"b", {4}, {1, 2, 3, 4}}};
  gguf::write(path("two.gguf"), file);
  std::string bytes = bytes_of(path("two.gguf"));
  const size_t second_offset = bytes.find('b') + 1 + 4 + 8 + 4;  // name, n_dims, ne[0], type
  const uint64_t zero = 0;
  std::memcpy(bytes.data() + second_offset, &zero, 8);
  write_bytes(path("two.gguf"), bytes);
  expect_refused(path("two.gguf"), "tensors a and b overlap");
}

TEST_F(Gguf, DuplicatesAndInconsistentInputsAreRefused) {
  gguf::File file;
  file.metadata = {{"k", Value::boolean(true)}, {"k", Value::boolean(false)}};
  test::expect_one_line_error([&] { gguf::write(path("x.gguf"), file); }, {"x.gguf", "metadata key k given twice"});
  file.metadata = {{"general.alignment", Value::unsigned_int(ValueType::UINT32, 24)}};
  test::expect_one_line_error([&] { gguf::write(path("x.gguf"), file); }, {"not a power of two"});
  file.metadata = {{"general.alignment", Value::unsigned_int(ValueType::UINT64, 32)}};
  test::expect_one_line_error([&] { gguf::write(path("x.gguf"), file); }, {"not a uint32"});
  file.metadata.clear();
  file.tensors = {{"t", {2, 2}, {1, 2, 3}}};
  test::expect_one_line_error([&] { gguf::write(path("x.gguf"), file); }, {"tensor t has 3 values"});
  file.tensors = {{"t", {1}, {1}}, {"t", {1}, {2}}};
  test::expect_one_line_error([&] { gguf::write(path("x.gguf"), file); }, {"tensor t given twice"});
  EXPECT_FALSE(fs::exists(path("x.gguf")));
  test::expect_one_line_error([] { Value::unsigned_int(ValueType::UINT8, 256); }, {"does not fit"});
  test::expect_one_line_error([] { Value::signed_int(ValueType::INT16, 40000); }, {"does not fit"});
  test::expect_one_line_error([] { Value::array(ValueType::INT32, {Value::boolean(true)}); }, {"holds a bool"});
  test::expect_one_line_error([] { Value::boolean(true).as_string(); }, {"not a string"});

  std::string bytes = header(3, 0, 2);
  for (int i = 0; i < 2; ++i) {
    put_string(bytes, "same");
    put<uint32_t>(bytes, 7);
    put<uint8_t>(bytes, 1);
  }
  write_bytes(path("dup.gguf"), bytes);
  expect_refused(path("dup.gguf"), "metadata key same appears twice");
  bytes = header(3, 0, 1);
  put_string(bytes, "flag");
  put<uint32_t>(bytes, 7);
  put<uint8_t>(bytes, 2);
  write_bytes(path("dup.gguf"), bytes);
  expect_refused(path("dup.gguf"), "neither 0 nor 1");
}

// A file streamed after encode_header() is the bytes write() makes; tensor types other than F32 are written
// as given (the reader refuses them by name).
TEST_F(Gguf, StreamedHeaderMatchesTheWholeFileWriter) {
  const gguf::File file = every_type();
  gguf::write(path("whole.gguf"), file);
  std::vector<gguf::TensorInfo> infos;
  for (const gguf::F32Tensor& t : file.tensors) infos.push_back({t.name, t.ne, gguf::kGgmlF32, 4 * t.data.size()});
  std::string bytes = gguf::encode_header(path("streamed.gguf"), file.metadata, infos);
  EXPECT_EQ(bytes.size() % 32, 0u);
  for (const gguf::F32Tensor& t : file.tensors) {
    bytes.append(reinterpret_cast<const char*>(t.data.data()), 4 * t.data.size());
    bytes.resize(gguf::padded(bytes.size(), 32), '\0');
  }
  EXPECT_EQ(bytes, bytes_of(path("whole.gguf")));

  infos = {{"half", {4}, gguf::kGgmlBF16, 8}};
  bytes = gguf::encode_header(path("bf16.gguf"), {}, infos) + std::string(32, '\0');
  write_bytes(path("bf16.gguf"), bytes);
  expect_refused(path("bf16.gguf"), "BF16");
  infos = {{"t", {1}, gguf::kGgmlF32, 4}, {"t", {1}, gguf::kGgmlF32, 4}};
  test::expect_one_line_error([&] { gguf::encode_header(path("x.gguf"), {}, infos); }, {"x.gguf", "tensor t given twice"});
}

// @huggingface/gguf reads what we write with the exact keys, value types, dtypes, shapes and values.
TEST_F(Gguf, HuggingFaceParserReadsWhatWeWrite) {
  const std::string oracle = std::string(ACTCAP_SOURCE_DIR) + "/tests/oracle";
  if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no node";
  if (!fs::exists(oracle + "/node_modules/@huggingface/gguf")) GTEST_SKIP() << "@huggingface/gguf not installed";
  const gguf::File file = every_type();
  gguf::write(path("a.gguf"), file);
  nlohmann::ordered_json expected = {{"version", 3}, {"metadata", nlohmann::ordered_json::object()}, {"tensors", nlohmann::ordered_json::array()}};
  auto plain = [](const Value& v) -> nlohmann::ordered_json {
    switch (v.type) {
      case ValueType::UINT64: return std::to_string(v.as_unsigned());
      case ValueType::INT64: return std::to_string(v.as_signed());
      case ValueType::BOOL: return v.as_bool();
      case ValueType::STRING: return v.as_string();
      case ValueType::FLOAT32: case ValueType::FLOAT64: return v.as_float();
      default: return std::holds_alternative<uint64_t>(v.data) ? nlohmann::ordered_json(v.as_unsigned())
                                                               : nlohmann::ordered_json(v.as_signed());
    }
  };
  for (const auto& [key, value] : file.metadata) {
    nlohmann::ordered_json entry = {{"type", uint32_t(value.type)}};
    if (value.type == ValueType::ARRAY) {
      entry["subType"] = uint32_t(value.as_array().element_type);
      entry["value"] = nlohmann::ordered_json::array();
      for (const Value& item : value.as_array().items) entry["value"].push_back(plain(item));
    } else {
      entry["value"] = plain(value);
    }
    expected["metadata"][key] = entry;
  }
  for (const gguf::F32Tensor& t : file.tensors)
    expected["tensors"].push_back({{"name", t.name}, {"dtype", 0}, {"shape", t.ne}, {"values", t.data}});
  write_file_atomic(path("expected.json"), expected.dump());
  const std::string command = "cd " + oracle + " && node gguf_oracle.js " + path("a.gguf") + " " + path("expected.json");
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

}  // namespace
}  // namespace actcap
