#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "export/torch_export.h"
#include "io/zip_writer.h"
#include "../test_util.h"

using namespace actcap;
using actcap::test::temp_dir;
namespace fs = std::filesystem;

namespace {
// Little-endian fields; a read past the end fails the test (and reads 0) instead of running off the buffer.
uint64_t le(const std::string& s, uint64_t at, int bytes) {
  if (at + bytes > s.size()) {
    ADD_FAILURE() << "read of " << bytes << " bytes at " << at << " past the end (" << s.size() << ")";
    return 0;
  }
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | uint8_t(s[at + i]);
  return v;
}
uint16_t u16(const std::string& s, uint64_t at) { return uint16_t(le(s, at, 2)); }
uint32_t u32(const std::string& s, uint64_t at) { return uint32_t(le(s, at, 4)); }
uint64_t u64(const std::string& s, uint64_t at) { return le(s, at, 8); }

// The zip64 field (id 1) among the extra fields at [at, at + length), or npos.
uint64_t find_zip64_field(const std::string& zip, uint64_t at, uint64_t length) {
  for (uint64_t end = at + length; at + 4 <= end; at += 4 + u16(zip, at + 2))
    if (u16(zip, at) == 1) return at;
  return std::string::npos;
}

struct ZipEntry {
  uint32_t crc;
  uint64_t size, local_offset, data_offset;
  bool central_zip64, local_zip64;  // each header has a zip64 extra field
};
struct ParsedZip {
  std::map<std::string, ZipEntry> entries;
  bool zip64_end = false;  // zip64 end record and locator present
  uint16_t classic_count;  // the count in the classic end record
};

// Reads an archive the way zip readers do: end record (and the zip64 end record its locator points to) ->
// central directory (sizes and offsets from zip64 fields where the classic ones are all ones) -> local headers.
ParsedZip parse_zip(const std::string& zip) {
  ParsedZip parsed;
  const uint64_t end = zip.size() - 22;
  EXPECT_EQ(u32(zip, end), 0x06054b50u);
  parsed.classic_count = u16(zip, end + 10);
  uint64_t count = parsed.classic_count, directory_size = u32(zip, end + 12), at = u32(zip, end + 16);
  uint64_t directory_end = end;
  if (end >= 20 + 56 && u32(zip, end - 20) == 0x07064b50u) {
    parsed.zip64_end = true;
    const uint64_t record = u64(zip, end - 20 + 8);
    EXPECT_EQ(record + 56, end - 20);
    EXPECT_EQ(u32(zip, end - 20 + 16), 1u);  // disks in all
    EXPECT_EQ(u32(zip, record), 0x06064b50u);
    EXPECT_EQ(u64(zip, record + 4), 44u);
    EXPECT_EQ(u16(zip, record + 14), 45);  // version needed
    EXPECT_EQ(u64(zip, record + 24), u64(zip, record + 32));
    if (count != 0xffff) { EXPECT_EQ(count, u64(zip, record + 32)); }
    if (directory_size != 0xffffffff) { EXPECT_EQ(directory_size, u64(zip, record + 40)); }
    if (at != 0xffffffff) { EXPECT_EQ(at, u64(zip, record + 48)); }
    count = u64(zip, record + 32);
    directory_size = u64(zip, record + 40);
    at = u64(zip, record + 48);
    directory_end = record;
  }
  EXPECT_EQ(at + directory_size, directory_end);
  for (uint64_t i = 0; i < count && at + 46 <= directory_end; ++i) {
    EXPECT_EQ(u32(zip, at), 0x02014b50u);
    EXPECT_EQ(u16(zip, at + 10), 0);  // stored
    ZipEntry e{u32(zip, at + 16), u32(zip, at + 24), u32(zip, at + 42), 0, false, false};
    EXPECT_EQ(u32(zip, at + 20), e.size);
    const uint16_t name_len = u16(zip, at + 28), extra_len = u16(zip, at + 30);
    std::string name = zip.substr(at + 46, name_len);
    const uint64_t field = find_zip64_field(zip, at + 46 + name_len, extra_len);
    e.central_zip64 = field != std::string::npos;
    EXPECT_EQ(u16(zip, at + 6), e.central_zip64 ? 45 : 20) << name;  // version needed
    if (e.central_zip64) {
      uint64_t value = field + 4;
      if (e.size == 0xffffffff) {
        e.size = u64(zip, value);
        EXPECT_EQ(u64(zip, value + 8), e.size);  // compressed = uncompressed
        value += 16;
      }
      if (e.local_offset == 0xffffffff) value += 8, e.local_offset = u64(zip, value - 8);
      EXPECT_EQ(value, field + 4 + u16(zip, field + 2)) << name;  // exactly the fields marked all ones
    }
    at += 46 + name_len + extra_len + u16(zip, at + 32);
    EXPECT_EQ(u32(zip, e.local_offset), 0x04034b50u);
    const uint16_t local_name_len = u16(zip, e.local_offset + 26), local_extra_len = u16(zip, e.local_offset + 28);
    EXPECT_EQ(zip.substr(e.local_offset + 30, local_name_len), name);
    e.local_zip64 = find_zip64_field(zip, e.local_offset + 30 + local_name_len, local_extra_len) != std::string::npos;
    EXPECT_EQ(u16(zip, e.local_offset + 4), e.local_zip64 ? 45 : 20) << name;
    e.data_offset = e.local_offset + 30 + local_name_len + local_extra_len;
    // The data descriptor follows the data; its sizes are 8 bytes when the local header has a zip64 field.
    const uint64_t descriptor = e.data_offset + e.size;
    EXPECT_EQ(u32(zip, descriptor), 0x08074b50u);
    EXPECT_EQ(u32(zip, descriptor + 4), e.crc);
    EXPECT_EQ(e.local_zip64 ? u64(zip, descriptor + 8) : u32(zip, descriptor + 8), e.size) << name;
    EXPECT_EQ(e.local_zip64 ? u64(zip, descriptor + 16) : u32(zip, descriptor + 12), e.size) << name;
    parsed.entries[name] = e;
  }
  EXPECT_EQ(parsed.entries.size(), count);
  return parsed;
}

bool have_python(const char* modules) {
  return std::system(("/usr/bin/python3 -c 'import " + std::string(modules) + "' 2>/dev/null").c_str()) == 0;
}

// Runs a Python script (written next to the archive) with the archive's path as its argument; its stdout.
std::string run_python(const fs::path& dir, const std::string& script, const std::string& archive) {
  const fs::path script_path = dir / "check.py";
  write_file_atomic(script_path.string(), script);
  const std::string command = "/usr/bin/python3 " + script_path.string() + " " + archive;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    ADD_FAILURE() << "cannot run " << command;
    return "";
  }
  std::string out;
  char buffer[1 << 16];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  EXPECT_EQ(::pclose(pipe), 0) << command << "\n" << out;
  return out;
}

