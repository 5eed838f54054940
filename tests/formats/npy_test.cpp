#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/npy.h"
#include "../test_util.h"

using namespace actcap;
using actcap::test::temp_dir;
namespace fs = std::filesystem;

namespace {
uint16_t header_len_v1(const std::string& h) { return uint16_t(uint8_t(h[8]) | (uint8_t(h[9]) << 8)); }
}  // namespace

TEST(FormatsNpy, HeaderMatchesNumpysLayout) {
  // np.save(f, np.zeros((2, 3), np.float32)) writes exactly this header.
  std::string h = npy_header("<f4", {2, 3});
  ASSERT_EQ(h.size(), 128u);  // the data starts 64-byte aligned (hence 16-byte aligned too)
  EXPECT_EQ(h.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(header_len_v1(h), 128 - 10);
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_EQ(h.substr(10, dict.size()), dict);
  EXPECT_EQ(h.find_first_not_of(' ', 10 + dict.size()), h.size() - 1);  // growth room + alignment: spaces
  EXPECT_EQ(h.back(), '\n');
}

TEST(FormatsNpy, TupleReprOfShapes) {
  EXPECT_NE(npy_header("|O", {5}).find("'shape': (5,), }"), std::string::npos);
  EXPECT_NE(npy_header("<f4", {}).find("'shape': (), }"), std::string::npos);
  EXPECT_NE(npy_header("<i8", {1, 0, 7}).find("'descr': '<i8'"), std::string::npos);
  EXPECT_THROW(npy_header("<f4", {-1}), Error);
}

TEST(FormatsNpy, LongHeadersPadTo64AndSwitchToVersion2) {
  for (int rank : {1, 7, 20, 40}) {
    Shape shape(rank, 123456789);
    std::string h = npy_header("<f4", shape);
    EXPECT_EQ(h.size() % 64, 0u) << rank;
    EXPECT_EQ(size_t(header_len_v1(h)) + 10, h.size());
  }
  Shape huge(9000, 1000000);  // a dict over 65535 bytes
  std::string h = npy_header("<f4", huge);
  EXPECT_EQ(h[6], 2);
  EXPECT_EQ(h.size() % 64, 0u);
  uint32_t len = uint8_t(h[8]) | (uint8_t(h[9]) << 8) | (uint8_t(h[10]) << 16) | (uint32_t(uint8_t(h[11])) << 24);
  EXPECT_EQ(len + 12, h.size());
}

TEST(FormatsNpy, WriteNpyWritesHeaderThenData) {
  fs::path dir = temp_dir("npy");
  std::vector<float> values{1, 2, 3, 4, 5, 6};
  write_npy((dir / "a.npy").string(), DType::F32, {3, 2}, values.data());
  std::string file = read_file((dir / "a.npy").string());
  ASSERT_EQ(file.size(), 128 + 24u);
  EXPECT_EQ(file.substr(0, 128), npy_header("<f4", {3, 2}));
  EXPECT_EQ(std::memcmp(file.data() + 128, values.data(), 24), 0);
  fs::remove_all(dir);
}

TEST(FormatsNpy, StreamingWriterChecksTheByteCount) {
  fs::path dir = temp_dir("npy_stream");
  std::string path = (dir / "b.npy").string();
  {
    NpyWriter w(path, DType::I64, {2});
    int64_t one = 1;
    w.append(&one, 8);
    EXPECT_THROW(w.commit(), Error);  // short
  }
  EXPECT_FALSE(fs::exists(path));  // nothing under the real name
  {
    NpyWriter w(path, DType::I64, {2});
    int64_t v[3] = {1, 2, 3};
    EXPECT_THROW(w.append(v, 24), Error);  // too long
    w.append(v, 16);
    w.commit();
  }
  EXPECT_EQ(fs::file_size(path), 128 + 16u);
  EXPECT_THROW(NpyWriter((dir / "c.npy").string(), DType::BF16, {2}), Error);
  fs::remove_all(dir);
}
