// The safetensors header reader against hostile headers: non-integer or negative shapes and offsets, shapes
// whose byte size overflows, and sizes that disagree with the offsets are all one-line errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/safetensors.h"
#include "../test_util.h"

namespace actcap {
namespace {

class SafetensorsReader : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("safetensors_reader"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A file with the header `tensor_json` for one tensor "t" and `data_bytes` bytes of data.
  std::string write(const std::string& tensor_json, size_t data_bytes) {
    const std::string header = R"({"t": )" + tensor_json + "}";
    const std::string path = (dir_ / "t.safetensors").string();
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << std::string(data_bytes, '\0');
    return path;
  }
  void expect_error(const std::string& tensor_json, size_t data_bytes, const std::string& fragment) {
    const std::string path = write(tensor_json, data_bytes);
    test::expect_one_line_error([&] { SafetensorsFile file(path); }, {path, "tensor 't'", fragment});
  }

  std::filesystem::path dir_;
};

TEST_F(SafetensorsReader, ShapesMustBeNonNegativeIntegers) {
  // 512.5 used to be read as 512.
  expect_error(R"({"dtype": "F32", "shape": [512.5, 64], "data_offsets": [0, 131072]})", 131072,
               "shape holds 512.5, not a non-negative integer");
  expect_error(R"({"dtype": "F32", "shape": [-2, 2], "data_offsets": [0, 16]})", 16, "shape holds -2");
  expect_error(R"({"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]})", 8, "shape holds \"2\"");
  expect_error(R"({"dtype": "F32", "shape": 2, "data_offsets": [0, 8]})", 8, "shape is not a list");
}

TEST_F(SafetensorsReader, OffsetsMustBeNonNegativeIntegers) {
  expect_error(R"({"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]})", 8, "data_offsets holds -8");
  expect_error(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 8.0]})", 8, "data_offsets holds 8.0");
  expect_error(R"({"dtype": "F32", "shape": [2], "data_offsets": [0]})", 8, "data_offsets must have two entries");
  expect_error(R"("F32")", 8, "not an object");
}

TEST_F(SafetensorsReader, OverflowingShapesAreRejected) {
  // 2^62 * 4 * 1 elements of 4 bytes wrap around to 0 bytes in 64-bit arithmetic.
  expect_error(R"({"dtype": "F32", "shape": [4611686018427387904, 4, 1], "data_offsets": [0, 0]})", 0,
               "shape [4611686018427387904, 4, 1] is too large");
  expect_error(R"({"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]})", 0, "is too large");
  // A zero dimension makes the product zero even with a huge one next to it: that is a valid empty tensor.
  SafetensorsFile empty(write(R"({"dtype": "F32", "shape": [0, 4611686018427387904], "data_offsets": [0, 0]})", 0));
  EXPECT_EQ(empty.entry("t").shape, (Shape{0, 4611686018427387904}));
}

TEST_F(SafetensorsReader, ByteSizeMustMatchTheOffsets) {
  expect_error(R"({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]})", 8, "8 bytes for F32 [3], expected 12");
  expect_error(R"({"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 16]})", 16, "expected 8");
  SafetensorsFile ok(write(R"({"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]})", 8));
  EXPECT_EQ(ok.view("t").shape, (Shape{2, 2}));
}

}  // namespace
}  // namespace actcap