// Every entry as Python's zipfile reads it back (name -> bytes), after testzip() found every CRC right.
std::map<std::string, std::string> read_with_python_zipfile(const fs::path& dir, const std::string& archive) {
  const std::string listing = run_python(dir, R"(import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    for info in z.infolist():
        print(info.filename, z.read(info).hex())
)", archive);
  std::map<std::string, std::string> entries;
  std::istringstream lines(listing);
  for (std::string line; std::getline(lines, line);) {
    const size_t space = line.find(' ');
    std::string bytes;
    for (size_t i = space + 1; i + 1 < line.size(); i += 2) bytes.push_back(char(std::stoi(line.substr(i, 2), nullptr, 16)));
    entries[line.substr(0, space)] = bytes;
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
  zip.begin_entry("arch/data/0", 10);
  zip.write("0123", 4);
  zip.write("456789", 6);
  zip.end_entry();
  zip.add("arch/version", "3\n");
  EXPECT_FALSE(fs::exists(path));  // atomic: nothing before commit
  zip.commit();

  const std::string bytes = read_file(path);
  auto parsed = parse_zip(bytes);
  auto& entries = parsed.entries;
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_FALSE(parsed.zip64_end);
  for (const auto& [name, e] : entries) {
    EXPECT_EQ(e.data_offset % 64, 0u) << name;
    EXPECT_EQ(crc32_update(0, bytes.data() + e.data_offset, e.size), e.crc) << name;
    EXPECT_FALSE(e.central_zip64 || e.local_zip64) << name;
  }
  EXPECT_EQ(bytes.substr(entries["arch/data/0"].data_offset, 10), "0123456789");
  EXPECT_EQ(bytes.substr(entries["arch/version"].data_offset, 2), "3\n");
  // An archive that needs no zip64 is byte for byte what the writer made before it knew zip64.
  EXPECT_EQ(bytes.size(), 534u);
  EXPECT_EQ(crc32_update(0, bytes.data(), bytes.size()), 0x4346eb49u);
  fs::remove_all(dir);
}

TEST(FormatsZip, MisuseIsAnError) {
  fs::path dir = temp_dir("zip_misuse");
  ZipWriter zip((dir / "b.zip").string());
  EXPECT_THROW(zip.write("x", 1), Error);
  zip.begin_entry("x", 2);
  EXPECT_THROW(zip.begin_entry("y", 0), Error);
  EXPECT_THROW(zip.commit(), Error);
  EXPECT_THROW(zip.end_entry(), Error);  // 0 of the 2 bytes declared
  zip.write("a", 1);
  EXPECT_THROW(zip.write("bc", 2), Error);  // past the 2 bytes declared
  zip.write("b", 1);
  zip.end_entry();
  zip.commit();
  fs::remove_all(dir);
}

TEST(FormatsZip, ForcedZip64ReadsBackInPythonZipfile) {
  fs::path dir = temp_dir("zip64");
  std::string path = (dir / "z.zip").string();
  std::map<std::string, std::string> expected;
  ZipWriter zip(path, Zip64::Always);
  for (size_t size : {0, 1, 63, 64, 65, 1000, 100000}) {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) data[i] = char((i * 131 + size) % 251);
    const std::string name = "z/" + std::to_string(size);
    zip.begin_entry(name, size);
    zip.write(data.data(), size / 3);  // in pieces
    zip.write(data.data() + size / 3, size - size / 3);
    zip.end_entry();
    expected[name] = data;
  }
  zip.commit();

  const std::string bytes = read_file(path);
  const ParsedZip parsed = parse_zip(bytes);
  EXPECT_TRUE(parsed.zip64_end);
  EXPECT_EQ(parsed.classic_count, 0xffff);
  ASSERT_EQ(parsed.entries.size(), expected.size());
  for (const auto& [name, e] : parsed.entries) {
    EXPECT_TRUE(e.central_zip64 && e.local_zip64) << name;
    EXPECT_EQ(e.data_offset % 64, 0u) << name;
    EXPECT_EQ(bytes.substr(e.data_offset, e.size), expected[name]) << name;
    EXPECT_EQ(crc32_update(0, bytes.data() + e.data_offset, e.size), e.crc) << name;
  }
  const bool python = have_python("zipfile");
  if (python) { EXPECT_EQ(read_with_python_zipfile(dir, path), expected); }
  fs::remove_all(dir);
  if (!python) GTEST_SKIP() << "no /usr/bin/python3";
}

