#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"
#include "export/torch_export.h"
#include "io/zip_writer.h"
#include "../test_util.h"

using namespace actcap;
using actcap::test::temp_dir;
namespace fs = std::filesystem;

namespace {
uint32_t u32(const std::string& s, size_t at) {
  uint32_t v;
  std::memcpy(&v, s.data() + at, 4);
  return v;
}
uint16_t u16(const std::string& s, size_t at) {
  uint16_t v;
  std::memcpy(&v, s.data() + at, 2);
  return v;
}

struct ZipEntry {
  uint32_t crc, size, local_offset;
  size_t data_offset;
};

// Reads an archive the way zip readers do: end record -> central directory -> local headers.
std::map<std::string, ZipEntry> parse_zip(const std::string& zip) {
  const size_t end = zip.size() - 22;
  EXPECT_EQ(u32(zip, end), 0x06054b50u);
  const uint16_t count = u16(zip, end + 10);
  size_t at = u32(zip, end + 16);
  EXPECT_EQ(at + u32(zip, end + 12), end);  // directory size
  std::map<std::string, ZipEntry> entries;
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(u32(zip, at), 0x02014b50u);
    EXPECT_EQ(u16(zip, at + 10), 0);  // stored
    ZipEntry e{u32(zip, at + 16), u32(zip, at + 20), u32(zip, at + 42), 0};
    EXPECT_EQ(u32(zip, at + 24), e.size);
    const uint16_t name_len = u16(zip, at + 28);
    std::string name = zip.substr(at + 46, name_len);
    at += 46 + name_len + u16(zip, at + 30) + u16(zip, at + 32);
    EXPECT_EQ(u32(zip, e.local_offset), 0x04034b50u);
    EXPECT_EQ(zip.substr(e.local_offset + 30, u16(zip, e.local_offset + 26)), name);
    e.data_offset = e.local_offset + 30 + u16(zip, e.local_offset + 26) + u16(zip, e.local_offset + 28);
    // The data descriptor follows the data.
    EXPECT_EQ(u32(zip, e.data_offset + e.size), 0x08074b50u);
    EXPECT_EQ(u32(zip, e.data_offset + e.size + 4), e.crc);
    entries[name] = e;
  }
  return entries;
}
}  // namespace

TEST(FormatsZip, Crc32MatchesZlib) {
  EXPECT_EQ(crc32_update(0, "123456789", 9), 0xCBF43926u);  // the standard check value
  EXPECT_EQ(crc32_update(0, "", 0), 0u);
  std::string text = "The quick brown fox jumps over the lazy dog";
  EXPECT_EQ(crc32_update(0, text.data(), text.size()), 0x414FA339u);
  // Pieces chain to the checksum of the whole, whatever the split (the 8-byte fast path and the tail).
  for (size_t split = 0; split <= text.size(); ++split)
    EXPECT_EQ(crc32_update(crc32_update(0, text.data(), split), text.data() + split, text.size() - split),
              0x414FA339u);
}

TEST(FormatsZip, EntriesAre64ByteAlignedWithCentralDirectory) {
  fs::path dir = temp_dir("zip");
  std::string path = (dir / "a.zip").string();
  ZipWriter zip(path);
  zip.add("arch/data.pkl", "pickle bytes");
  zip.begin_entry("arch/data/0");
  zip.write("0123", 4);
  zip.write("456789", 6);
  zip.end_entry();
  zip.add("arch/version", "3\n");
  EXPECT_FALSE(fs::exists(path));  // atomic: nothing before commit
  zip.commit();

  const std::string bytes = read_file(path);
  auto entries = parse_zip(bytes);
  ASSERT_EQ(entries.size(), 3u);
  for (const auto& [name, e] : entries) {
    EXPECT_EQ(e.data_offset % 64, 0u) << name;
    EXPECT_EQ(crc32_update(0, bytes.data() + e.data_offset, e.size), e.crc) << name;
  }
  EXPECT_EQ(bytes.substr(entries["arch/data/0"].data_offset, 10), "0123456789");
  EXPECT_EQ(bytes.substr(entries["arch/version"].data_offset, 2), "3\n");
  fs::remove_all(dir);
}

TEST(FormatsZip, MisuseIsAnError) {
  fs::path dir = temp_dir("zip_misuse");
  ZipWriter zip((dir / "b.zip").string());
  EXPECT_THROW(zip.write("x", 1), Error);
  zip.begin_entry("x");
  EXPECT_THROW(zip.begin_entry("y"), Error);
  EXPECT_THROW(zip.commit(), Error);
  fs::remove_all(dir);
}

TEST(FormatsTorch, ArchiveHoldsPickleStoragesVersionAndByteorder) {
  fs::path dir = temp_dir("torch");
  std::string path = (dir / "demo_activations.pt").string();
  std::vector<float> h0{1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> h1{0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0};  // bf16 stays bf16
  TorchActivations a;
  a.model_name = "m";
  a.prompt = "p";
  a.token_sequence = {7, 8, 9};
  a.hidden_states = {TensorView{h0.data(), DType::F32, {3, 2}}, TensorView{h1.data(), DType::BF16, {3, 2}}};
  write_torch_activations(path, a);

  const std::string bytes = read_file(path);
  auto entries = parse_zip(bytes);
  std::vector<std::string> names;
  for (const auto& [name, e] : entries) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"demo_activations/byteorder", "demo_activations/data.pkl",
                                             "demo_activations/data/0", "demo_activations/data/1",
                                             "demo_activations/data/2", "demo_activations/version"}));
  const ZipEntry& tokens = entries["demo_activations/data/0"];
  ASSERT_EQ(tokens.size, 24u);
  EXPECT_EQ(std::memcmp(bytes.data() + tokens.data_offset, a.token_sequence.data(), 24), 0);
  EXPECT_EQ(entries["demo_activations/data/2"].size, 12u);
  const ZipEntry& pkl = entries["demo_activations/data.pkl"];
  const std::string pickle = bytes.substr(pkl.data_offset, pkl.size);
  EXPECT_NE(pickle.find("ctorch\nLongStorage\n"), std::string::npos);
  EXPECT_NE(pickle.find("ctorch\nFloatStorage\n"), std::string::npos);
  EXPECT_NE(pickle.find("ctorch\nBFloat16Storage\n"), std::string::npos);
  EXPECT_NE(pickle.find("ctorch._utils\n_rebuild_tensor_v2\n"), std::string::npos);
  EXPECT_EQ(pickle.substr(2, 2), "}(");                    // EMPTY_DICT MARK ...
  EXPECT_EQ(pickle.substr(pickle.size() - 2), "u.");       // ... SETITEMS STOP
  EXPECT_EQ(bytes.substr(entries["demo_activations/byteorder"].data_offset, 6), "little");

  a.hidden_states[1].shape = {2, 3};  // not [seq_len, hidden]
  EXPECT_THROW(write_torch_activations(path + "2", a), Error);
  EXPECT_FALSE(fs::exists(path + "2"));
  EXPECT_EQ(model_file_prefix("/models/tiny-gpt2/"), "tiny-gpt2");
  EXPECT_EQ(model_file_prefix(""), "model");
  fs::remove_all(dir);
}