TEST(FormatsZip, MoreThan65535EntriesUseTheZip64EndRecord) {
  fs::path dir = temp_dir("zip64_count");
  std::string path = (dir / "many.zip").string();
  constexpr int kEntries = 70000;
  std::map<std::string, std::string> expected;
  ZipWriter zip(path);
  for (int i = 0; i < kEntries; ++i) {
    const std::string name = "n/" + std::to_string(i);
    zip.add(name, std::to_string(i * 7));
    expected[name] = std::to_string(i * 7);
  }
  zip.commit();

  const std::string bytes = read_file(path);
  const ParsedZip parsed = parse_zip(bytes);
  EXPECT_TRUE(parsed.zip64_end);
  EXPECT_EQ(parsed.classic_count, 0xffff);  // too many for the classic field
  ASSERT_EQ(parsed.entries.size(), size_t(kEntries));
  for (const auto& [name, e] : parsed.entries) {
    ASSERT_FALSE(e.central_zip64 || e.local_zip64) << name;  // small entries at small offsets need none
    ASSERT_EQ(bytes.substr(e.data_offset, e.size), expected[name]) << name;
  }
  const bool python = have_python("zipfile");
  if (python) { EXPECT_EQ(read_with_python_zipfile(dir, path), expected); }
  fs::remove_all(dir);
  if (!python) GTEST_SKIP() << "no /usr/bin/python3";
}

TEST(FormatsTorch, ArchiveHoldsPickleStoragesVersionAndByteorder) {
  fs::path dir = temp_dir("torch");
  std::string path = (dir / "demo_activations.pt").string();
  std::vector<float> h0{1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> h1{0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0};  // bf16 stays bf16
  const std::vector<int64_t> token_sequence = {7, 8, 9};
  {  // the original tool's dict, built as write_torch_activations built it before it added record/activations
    TorchArchive archive;
    PickleWriter& p = archive.pickle();
    p.mark();
    p.string("model_name").string("m").string("prompt").string("p").string("generated_text").none();
    p.string("token_sequence");
    archive.tensor(TensorView{token_sequence.data(), DType::I64, {3}}, {1, 3});
    p.string("hidden_states").mark();
    archive.tensor(TensorView{h0.data(), DType::F32, {3, 2}}, {1, 3, 2});
    archive.tensor(TensorView{h1.data(), DType::BF16, {3, 2}}, {1, 3, 2});
    p.tuple();
    p.dict();
    archive.write(path);
  }

  const std::string bytes = read_file(path);
  auto entries = parse_zip(bytes).entries;
  // Byte for byte what the writer made before it knew zip64.
  EXPECT_EQ(bytes.size(), 1612u);
  EXPECT_EQ(crc32_update(0, bytes.data(), bytes.size()), 0x748d6006u);
  std::vector<std::string> names;
  for (const auto& [name, e] : entries) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"demo_activations/byteorder", "demo_activations/data.pkl",
                                             "demo_activations/data/0", "demo_activations/data/1",
                                             "demo_activations/data/2", "demo_activations/version"}));
  const ZipEntry& tokens = entries["demo_activations/data/0"];
  ASSERT_EQ(tokens.size, 24u);
  EXPECT_EQ(std::memcmp(bytes.data() + tokens.data_offset, token_sequence.data(), 24), 0);
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

  // write_torch_activations adds record, positions and activations; a site that is also a hidden state
  // shares its storage: tokens, two hidden states, positions, and one more site.
  std::vector<float> other{9, 8};
  TorchActivations a;
  a.model_name = "m";
  a.prompt = "p";
  a.token_sequence = token_sequence;
  a.hidden_states = {TensorView{h0.data(), DType::F32, {3, 2}}, TensorView{h1.data(), DType::BF16, {3, 2}}};
  a.record = 4;
  a.positions = {0, 1, 2};
  a.activations = {{"hidden_states.0", TensorView{h0.data(), DType::F32, {1, 3, 2}}},
                   {"blocks.0.hook_resid_post", TensorView{other.data(), DType::F32, {1, 1, 2}}}};
  write_torch_activations(path, a);
  names.clear();
  for (const auto& [name, e] : parse_zip(read_file(path)).entries) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"demo_activations/byteorder", "demo_activations/data.pkl",
                                             "demo_activations/data/0", "demo_activations/data/1",
                                             "demo_activations/data/2", "demo_activations/data/3",
                                             "demo_activations/data/4", "demo_activations/version"}));

  a.hidden_states[1].shape = {2, 3};  // not [seq_len, hidden]
  EXPECT_THROW(write_torch_activations(path + "2", a), Error);
  EXPECT_FALSE(fs::exists(path + "2"));
  EXPECT_EQ(model_file_prefix("/models/tiny-gpt2/"), "tiny-gpt2");
  EXPECT_EQ(model_file_prefix(""), "model");
  fs::remove_all(dir);
}

TEST(FormatsTorch, ForcedZip64ArchiveLoadsInTorch) {
  if (!have_python("torch")) GTEST_SKIP() << "no torch for /usr/bin/python3";
  fs::path dir = temp_dir("torch_zip64");
  std::string path = (dir / "tensors.pt").string();
  std::vector<float> f{0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f};
  std::vector<int64_t> l{1, -2, 3, int64_t(1) << 40};
  std::vector<uint16_t> b{0x3f80, 0xc020};  // bf16 1.0, -2.5
  TorchArchive archive;
  PickleWriter& p = archive.pickle();
  p.mark();
  p.string("f");
  archive.tensor(TensorView{f.data(), DType::F32, {6}}, {2, 3});
  p.string("l");
  archive.tensor(TensorView{l.data(), DType::I64, {4}}, {4});
  p.string("b");
  archive.tensor(TensorView{b.data(), DType::BF16, {2}}, {1, 2});
  p.dict();
  // TorchArchive::write's layout, in an archive that is zip64 throughout.
  ZipWriter zip(path, Zip64::Always);
  zip.add("tensors/data.pkl", p.finish());
  zip.add("tensors/byteorder", "little");
  zip.add("tensors/data/0", std::string_view(reinterpret_cast<const char*>(f.data()), f.size() * 4));
  zip.add("tensors/data/1", std::string_view(reinterpret_cast<const char*>(l.data()), l.size() * 8));
  zip.add("tensors/data/2", std::string_view(reinterpret_cast<const char*>(b.data()), b.size() * 2));
  zip.add("tensors/version", "3\n");
  zip.commit();
  EXPECT_TRUE(parse_zip(read_file(path)).zip64_end);

  EXPECT_EQ(run_python(dir, R"(import sys, torch
t = torch.load(sys.argv[1], weights_only=True)
assert sorted(t) == ["b", "f", "l"], t
assert torch.equal(t["f"], torch.arange(6, dtype=torch.float32).reshape(2, 3) + 0.5), t["f"]
assert torch.equal(t["l"], torch.tensor([1, -2, 3, 1 << 40], dtype=torch.int64)), t["l"]
assert torch.equal(t["b"], torch.tensor([[1.0, -2.5]], dtype=torch.bfloat16)), t["b"]
print("ok")
)", path), "ok\n");
  fs::remove_all(dir);
}
